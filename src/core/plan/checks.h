// SPDX-License-Identifier: GPL-2.0-or-later
// The checks and warnings plan_vm() is made of, one function each (checks.cpp, warnings.cpp). Pure.
#pragma once

#include "rescuevm/core/plan.h"

namespace rescuevm::plan_detail {

Check check_memory(const HostFacts &host, const Config &config);
Check check_kvm(const HostFacts &host, const Config &config);
Check check_boot_source(const HostFacts &host, const Config &config);
Check check_firmware(const HostFacts &host, const Config &config);
Check check_disks(const std::vector<DiskChoice> &disks, const Config &config);
Check check_network(const HostFacts &host, const Config &config);
// Decides vm_memory as it checks it.
Check check_vm_memory(const HostFacts &host, const Config &config, std::uint64_t &vm_memory);
Check check_vm_cpus(const HostFacts &host, const Config &config, unsigned vm_cpus);
Check check_password(const HostFacts &host);
Check check_runtime_dir(const HostFacts &host, const Config &config);
// Decides the overlay's bound (vm.overlay_max or auto) as it checks runtime_dir has room for it.
Check check_overlay(const HostFacts &host, const Config &config, std::uint64_t &overlay_max);
// QEMU can take every value the plan puts on its command line.
Check check_qemu_argv(const Plan &plan);

// "" or why this disk cannot be presented on this bus (the 4Kn-on-SATA rule).
std::string sata_sector_problem(const DiskInfo &disk, DiskBus bus);

// Every warning: shared or image-shared disk signatures, BitLocker, more vCPUs than the host has.
std::vector<std::string> plan_warnings(const Plan &plan, const HostFacts &host);

} // namespace rescuevm::plan_detail
