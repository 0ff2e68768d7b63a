// SPDX-License-Identifier: GPL-2.0-or-later
// The character device of a macvtap (/dev/tapN), opened for QEMU.
#include "tap_device.h"

#include "rescuevm/sys/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace rescuevm::net {

Result<TapDevice> open_macvtap_tap(const std::string &sys_root, const std::string &dev_dir,
                                   const std::string &node_dir, const std::string &macvtap,
                                   int ifindex)
{
    std::string tap = "tap" + std::to_string(ifindex);
    std::string dev_file = sys_root + "/class/net/" + macvtap + "/macvtap/" + tap + "/dev";
    std::ifstream in(dev_file);
    unsigned major = 0, minor = 0;
    char colon = 0;
    if (!(in >> major >> colon >> minor) || colon != ':')
        return fail("network: cannot read " + dev_file + ": is " + macvtap + " a macvtap?");
    dev_t want = makedev(major, minor);

    TapDevice tapdev;
    tapdev.path = dev_dir + "/" + tap;
    int fd = ::open(tapdev.path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        // No devtmpfs node: make one, in /dev if we may, else in our private directory.
        if (::mknod(tapdev.path.c_str(), S_IFCHR | 0600, want) != 0) {
            std::string private_dir = node_dir;
            if (::mkdir(private_dir.c_str(), 0700) != 0 && errno != EEXIST)
                return fail("network: cannot create " + tapdev.path + " nor the directory " +
                            private_dir + ": " + std::strerror(errno));
            tapdev.path = private_dir + "/" + tap;
            ::unlink(tapdev.path.c_str());
            if (::mknod(tapdev.path.c_str(), S_IFCHR | 0600, want) != 0)
                return fail("network: cannot create the device node " + tapdev.path + " (" +
                            std::to_string(major) + ":" + std::to_string(minor) +
                            "): " + std::strerror(errno));
        }
        tapdev.created = true;
        log::get("network")->info("created device node {} ({}:{})", tapdev.path, major, minor);
        fd = ::open(tapdev.path.c_str(), O_RDWR | O_CLOEXEC);
    }
    if (fd < 0) {
        int err = errno;
        if (tapdev.created)
            ::unlink(tapdev.path.c_str());
        return fail("network: cannot open " + tapdev.path + ": " + std::strerror(err) +
                    (err == EACCES ? " (is its directory on a nodev mount?)" : ""));
    }
    tapdev.fd.reset(fd);
    struct stat st{};
    if (::fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != want) {
        if (tapdev.created)
            ::unlink(tapdev.path.c_str());
        return fail("network: " + tapdev.path + " is not the macvtap device " +
                    std::to_string(major) + ":" + std::to_string(minor) +
                    ": remove the stale node");
    }
    return tapdev;
}

} // namespace rescuevm::net
