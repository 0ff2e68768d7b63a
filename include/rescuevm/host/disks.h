// SPDX-License-Identifier: GPL-2.0-or-later
// Readers of the machine (sysfs, udev, libblkid, procfs) that fill HostFacts.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/host_facts.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rescuevm {

// Root paths of the trees the readers look at; tests point them at fixtures.
struct HostRoots {
    std::string sysfs = "/sys";
    std::string procfs = "/proc";
    std::string devfs = "/dev";
    bool use_udev = true; // false: sysfs attributes only (fixture trees)
    // udev's database; a disk's identity comes from udev only when it has an
    // entry here (b<major>:<minor>), else from sysfs.
    std::string udev_db = "/run/udev/data";
};

// Every block device of type disk (not partitions), with attributes, partition
// table, partitions and in-use reasons. Order: natural order by kernel name.
// Devices of size 0 (unbound loop devices, empty card readers and CD drives)
// are left out: there is nothing on them to pass through or to protect.
// libblkid failures on one disk are logged and ignored (that disk keeps its
// sysfs facts); failing to read mountinfo or swaps is an error, because then
// no disk could be known to be unused.
Result<std::vector<DiskInfo>> read_disks(const HostRoots &roots);

// Windows role of a partition from its type (GPT type GUID or MBR "0x27") and
// libblkid TYPE: "bitlocker", "efi-system", "microsoft-reserved", "ldm-metadata",
// "ldm-data", "windows-recovery", "ntfs", or "" (see PartitionInfo). Pure.
std::string windows_role(const std::string &part_type, const std::string &fs_type);

// Takes model, serial and WWN from udev properties (ID_MODEL_ENC/ID_MODEL,
// ID_SERIAL_SHORT, ID_WWN_WITH_EXTENSION/ID_WWN); a property udev lacks keeps
// the value read from sysfs. Pure.
void apply_udev_properties(DiskInfo &disk, const std::vector<std::pair<std::string, std::string>> &properties);

// MemTotal from <procfs>/meminfo, in bytes.
Result<std::uint64_t> read_memtotal(const HostRoots &roots);
// Pure parser of /proc/meminfo text.
Result<std::uint64_t> parse_meminfo_total(const std::string &text);

// Online CPUs (sysconf).
unsigned read_cpu_count();

// Opens <devfs>/kvm read-write; "" when usable, else why not (with the fix).
std::string kvm_problem(const HostRoots &roots);

} // namespace rescuevm
