// SPDX-License-Identifier: GPL-2.0-or-later
// Who on the host uses a disk: mounts (by device number), active swap, holders (md, dm, LVM).
#include "disk_probe.h"
#include "sysfs_block.h"

#include "rescuevm/host/procfs.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

namespace rescuevm::host {
namespace {

using DevNum = std::pair<unsigned, unsigned>;

// A disk, or one of its partitions, that a mount, swap or holder points at.
struct Owner {
    DiskInfo *disk = nullptr;
    std::string partition; // "" for the whole disk
};

void add_reason(const Owner &o, const std::string &whole_disk, const std::string &partition_verb)
{
    std::string reason = o.partition.empty() ? whole_disk : "partition " + o.partition + " " + partition_verb;
    auto &uses = o.disk->in_use;
    if (std::find(uses.begin(), uses.end(), reason) == uses.end())
        uses.push_back(std::move(reason));
}

// "/dev/sda2" under the devfs root the readers were given.
std::string in_devfs(const HostRoots &roots, const std::string &path)
{
    if (path.starts_with("/dev/"))
        return roots.devfs + path.substr(4);
    return path;
}

std::optional<DevNum> block_device_number(const std::string &path)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode))
        return std::nullopt;
    return DevNum{major(st.st_rdev), minor(st.st_rdev)};
}

std::string basename_of(const std::string &path)
{
    auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "dm-0 (vg0-root)": the name an operator knows the device-mapper device by.
std::string holder_label(const std::string &sysfs, const std::string &holder)
{
    if (auto name = read_attribute(sysfs + "/block/" + holder + "/dm/name"); name && !name->empty())
        return holder + " (" + *name + ")";
    return holder;
}

Result<std::string> read_proc(const HostRoots &roots, const std::string &file)
{
    auto text = read_text_file(roots.procfs + "/" + file);
    if (!text)
        return fail(text.error().message + ": without it rescuevm cannot tell which disks the host "
                    "uses; mount procfs at " + roots.procfs);
    return text;
}

} // namespace

Result<void> find_disk_uses(std::vector<DiskInfo> &disks, const HostRoots &roots)
{
    const std::string mountinfo = RESCUEVM_TRY(read_proc(roots, "self/mountinfo"));
    const std::string swaps = RESCUEVM_TRY(read_proc(roots, "swaps"));

    std::map<DevNum, Owner> by_number;
    std::map<std::string, Owner> by_name;
    for (auto &d : disks) {
        by_number[{d.major, d.minor}] = Owner{&d, ""};
        by_name[d.name] = Owner{&d, ""};
        for (const auto &p : d.partitions) {
            if (p.major || p.minor)
                by_number[{p.major, p.minor}] = Owner{&d, p.name};
            by_name[p.name] = Owner{&d, p.name};
        }
    }

    for (const auto &m : parse_mountinfo(mountinfo)) {
        DevNum dev{m.major, m.minor};
        // btrfs (and other multi-device filesystems) report an anonymous device
        // (major 0); then the mount source names the real one.
        if (m.major == 0 && m.source.starts_with("/"))
            if (auto real = block_device_number(in_devfs(roots, m.source)))
                dev = *real;
        if (auto it = by_number.find(dev); it != by_number.end())
            add_reason(it->second, "mounted at " + m.mount_point, "mounted at " + m.mount_point);
    }

    for (const auto &s : parse_swaps(swaps)) {
        const std::string path = in_devfs(roots, s.path);
        std::optional<Owner> owner;
        if (auto dev = block_device_number(path)) {
            if (auto it = by_number.find(*dev); it != by_number.end())
                owner = it->second;
        } else if (s.type == "partition") {
            // The node is not where /proc/swaps says (another devfs root): match the kernel name.
            if (auto it = by_name.find(basename_of(s.path)); it != by_name.end())
                owner = it->second;
        }
        if (owner)
            add_reason(*owner, "swap", "is swap");
    }

    for (auto &d : disks) {
        const std::string dir = roots.sysfs + "/block/" + d.name;
        for (const auto &h : list_directory(dir + "/holders"))
            add_reason(Owner{&d, ""}, "held by " + holder_label(roots.sysfs, h), "");
        for (const auto &p : d.partitions)
            for (const auto &h : list_directory(dir + "/" + p.name + "/holders"))
                add_reason(Owner{&d, p.name}, "", "held by " + holder_label(roots.sysfs, h));
    }
    return {};
}

} // namespace rescuevm::host
