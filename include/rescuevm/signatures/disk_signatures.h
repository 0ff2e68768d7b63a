// SPDX-License-Identifier: GPL-2.0-or-later
// Disk signatures on real disks: read (O_DIRECT), recorded in runtime_dir, checked, and restored on request.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/signatures.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace rescuevm {

// ---- Reading (imperative shell) ----

// Reads the identity of a block device (or a raw image file) read-only; block
// devices with O_DIRECT, so what QEMU wrote with cache.direct=on is what we see.
Result<DiskSignature> read_disk_signature(const std::string &device);

// Reads each recorded disk again and compares; a disk that cannot be read
// becomes a change of kind unreadable.
std::vector<SignatureChange> check_signatures(const std::vector<DiskSignature> &recorded);

// ---- Recording (runtime_dir, mode 0600) ----

Result<void> save_signatures(const std::string &path, const std::vector<DiskSignature> &disks);
Result<std::vector<DiskSignature>> load_signatures(const std::string &path);

// ---- Restoring (writes to the disk: only on explicit request) ----

struct RestoreReport {
    bool written = false;             // false: the disk already matched
    std::vector<std::string> actions; // "disk signature 9f8e7d6c -> 1234abcd", ...
};

// Writes the recorded MBR signature / GPT disk GUID / GPT partition GUIDs back
// through libfdisk. Checks everything before writing anything; refuses when the
// table type, block size or a partition's sectors changed, and verifies after.
Result<RestoreReport> restore_signature(const DiskSignature &recorded);

// ---- Sector parsing (pure; exposed for tests) ----

struct MbrSector {
    bool boot_signature = false;  // 0x55AA at 510
    bool protective = false;      // a partition record of type 0xEE: GPT follows
    bool volume_boot_record = false; // NTFS/FAT/exFAT boot sector, not a partition table
    bool valid_records = false;   // every boot indicator is 0x00 or 0x80
    std::string disk_id;          // 8 lowercase hex of the LE dword at 0x1B8
};

struct GptHeader {
    std::string disk_guid;
    std::uint64_t my_lba = 0;
    std::uint64_t alternate_lba = 0;
    std::uint64_t entries_lba = 0;
    std::uint32_t entry_count = 0;
    std::uint32_t entry_size = 0;
    std::uint32_t entries_crc = 0;
};

MbrSector parse_mbr(std::span<const std::uint8_t> sector0);
// Checks signature, size, CRC and that the header is where it says it is.
Result<GptHeader> parse_gpt_header(std::span<const std::uint8_t> block, std::uint64_t lba);
// Checks the entry array CRC, returns the used entries.
Result<std::vector<PartitionGuid>> parse_gpt_entries(std::span<const std::uint8_t> bytes,
                                                     const GptHeader &header);
// EFI GUIDs are stored mixed-endian: first three fields little-endian.
std::string format_efi_guid(std::span<const std::uint8_t, 16> bytes);
std::uint32_t crc32(std::span<const std::uint8_t> bytes);

} // namespace rescuevm
