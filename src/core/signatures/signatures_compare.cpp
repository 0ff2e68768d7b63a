// SPDX-License-Identifier: GPL-2.0-or-later
// Pure comparison of recorded and current disk identities, and the warnings they give.
#include "rescuevm/core/signatures.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <map>

namespace rescuevm {

namespace {

std::string lower(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// All-zero identities are "no identity": nothing for Windows to collide on.
bool meaningful_id(const std::string &id)
{
    return !id.empty() && id.find_first_not_of("0-") != std::string::npos;
}

std::string disk_label(const SignatureChange &c)
{
    return c.path.empty() ? "disk " + c.name : fmt::format("disk {} ({})", c.name, c.path);
}

std::string sectors(const PartitionGuid &p)
{
    return fmt::format("sectors {}-{}", p.first_lba, p.last_lba);
}

SignatureChange change_of(SignatureChange::Kind kind, const DiskSignature &d)
{
    SignatureChange c;
    c.kind = kind;
    c.name = d.name;
    c.path = d.path;
    c.table = d.table;
    return c;
}

} // namespace

const char *to_string(SignatureChange::Kind kind)
{
    switch (kind) {
    case SignatureChange::Kind::disk_id: return "disk_id";
    case SignatureChange::Kind::partition_guid: return "partition_guid";
    case SignatureChange::Kind::partition_moved: return "partition_moved";
    case SignatureChange::Kind::table: return "table";
    case SignatureChange::Kind::unreadable: return "unreadable";
    }
    return "unknown";
}

std::vector<SignatureChange> compare(const DiskSignature &before, const DiskSignature &now)
{
    std::vector<SignatureChange> changes;
    if (before.table != now.table) {
        auto c = change_of(SignatureChange::Kind::table, before);
        c.old_value = before.table;
        c.new_value = now.table;
        changes.push_back(std::move(c));
        return changes;
    }
    if (lower(before.disk_id) != lower(now.disk_id)) {
        auto c = change_of(SignatureChange::Kind::disk_id, before);
        c.old_value = before.disk_id;
        c.new_value = now.disk_id;
        c.restorable = true;
        changes.push_back(std::move(c));
    }
    for (const auto &p : before.partitions) {
        auto it = std::find_if(now.partitions.begin(), now.partitions.end(),
                               [&](const PartitionGuid &q) { return q.number == p.number; });
        if (it == now.partitions.end() || it->first_lba != p.first_lba || it->last_lba != p.last_lba) {
            auto c = change_of(SignatureChange::Kind::partition_moved, before);
            c.partition = p.number;
            c.old_value = sectors(p);
            c.new_value = it == now.partitions.end() ? "gone" : sectors(*it);
            changes.push_back(std::move(c));
        } else if (lower(it->guid) != lower(p.guid)) {
            auto c = change_of(SignatureChange::Kind::partition_guid, before);
            c.partition = p.number;
            c.old_value = p.guid;
            c.new_value = it->guid;
            c.restorable = true;
            changes.push_back(std::move(c));
        }
    }
    return changes;
}

std::vector<SignatureChange> compare(const std::vector<DiskSignature> &recorded,
                                    const std::vector<DiskSignature> &current)
{
    std::vector<SignatureChange> changes;
    for (const auto &before : recorded) {
        auto it = std::find_if(current.begin(), current.end(),
                               [&](const DiskSignature &d) { return d.path == before.path; });
        if (it == current.end()) {
            auto c = change_of(SignatureChange::Kind::unreadable, before);
            c.old_value = before.disk_id;
            c.new_value = "the disk is no longer there";
            changes.push_back(std::move(c));
            continue;
        }
        auto found = compare(before, *it);
        changes.insert(changes.end(), found.begin(), found.end());
    }
    return changes;
}

std::string describe_change(const SignatureChange &c)
{
    const std::string disk = disk_label(c);
    const std::string restore = fmt::format("to put it back, with the VM stopped: rescuevm signatures restore {}", c.name);
    const std::string boot_risk =
        "the server's own Windows may then fail to boot with 0xc000000e (winload.exe)";
    switch (c.kind) {
    case SignatureChange::Kind::disk_id:
        if (c.table == "gpt")
            return fmt::format("{}: GPT disk GUID changed from {} to {}; Windows' boot configuration "
                               "(BCD) finds its disk by this GUID, so {}; {}",
                               disk, c.old_value, c.new_value, boot_risk, restore);
        return fmt::format("{}: MBR disk signature changed from {} to {}; Windows' boot configuration "
                           "(BCD) finds its disk by this signature, so {}; {}",
                           disk, c.old_value, c.new_value, boot_risk, restore);
    case SignatureChange::Kind::partition_guid:
        return fmt::format("{}: GPT partition {} GUID changed from {} to {}; Windows' boot "
                           "configuration (BCD) finds its system and boot partitions by these GUIDs, "
                           "so {}; {}",
                           disk, c.partition, c.old_value, c.new_value, boot_risk, restore);
    case SignatureChange::Kind::partition_moved:
        return fmt::format("{}: GPT partition {} was at {} and is now {}; the server's own system may "
                           "not boot from this disk, and rescuevm does not recreate partitions: check "
                           "it (gdisk -l {}) before the server boots from it",
                           disk, c.partition, c.old_value,
                           c.new_value == "gone" ? std::string("gone") : "at " + c.new_value, c.path);
    case SignatureChange::Kind::table:
        return fmt::format("{}: partition table changed from {} to {}; the server's own system will "
                           "probably not boot from this disk, and rescuevm does not rewrite partition "
                           "tables: check the disk (gdisk -l {}, testdisk) before rebooting the server",
                           disk, c.old_value, c.new_value, c.path);
    case SignatureChange::Kind::unreadable:
        return fmt::format("{}: cannot read the disk identity ({}); it was {} {} when the session "
                           "started: check the disk before rebooting the server (rescuevm signatures "
                           "shows the recorded values)",
                           disk, c.new_value, c.table, c.old_value.empty() ? "(no identity)" : c.old_value);
    }
    return disk + ": unknown change";
}

std::vector<std::string> signature_collisions(const std::vector<DiskInfo> &selected,
                                             const std::string &image_disk_id)
{
    std::vector<std::string> warnings;
    std::map<std::string, std::vector<std::string>> by_id; // ordered: stable output
    for (const auto &d : selected)
        if (meaningful_id(d.disk_id))
            by_id[lower(d.disk_id)].push_back(d.name);

    for (const auto &[id, names] : by_id)
        if (names.size() > 1)
            warnings.push_back(fmt::format(
                "disks {} have the same disk identity {}: when the customer brings them online, "
                "Windows gives all but one a new identity, and the server may then fail to boot "
                "from a renamed disk with 0xc000000e; rescuevm records the identities and "
                "`rescuevm signatures restore` puts them back after the session",
                fmt::join(names, ", "), id));

    if (meaningful_id(image_disk_id)) {
        auto it = by_id.find(lower(image_disk_id));
        if (it != by_id.end())
            for (const auto &name : it->second)
                warnings.push_back(fmt::format(
                    "disk {} has the same disk identity {} as the rescue image: Windows keeps it "
                    "offline and gives it a new identity when the customer brings it online, and "
                    "the server may then fail to boot from it with 0xc000000e; "
                    "`rescuevm signatures restore {}` puts it back after the session",
                    name, it->first, name));
    }
    return warnings;
}

std::vector<std::string> bitlocker_notices(const std::vector<DiskInfo> &selected)
{
    std::vector<std::string> notices;
    for (const auto &d : selected) {
        std::vector<std::string> encrypted;
        for (const auto &p : d.partitions)
            if (p.windows_role == "bitlocker" || lower(p.fs_type) == "bitlocker")
                encrypted.push_back(p.name);
        if (encrypted.empty())
            continue;
        notices.push_back(fmt::format(
            "disk {}: {} {} {} encrypted with BitLocker; the rescue VM does not have the server's "
            "TPM, so the customer will need the BitLocker recovery key to unlock {}",
            d.name, encrypted.size() == 1 ? "partition" : "partitions", fmt::join(encrypted, ", "),
            encrypted.size() == 1 ? "is" : "are", encrypted.size() == 1 ? "it" : "them"));
    }
    return notices;
}

} // namespace rescuevm
