// SPDX-License-Identifier: GPL-2.0-or-later
// Disk signatures (MBR signature, GPT disk and partition GUIDs: what Windows keys disks on): the types, comparing, describing. Pure.
#pragma once

#include "rescuevm/core/host_facts.h"

#include "rescuevm/core/error.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace rescuevm {

// One used GPT entry. first/last LBA let restore make sure it writes the GUID
// back to the same partition, not to whatever now holds that entry number.
struct PartitionGuid {
    unsigned number = 0;          // 1-based entry number, as in "sdb3"
    std::string guid;             // lowercase, as blkid's PARTUUID
    std::string type_guid;        // lowercase partition type GUID
    std::uint64_t first_lba = 0;
    std::uint64_t last_lba = 0;
};

struct DiskSignature {
    std::string path;             // "/dev/sdb"
    std::string name;             // "sdb"
    std::string table;            // "dos" | "gpt" | "none"
    // MBR: the 4-byte signature as 8 lowercase hex digits ("1234abcd", as blkid's
    // PTUUID, but "00000000" is kept where blkid prints nothing).
    // GPT: the disk GUID, lowercase ("f4d0c979-f72a-4dda-92c2-7a811e2a6b31").
    std::string disk_id;
    std::vector<PartitionGuid> partitions; // GPT only
    unsigned logical_block_size = 512;
    std::uint64_t size_bytes = 0;
    std::uint64_t backup_header_lba = 0;   // GPT: where the primary header says the backup is
    std::uint64_t last_lba = 0;            // size_bytes / logical_block_size - 1
    // Which disk this was (disk_identity.h): a restore writes only to that same disk.
    DiskInfo identity;                     // name, path, major:minor, sizes, serial, WWN, backing file
};

// What differs between the recorded and the current identity of one disk.
struct SignatureChange {
    enum class Kind {
        disk_id,         // MBR signature or GPT disk GUID
        partition_guid,  // one GPT partition GUID
        partition_moved, // a recorded GPT partition is gone or has other sectors
        table,           // partition table type changed or disappeared
        unreadable,      // the disk (or its table) could not be read
    };
    Kind kind = Kind::disk_id;
    std::string name;             // disk kernel name
    std::string path;
    std::string table;            // recorded table type
    unsigned partition = 0;       // partition_guid/partition_moved: entry number
    std::string old_value;
    std::string new_value;        // for unreadable: the error message
    bool restorable = false;      // `signatures restore` can write old_value back
};

void to_json(nlohmann::json &j, const PartitionGuid &p);
void from_json(const nlohmann::json &j, PartitionGuid &p);
void to_json(nlohmann::json &j, const DiskSignature &d);
void from_json(const nlohmann::json &j, DiskSignature &d);
void to_json(nlohmann::json &j, const SignatureChange &c); // kind as "disk_id", "table", ...

// ---- Comparing and describing (pure) ----

// Changes from recorded to current, matched by path; a recorded disk missing
// from current is unreadable.
std::vector<SignatureChange> compare(const std::vector<DiskSignature> &recorded,
                                    const std::vector<DiskSignature> &current);
std::vector<SignatureChange> compare(const DiskSignature &recorded, const DiskSignature &current);

// One WARNING line in plain words: disk, old and new value, what it means for
// the server's next boot, and the command that restores it.
std::string describe_change(const SignatureChange &change);
const char *to_string(SignatureChange::Kind kind);

// ---- Plan-time warnings (pure) ----

// Two selected disks sharing a non-empty disk_id, or a disk sharing the rescue
// image's: Windows rewrites one of them when it is brought online.
std::vector<std::string> signature_collisions(const std::vector<DiskInfo> &selected,
                                             const std::string &image_disk_id);

// One line per selected disk holding BitLocker partitions: the customer will
// need the recovery key, since the VM lacks the server's TPM.
std::vector<std::string> bitlocker_notices(const std::vector<DiskInfo> &selected);

// ---- Sector parsing (pure) ----

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

// The partition-table id (as libblkid's PTUUID) of a disk from its first bytes
// (at least 8 KiB: the GPT header sits at 512 or 4096): the GPT disk GUID, the MBR
// signature, or "" when there is neither.
std::string disk_id_of_head(std::span<const std::uint8_t> head);

} // namespace rescuevm
