// SPDX-License-Identifier: GPL-2.0-or-later
// The agent: carries out the supervisor policy's actions on a real QEMU, network and disks.
#pragma once

#include "rescuevm/core/plan.h"

namespace rescuevm {

// Runs the session until the policy says to exit; returns the exit status.
// The plan must be ready(). Re-attaches to a live QEMU recorded in runtime_dir.
int run_agent(const Plan &plan);

} // namespace rescuevm
