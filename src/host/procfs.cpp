// SPDX-License-Identifier: GPL-2.0-or-later
// Parsers of /proc/self/mountinfo, /proc/swaps and /proc/meminfo text.
#include "rescuevm/host/disks.h"
#include "rescuevm/host/procfs.h"

#include <charconv>
#include <limits>
#include <sstream>

namespace rescuevm {
namespace {

std::vector<std::string> split_ws(const std::string &line)
{
    std::vector<std::string> fields;
    std::istringstream in(line);
    std::string f;
    while (in >> f)
        fields.push_back(f);
    return fields;
}

bool parse_unsigned(const std::string &s, unsigned &out)
{
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool is_octal(char c) { return c >= '0' && c <= '7'; }

} // namespace

std::string decode_octal_escapes(const std::string &s)
{
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && is_octal(s[i + 1]) && is_octal(s[i + 2]) &&
            is_octal(s[i + 3])) {
            out.push_back(static_cast<char>(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) |
                                            (s[i + 3] - '0')));
            i += 3;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::vector<MountEntry> parse_mountinfo(const std::string &text)
{
    std::vector<MountEntry> mounts;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        auto f = split_ws(line);
        // id parent maj:min root mount-point options [optional...] - fstype source superopts
        std::size_t sep = 6;
        while (sep < f.size() && f[sep] != "-")
            ++sep;
        if (sep + 1 >= f.size())
            continue;
        auto colon = f[2].find(':');
        if (colon == std::string::npos)
            continue;
        MountEntry m;
        if (!parse_unsigned(f[2].substr(0, colon), m.major) ||
            !parse_unsigned(f[2].substr(colon + 1), m.minor))
            continue;
        m.mount_point = decode_octal_escapes(f[4]);
        m.fs_type = f[sep + 1];
        m.source = sep + 2 < f.size() ? decode_octal_escapes(f[sep + 2]) : "";
        mounts.push_back(std::move(m));
    }
    return mounts;
}

std::vector<SwapEntry> parse_swaps(const std::string &text)
{
    std::vector<SwapEntry> swaps;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        auto f = split_ws(line);
        // Filename Type Size Used Priority; the header starts with "Filename".
        if (f.size() < 2 || f[0] == "Filename" || f[0].empty() || f[0][0] != '/')
            continue;
        swaps.push_back(SwapEntry{decode_octal_escapes(f[0]), f[1]});
    }
    return swaps;
}

Result<std::uint64_t> parse_meminfo_total(const std::string &text)
{
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.starts_with("MemTotal:"))
            continue;
        auto f = split_ws(line.substr(9));
        std::uint64_t kib = 0;
        const std::string value = f.empty() ? "" : f[0];
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), kib);
        if (f.size() != 2 || f[1] != "kB" || ec != std::errc() ||
            p != value.data() + value.size() || value.empty())
            return fail("MemTotal line \"" + line + "\" is not a number of kB");
        if (kib > std::numeric_limits<std::uint64_t>::max() / 1024)
            return fail("MemTotal: " + value + " kB is too large");
        return kib * 1024;
    }
    return fail("no MemTotal line");
}

} // namespace rescuevm
