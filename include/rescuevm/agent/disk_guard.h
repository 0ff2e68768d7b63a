// SPDX-License-Identifier: GPL-2.0-or-later
// The disk guard of every QEMU start: each passed disk re-checked (same disk, unused) and opened exclusively for QEMU.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/host_facts.h"
#include "rescuevm/host/disks.h"
#include "rescuevm/sys/unique_fd.h"

#include <string>
#include <vector>

namespace rescuevm {

// A passed disk held open read-write with O_EXCL: while this fd (or QEMU's copy of
// it) lives, the kernel refuses to mount any of its partitions, to assemble md or
// dm/LVM over it, and any other exclusive opener (a second rescuevm's QEMU).
struct LockedDisk {
    std::string name;
    std::string path;
    UniqueFd fd;
};

// Reads the disk inventory afresh, checks every planned disk with
// disk_identity_problem() (`expected_disk_ids` in the same order), then opens each
// exclusively and checks the open fd is the planned device. Refuses (naming each
// disk and why, and who holds a busy one) without keeping anything open. Blocking:
// libblkid reads every disk, so run it in a Worker.
Result<std::vector<LockedDisk>> check_and_lock_disks(const std::vector<DiskInfo> &planned,
                                                     const std::vector<std::string> &expected_disk_ids,
                                                     const HostRoots &roots = {});

// Who holds a block device or one of its partitions open, in words ("pid 812
// (qemu-system-x86)"), from /proc/*/fd; "" when nobody visible does.
std::string block_device_holders(const DiskInfo &disk, const std::string &proc_root = "/proc");

} // namespace rescuevm
