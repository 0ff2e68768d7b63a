// SPDX-License-Identifier: GPL-2.0-or-later
// Disk identity: whether a disk found now is still the disk the plan passes to the VM, and still unused. Pure.
#pragma once

#include "rescuevm/core/host_facts.h"

#include <string>
#include <vector>

namespace rescuevm {

// "" when `now` is the planned disk and the host does not use it; else why not, in
// words naming the disk. Identity: device number, size and sector sizes, then the
// stable identity the disk has: serial or WWN (real disks), the backing file (loop
// devices), and only where neither exists the partition-table id, compared with
// `expected_disk_id` (the latest one the agent saw: Windows may change it during a
// session, and that is no other disk). `now` null: the disk is gone.
std::string disk_identity_problem(const DiskInfo &planned, const DiskInfo *now, const std::string &expected_disk_id);

// Every planned disk against the inventory read now (matched by kernel name); the
// problems, one per disk that may not be started with.
std::vector<std::string> disk_identity_problems(const std::vector<const DiskInfo *> &planned,
                                                const std::vector<DiskInfo> &now,
                                                const std::vector<std::string> &expected_disk_ids);

} // namespace rescuevm
