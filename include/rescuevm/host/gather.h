// SPDX-License-Identifier: GPL-2.0-or-later
// gather_host_facts(): runs every reader of the machine into HostFacts; failures become facts, not exits.
#pragma once

#include "rescuevm/core/config.h"
#include "rescuevm/core/host_facts.h"
#include "rescuevm/core/plan.h"
#include "rescuevm/host/disks.h"

namespace rescuevm {

// Reads the whole machine into HostFacts (the imperative shell behind plan_vm).
HostFacts gather_host_facts(const Config &config, const HostRoots &roots);

// gather_host_facts + plan_vm + what needs the machine: the admin password file
// check and the disk warnings (identity collisions, BitLocker).
Plan make_plan(const Config &config);

} // namespace rescuevm
