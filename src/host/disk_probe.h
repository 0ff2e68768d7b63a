// SPDX-License-Identifier: GPL-2.0-or-later
// Internal to src/host: what is on a disk (libblkid) and who on the host uses it (procfs, sysfs).
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/host_facts.h"
#include "rescuevm/host/disks.h"

#include <vector>

namespace rescuevm::host {

// Fills partition_table, disk_id, fs_type and the partitions (merged with the
// ones sysfs listed, by number) with their filesystems and Windows roles.
// Opens everything O_RDONLY and only reads. An error means the disk could not
// be probed at all; a partition that cannot be probed is logged and skipped.
Result<void> probe_disk_contents(DiskInfo &disk, const std::string &devfs);

// Adds in_use reasons: mounts (by device number), active swap, holders.
// Fails when mountinfo or swaps cannot be read: no disk could then be known unused.
Result<void> find_disk_uses(std::vector<DiskInfo> &disks, const HostRoots &roots);

} // namespace rescuevm::host
