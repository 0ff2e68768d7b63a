// SPDX-License-Identifier: GPL-2.0-or-later
// Pure parsing of MBR and GPT sectors into the identity fields Windows keys disks on.
#include "rescuevm/core/signatures.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace rescuevm {

namespace {

std::uint16_t le16(std::span<const std::uint8_t> b, std::size_t at)
{
    return static_cast<std::uint16_t>(b[at] | (b[at + 1] << 8));
}

std::uint32_t le32(std::span<const std::uint8_t> b, std::size_t at)
{
    return static_cast<std::uint32_t>(b[at]) | static_cast<std::uint32_t>(b[at + 1]) << 8 |
           static_cast<std::uint32_t>(b[at + 2]) << 16 | static_cast<std::uint32_t>(b[at + 3]) << 24;
}

std::uint64_t le64(std::span<const std::uint8_t> b, std::size_t at)
{
    return static_cast<std::uint64_t>(le32(b, at)) | static_cast<std::uint64_t>(le32(b, at + 4)) << 32;
}

bool bytes_equal(std::span<const std::uint8_t> b, std::size_t at, const char *text)
{
    std::size_t n = std::strlen(text);
    return at + n <= b.size() && std::memcmp(b.data() + at, text, n) == 0;
}

constexpr std::size_t mbr_records = 0x1BE;
constexpr std::size_t gpt_header_min = 92;
// Windows and every tool use 128 x 128 bytes; anything far beyond is not a GPT we trust.
constexpr std::uint64_t gpt_entries_max_bytes = 1024 * 1024;

} // namespace

std::uint32_t crc32(std::span<const std::uint8_t> bytes)
{
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    std::uint32_t crc = 0xFFFFFFFFu;
    for (std::uint8_t byte : bytes)
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

std::string format_efi_guid(std::span<const std::uint8_t, 16> g)
{
    return fmt::format("{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                       le32(g, 0), le16(g, 4), le16(g, 6), g[8], g[9], g[10], g[11], g[12],
                       g[13], g[14], g[15]);
}

MbrSector parse_mbr(std::span<const std::uint8_t> s)
{
    MbrSector m;
    if (s.size() < 512)
        return m;
    m.boot_signature = s[510] == 0x55 && s[511] == 0xAA;
    m.disk_id = fmt::format("{:08x}", le32(s, 0x1B8));
    m.valid_records = true;
    for (std::size_t i = 0; i < 4; ++i) {
        std::size_t rec = mbr_records + 16 * i;
        if (s[rec] != 0x00 && s[rec] != 0x80)
            m.valid_records = false;
        if (s[rec + 4] == 0xEE)
            m.protective = true;
    }
    // A filesystem written over the whole disk also ends in 0x55AA (libblkid makes the same check).
    m.volume_boot_record = bytes_equal(s, 3, "NTFS    ") || bytes_equal(s, 3, "EXFAT   ") ||
                           bytes_equal(s, 0x36, "FAT12   ") || bytes_equal(s, 0x36, "FAT16   ") ||
                           bytes_equal(s, 0x52, "FAT32   ");
    return m;
}

Result<GptHeader> parse_gpt_header(std::span<const std::uint8_t> b, std::uint64_t lba)
{
    if (b.size() < 512 || !bytes_equal(b, 0, "EFI PART"))
        return fail(fmt::format("no GPT header signature at sector {}", lba));
    std::uint32_t size = le32(b, 12);
    if (size < gpt_header_min || size > b.size())
        return fail(fmt::format("GPT header at sector {} has an impossible size {}", lba, size));
    std::vector<std::uint8_t> copy(b.begin(), b.begin() + size);
    std::memset(copy.data() + 16, 0, 4); // the CRC is computed with its own field zeroed
    if (crc32(copy) != le32(b, 16))
        return fail(fmt::format("GPT header at sector {} has a wrong CRC", lba));

    GptHeader h;
    h.my_lba = le64(b, 24);
    h.alternate_lba = le64(b, 32);
    h.disk_guid = format_efi_guid(b.subspan(56).first<16>());
    h.entries_lba = le64(b, 72);
    h.entry_count = le32(b, 80);
    h.entry_size = le32(b, 84);
    h.entries_crc = le32(b, 88);
    if (h.my_lba != lba)
        return fail(fmt::format("GPT header at sector {} says it is at sector {}", lba, h.my_lba));
    if (h.entry_size < 128 || h.entry_size % 8 != 0 ||
        static_cast<std::uint64_t>(h.entry_size) * h.entry_count > gpt_entries_max_bytes)
        return fail(fmt::format("GPT header at sector {} describes an impossible entry array "
                                "({} entries of {} bytes)", lba, h.entry_count, h.entry_size));
    return h;
}

Result<std::vector<PartitionGuid>> parse_gpt_entries(std::span<const std::uint8_t> bytes,
                                                     const GptHeader &h)
{
    std::size_t total = static_cast<std::size_t>(h.entry_count) * h.entry_size;
    if (bytes.size() < total)
        return fail(fmt::format("GPT entry array is short: {} of {} bytes", bytes.size(), total));
    if (crc32(bytes.first(total)) != h.entries_crc)
        return fail(fmt::format("GPT entry array at sector {} has a wrong CRC", h.entries_lba));

    static constexpr std::array<std::uint8_t, 16> unused{};
    std::vector<PartitionGuid> parts;
    for (std::uint32_t i = 0; i < h.entry_count; ++i) {
        auto e = bytes.subspan(static_cast<std::size_t>(i) * h.entry_size, h.entry_size);
        if (std::equal(unused.begin(), unused.end(), e.begin()))
            continue;
        PartitionGuid p;
        p.number = i + 1;
        p.type_guid = format_efi_guid(e.first<16>());
        p.guid = format_efi_guid(e.subspan(16).first<16>());
        p.first_lba = le64(e, 32);
        p.last_lba = le64(e, 40);
        parts.push_back(std::move(p));
    }
    return parts;
}

std::string disk_id_of_head(std::span<const std::uint8_t> head)
{
    if (head.size() < 512)
        return "";
    MbrSector mbr = parse_mbr(head.first(512));
    if (!mbr.boot_signature)
        return "";
    if (mbr.protective) {
        for (std::size_t sector : {512u, 4096u})
            if (head.size() >= sector * 2)
                if (auto h = parse_gpt_header(head.subspan(sector, sector), 1))
                    return h->disk_guid;
        return "";
    }
    if (mbr.volume_boot_record || !mbr.valid_records || mbr.disk_id == "00000000")
        return "";
    return mbr.disk_id;
}

} // namespace rescuevm
