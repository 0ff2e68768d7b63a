// SPDX-License-Identifier: GPL-2.0-or-later
// Readers of the machine (sysfs, udev, libblkid, procfs) that fill HostFacts.
#pragma once

#include "rescuevm/error.h"
#include "rescuevm/host_facts.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rescuevm {

// Root paths of the trees the readers look at; tests point them at fixtures.
struct HostRoots {
    std::string sysfs = "/sys";
    std::string procfs = "/proc";
    std::string devfs = "/dev";
    bool use_udev = true; // false: sysfs attributes only (fixture trees)
};

// Every block device of type disk (not partitions), with attributes, partition
// table, partitions and in-use reasons. Order: natural order by kernel name.
Result<std::vector<DiskInfo>> read_disks(const HostRoots &roots);

// MemTotal from <procfs>/meminfo, in bytes.
Result<std::uint64_t> read_memtotal(const HostRoots &roots);
// Pure parser of /proc/meminfo text.
Result<std::uint64_t> parse_meminfo_total(const std::string &text);

// Online CPUs (sysconf).
unsigned read_cpu_count();

// Opens <devfs>/kvm read-write; "" when usable, else why not (with the fix).
std::string kvm_problem(const HostRoots &roots);

} // namespace rescuevm
