// SPDX-License-Identifier: GPL-2.0-or-later
// The character device of a macvtap (/dev/tapN, or a node of our own), opened for QEMU.
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

// The name of the node we make for macvtap tap<ifindex> with device major:minor:
// "rescuevm-tap<ifindex>-<major>-<minor>".
std::string own_tap_node_name(int ifindex, unsigned major_number, unsigned minor_number);

// Opens the macvtap's character device O_RDWR|O_CLOEXEC for QEMU: <dev_dir>/tapN (N =
// the macvtap's ifindex) when that node is the device of
// /sys/class/net/<macvtap>/macvtap/tapN/dev. Otherwise -- devtmpfs made none, or tapN
// is another device (a macvtap with the same ifindex in another network namespace, a
// node that outlived its device), which is left alone -- makes our own node
// <dev_dir>/rescuevm-tapN-<major>-<minor>, or <node_dir>/tapN (0700) when dev_dir is not
// writable. Checks that the opened node is that device.
Result<TapDevice> open_macvtap_tap(const std::string &sys_root, const std::string &dev_dir,
                                   const std::string &node_dir, const std::string &macvtap,
                                   int ifindex);

} // namespace rescuevm::net
