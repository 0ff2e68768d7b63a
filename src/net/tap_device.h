// SPDX-License-Identifier: GPL-2.0-or-later
// The character device of a macvtap (/dev/tapN), opened for QEMU.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/sys/unique_fd.h"

#include <string>

namespace rescuevm::net {

struct TapDevice {
    UniqueFd fd;
    std::string path;
    bool created = false; // we made the node with mknod; remove it on release
};

// Opens <dev_dir>/tapN (N = the macvtap's ifindex) O_RDWR|O_CLOEXEC. When devtmpfs
// has not made the node, creates it from /sys/class/net/<macvtap>/macvtap/tapN/dev,
// in dev_dir or else in node_dir (0700). Checks that the opened node is that device.
Result<TapDevice> open_macvtap_tap(const std::string &sys_root, const std::string &dev_dir,
                                   const std::string &node_dir, const std::string &macvtap,
                                   int ifindex);

} // namespace rescuevm::net
