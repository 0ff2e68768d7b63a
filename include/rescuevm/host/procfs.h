// SPDX-License-Identifier: GPL-2.0-or-later
// Pure parsers of procfs text the host readers need: mountinfo and swaps.
#pragma once

#include <string>
#include <vector>

namespace rescuevm {

// One line of /proc/self/mountinfo.
struct MountEntry {
    unsigned major = 0, minor = 0; // field 3: the device the kernel mounted
    std::string mount_point;       // field 5, octal escapes (\040) decoded
    std::string fs_type;           // first field after " - "
    std::string source;            // second field after " - " ("/dev/sda1", "tmpfs")
};

// One line of /proc/swaps (the header line is skipped).
struct SwapEntry {
    std::string path;              // "/dev/sda2", "/swapfile"; escapes decoded
    std::string type;              // "partition" or "file"
};

// Lines that do not have the expected shape are skipped: the kernel writes
// these files, so a bad line means a format we do not know, not bad input.
std::vector<MountEntry> parse_mountinfo(const std::string &text);
std::vector<SwapEntry> parse_swaps(const std::string &text);

// Decodes the kernel's octal escapes ("\040" for a space) in procfs paths.
std::string decode_octal_escapes(const std::string &s);

} // namespace rescuevm
