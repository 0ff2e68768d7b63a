// SPDX-License-Identifier: GPL-2.0-or-later
// plan_vm(): from HostFacts and Config to the VM that may start, or why not. Pure.
#pragma once

#include "rescuevm/core/config.h"
#include "rescuevm/core/host_facts.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rescuevm {

struct Check {
    std::string name;    // "memory", "kvm", "image", "firmware", "disks", "network", ...
    bool ok = true;
    std::string message; // in words, with the fix when it fails
};

struct DiskChoice {
    DiskInfo disk;
    bool selected = false;
    std::string reason;  // why it is or is not passed through
};

struct Plan {
    Config config;
    HostFacts host;
    std::vector<Check> checks;
    std::vector<DiskChoice> disks;     // every disk seen, natural order by kernel name
    std::vector<std::string> warnings; // start allowed, but an operator should know
    std::uint64_t vm_memory_bytes = 0;
    unsigned vm_cpus = 0;

    bool ready() const;                       // every check ok
    std::vector<const DiskInfo *> passed() const; // selected disks, in guest order
};

// Natural order of kernel names: sda < sdb < sdz < sdaa, nvme0n2 < nvme0n10.
bool natural_less(const std::string &a, const std::string &b);

// fnmatch-style glob on a kernel name ("sd*", "nvme*n*", "loop[0-9]").
bool glob_match(const std::string &pattern, const std::string &name);

// Which disks to pass through, and why each one is or is not. Pure.
std::vector<DiskChoice> select_disks(const std::vector<DiskInfo> &disks,
                                     const std::vector<std::string> &match);

// The host reserve for vm.memory = "auto": max(4 GiB, MemTotal/8).
std::uint64_t host_memory_reserve(std::uint64_t mem_total);

Plan plan_vm(const HostFacts &host, const Config &config);

} // namespace rescuevm
