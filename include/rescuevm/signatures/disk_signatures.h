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

} // namespace rescuevm
