// SPDX-License-Identifier: GPL-2.0-or-later
// gather_host_facts(): runs every reader of the machine into HostFacts; failures become facts, not exits.
#pragma once

#include "rescuevm/core/config.h"
#include "rescuevm/core/host_facts.h"
#include "rescuevm/host/disks.h"

namespace rescuevm {

// Reads the whole machine into HostFacts, the only input plan_vm() takes besides
// the Config. Changes nothing.
HostFacts gather_host_facts(const Config &config, const HostRoots &roots = {});

// Ownership and modes of runtime_dir and each of its parents, and the free space there.
RuntimeDirFacts read_runtime_dir_facts(const std::string &dir);

} // namespace rescuevm
