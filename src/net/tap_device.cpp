// SPDX-License-Identifier: GPL-2.0-or-later
// The character device of a macvtap (/dev/tapN, or a node of our own), opened for QEMU.
#include "tap_device.h"

#include "rescuevm/sys/files.h"
#include "rescuevm/sys/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

namespace rescuevm::net {

namespace {

std::string numbers(dev_t dev) { return std::to_string(major(dev)) + ":" + std::to_string(minor(dev)); }

// Opens `path` and checks that it is the character device `want`.
Result<UniqueFd> open_node(const std::string &path, dev_t want)
{
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        int err = errno;
        return fail("network: cannot open " + path + ": " + errno_text(err) +
                    (err == EACCES ? " (is its directory on a nodev mount?)" : ""));
    }
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != want)
        return fail("network: " + path + " changed while it was opened: it is not the macvtap device " +
                    numbers(want));
    return fd;
}

// Makes our own node for `want` at `path` (replacing whatever has that name: it is
// named for this device, so nobody else's), 0600.
Result<void> make_node(const std::string &path, dev_t want)
{
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return fail("network: cannot remove the old node " + path + ": " + errno_text(errno));
    if (::mknod(path.c_str(), S_IFCHR | 0600, want) != 0)
        return fail("network: cannot create the device node " + path + " (" + numbers(want) +
                    "): " + errno_text(errno));
    return {};
}

} // namespace

std::string own_tap_node_name(int ifindex, unsigned major_number, unsigned minor_number)
{
    return "rescuevm-tap" + std::to_string(ifindex) + "-" + std::to_string(major_number) + "-" +
           std::to_string(minor_number);
}

Result<TapDevice> open_macvtap_tap(const std::string &sys_root, const std::string &dev_dir,
                                   const std::string &node_dir, const std::string &macvtap,
                                   int ifindex)
{
    auto log = log::get("network");
    std::string tap = "tap" + std::to_string(ifindex);
    std::string dev_file = sys_root + "/class/net/" + macvtap + "/macvtap/" + tap + "/dev";
    std::ifstream in(dev_file);
    unsigned major_number = 0, minor_number = 0;
    char colon = 0;
    if (!(in >> major_number >> colon >> minor_number) || colon != ':')
        return fail("network: cannot read " + dev_file + ": is " + macvtap + " a macvtap?");
    dev_t want = makedev(major_number, minor_number);

    // devtmpfs's node, when it is this macvtap's. The name is the ifindex, which is per
    // network namespace: with macvtaps of the same ifindex in two namespaces, /dev/tapN is
    // the first one's (and when that goes, nobody's); a node made by hand outlives its
    // device. Such a node is neither opened nor touched.
    TapDevice tapdev;
    tapdev.path = dev_dir + "/" + tap;
    struct stat st{};
    if (::lstat(tapdev.path.c_str(), &st) == 0) {
        if (S_ISCHR(st.st_mode) && st.st_rdev == want) {
            tapdev.fd = RESCUEVM_TRY(open_node(tapdev.path, want));
            return tapdev;
        }
        log->warn("{} is {} (another network namespace's macvtap with ifindex {}, or a node its device "
                  "outlived), not {}'s device {}: leaving it alone, using a node of our own",
                  tapdev.path, S_ISCHR(st.st_mode) ? "device " + numbers(st.st_rdev) : std::string("not a device"),
                  ifindex, macvtap, numbers(want));
    } else if (errno != ENOENT) {
        return fail("network: cannot look at " + tapdev.path + ": " + errno_text(errno));
    }

    // Our own node, named for the device's numbers (unique among live devices), next to
    // devtmpfs's; else, when dev_dir is not writable, in our private node_dir (0700).
    tapdev.path = dev_dir + "/" + own_tap_node_name(ifindex, major_number, minor_number);
    if (auto made = make_node(tapdev.path, want); !made) {
        std::string first = made.error().message;
        if (::mkdir(node_dir.c_str(), 0700) != 0 && errno != EEXIST)
            return fail(first + "; nor can the directory " + node_dir + " be made: " + errno_text(errno));
        tapdev.path = node_dir + "/" + tap;
        if (auto again = make_node(tapdev.path, want); !again)
            return fail(first + "; " + again.error().message);
    }
    tapdev.created = true;
    log->info("created device node {} ({})", tapdev.path, numbers(want));
    auto fd = open_node(tapdev.path, want);
    if (!fd) {
        ::unlink(tapdev.path.c_str());
        return std::unexpected(fd.error());
    }
    tapdev.fd = std::move(*fd);
    return tapdev;
}

} // namespace rescuevm::net
