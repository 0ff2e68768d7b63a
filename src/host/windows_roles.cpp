// SPDX-License-Identifier: GPL-2.0-or-later
// Recognising Windows partitions (NTFS, BitLocker, ESP, MSR, LDM, WinRE) from type and filesystem.
#include "rescuevm/host/disks.h"

#include <algorithm>
#include <cctype>

namespace rescuevm {
namespace {

std::string lower(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

struct TypeRole {
    const char *type; // GPT type GUID (lower case) or MBR type as "0x.."
    const char *role;
};

// GUIDs from the UEFI spec and Microsoft's partition type list.
constexpr TypeRole kRoles[] = {
    {"c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "efi-system"},
    {"0xef", "efi-system"},
    {"e3c9e316-0b5c-4db8-817d-f92df00215ae", "microsoft-reserved"},
    {"5808c8aa-7e8f-42e0-85d2-e1e90434cfb3", "ldm-metadata"},
    {"af9b60a0-1431-4f62-bc68-3311714a69ad", "ldm-data"},
    {"de94bba4-06d1-4d40-a16a-bfd50179d6ac", "windows-recovery"},
    {"0x27", "windows-recovery"}, // hidden NTFS WinRE on MBR disks
};

} // namespace

std::string windows_role(const std::string &part_type, const std::string &fs_type)
{
    // BitLocker first: whatever the partition is for, its data needs the recovery key.
    if (lower(fs_type) == "bitlocker")
        return "bitlocker";
    const std::string type = lower(part_type);
    for (const auto &r : kRoles)
        if (type == r.type)
            return r.role;
    if (lower(fs_type) == "ntfs")
        return "ntfs";
    return "";
}

} // namespace rescuevm
