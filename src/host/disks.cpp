// SPDX-License-Identifier: GPL-2.0-or-later
// read_disks(): the disk inventory, from udev or sysfs, libblkid and procfs.
#include "rescuevm/host/disks.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/core/plan.h" // natural_less: the one kernel-name order

#include "disk_probe.h"
#include "sysfs_block.h"
#include "udev_context.h"

#include <unistd.h>

#include <algorithm>
#include <optional>

namespace rescuevm {

Result<std::vector<DiskInfo>> read_disks(const HostRoots &roots)
{
    auto log = log::get("disks");
    std::optional<host::UdevContext> udev;
    if (roots.use_udev)
        udev.emplace();

    std::vector<DiskInfo> disks;
    for (const auto &name : host::list_block_disks(roots.sysfs)) {
        DiskInfo d = host::read_sysfs_disk(roots.sysfs, roots.devfs, name);
        if (d.size_bytes == 0) {
            log->debug("{}: size 0 (no medium, or a loop device with no file), not listed", name);
            continue;
        }
        const std::string db_entry =
            roots.udev_db + "/b" + std::to_string(d.major) + ":" + std::to_string(d.minor);
        if (udev && *udev && ::access(db_entry.c_str(), F_OK) == 0) {
            if (auto props = udev->block_properties(name)) {
                apply_udev_properties(d, *props);
                d.source = "udev";
            } else {
                log->warn("{}: udev has a database entry but libudev cannot read the device, "
                          "using sysfs attributes", name);
            }
        }
        if (auto probed = host::probe_disk_contents(d, roots.devfs); !probed)
            log->warn("{}: partition table and filesystems unknown: {}, ignoring", name,
                      probed.error().message);
        disks.push_back(std::move(d));
    }

    if (auto uses = host::find_disk_uses(disks, roots); !uses)
        return std::unexpected(uses.error());
    std::sort(disks.begin(), disks.end(),
              [](const DiskInfo &a, const DiskInfo &b) { return natural_less(a.name, b.name); });
    return disks;
}

} // namespace rescuevm
