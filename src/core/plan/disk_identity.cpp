// SPDX-License-Identifier: GPL-2.0-or-later
// Disk identity: the rule a QEMU start checks each passed disk against, so a swapped or newly used disk is never passed. Pure.
#include "rescuevm/core/disk_identity.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace rescuevm {

std::string disk_identity_problem(const DiskInfo &planned, const DiskInfo *now, const std::string &expected_disk_id)
{
    const std::string &name = planned.name;
    if (!now)
        return fmt::format("disk {} ({}) is gone", name, planned.path);
    if (now->major != planned.major || now->minor != planned.minor)
        return fmt::format("disk {} is now device {}:{}, not {}:{}: another device took its name", name, now->major,
                           now->minor, planned.major, planned.minor);
    if (now->size_bytes != planned.size_bytes)
        return fmt::format("disk {} is now {} bytes, not {}: another disk (or medium) is there", name, now->size_bytes,
                           planned.size_bytes);
    if (now->logical_block_size != planned.logical_block_size ||
        now->physical_block_size != planned.physical_block_size)
        return fmt::format("disk {} now has {}/{}-byte sectors, not {}/{}", name, now->logical_block_size,
                           now->physical_block_size, planned.logical_block_size, planned.physical_block_size);
    if (!planned.serial.empty() || !now->serial.empty()) {
        if (now->serial != planned.serial)
            return fmt::format("disk {} now has serial \"{}\", not \"{}\": another disk is there", name, now->serial,
                               planned.serial);
    } else if (!planned.wwn.empty() || !now->wwn.empty()) {
        if (now->wwn != planned.wwn)
            return fmt::format("disk {} now has WWN \"{}\", not \"{}\": another disk is there", name, now->wwn,
                               planned.wwn);
    } else if (!planned.backing_file.empty() || !now->backing_file.empty()) {
        if (now->backing_file != planned.backing_file)
            return fmt::format("disk {} is now backed by \"{}\", not \"{}\": another image is attached there", name,
                               now->backing_file, planned.backing_file);
    } else if (now->disk_id != expected_disk_id) {
        return fmt::format("disk {} has no serial or WWN, and its partition table id is now \"{}\", not \"{}\": it "
                           "cannot be told apart from another disk",
                           name, now->disk_id, expected_disk_id);
    }
    if (!now->in_use.empty())
        return fmt::format("disk {} is now in use by the host: {}", name, fmt::join(now->in_use, ", "));
    return "";
}

std::vector<std::string> disk_identity_problems(const std::vector<const DiskInfo *> &planned,
                                                const std::vector<DiskInfo> &now,
                                                const std::vector<std::string> &expected_disk_ids)
{
    std::vector<std::string> problems;
    for (std::size_t i = 0; i < planned.size(); ++i) {
        const DiskInfo *found = nullptr;
        for (const auto &d : now)
            if (d.name == planned[i]->name)
                found = &d;
        std::string expected = i < expected_disk_ids.size() ? expected_disk_ids[i] : planned[i]->disk_id;
        if (std::string p = disk_identity_problem(*planned[i], found, expected); !p.empty())
            problems.push_back(std::move(p));
    }
    return problems;
}

} // namespace rescuevm
