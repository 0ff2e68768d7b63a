// SPDX-License-Identifier: GPL-2.0-or-later
// Internal to src/host: reading block devices and small files from sysfs and procfs.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/host_facts.h"

#include <optional>
#include <string>
#include <vector>

namespace rescuevm::host {

// The whole file; the error names the path and the errno text.
Result<std::string> read_text_file(const std::string &path);

// A sysfs attribute with surrounding whitespace removed; nullopt when absent or unreadable.
std::optional<std::string> read_attribute(const std::string &path);

// Entry names of a directory, sorted; empty when it does not exist.
std::vector<std::string> list_directory(const std::string &path);

// Kernel names under <sysfs>/block that are whole disks: not partitions, not
// hidden (NVMe multipath paths), readable "dev" attribute.
std::vector<std::string> list_block_disks(const std::string &sysfs);

// A disk's attributes and its partitions as sysfs shows them; source = "sysfs".
DiskInfo read_sysfs_disk(const std::string &sysfs, const std::string &devfs, const std::string &name);

// "naa.5000c500a1b2c3d4" -> "0x5000c500a1b2c3d4", the form udev's ID_WWN uses,
// so a disk's WWN reads the same whether udev or sysfs supplied it.
std::string normalise_wwn(const std::string &wwid);

} // namespace rescuevm::host
