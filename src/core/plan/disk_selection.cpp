// SPDX-License-Identifier: GPL-2.0-or-later
// Which disks are passed through, and why each one is or is not. Pure.
#include "rescuevm/core/plan.h"

#include <algorithm>
#include <cctype>

namespace rescuevm {
namespace {

// Kinds the default patterns must never pick up; a pattern has to name them.
constexpr const char *kVirtualPrefixes[] = {"loop", "ram", "zram", "nbd", "sr", "dm-", "md"};

bool is_virtual_kind(const std::string &name)
{
    for (const char *prefix : kVirtualPrefixes) {
        std::string p(prefix);
        if (name.compare(0, p.size(), p) == 0)
            return true;
    }
    return false;
}

// A pattern "names" a virtual kind when its literal prefix starts with that kind.
bool pattern_names_kind(const std::string &pattern, const std::string &name)
{
    for (const char *prefix : kVirtualPrefixes) {
        std::string p(prefix);
        if (name.compare(0, p.size(), p) == 0)
            return pattern.compare(0, p.size(), p) == 0;
    }
    return true;
}

std::string join(const std::vector<std::string> &items, const char *sep)
{
    std::string out;
    for (const auto &item : items) {
        if (!out.empty())
            out += sep;
        out += item;
    }
    return out;
}

} // namespace

namespace {

// One [...] set at pattern[p] (p points after '['); sets `end` past the ']'.
// A set that never closes makes the '[' a literal, as fnmatch(3) does.
bool set_matches(const std::string &pattern, std::size_t p, char c, std::size_t &end, bool &closed)
{
    bool negate = p < pattern.size() && (pattern[p] == '!' || pattern[p] == '^');
    if (negate)
        ++p;
    bool matched = false;
    bool first = true;
    while (p < pattern.size() && (pattern[p] != ']' || first)) {
        first = false;
        char lo = pattern[p];
        if (lo == '\\' && p + 1 < pattern.size())
            lo = pattern[++p];
        char hi = lo;
        if (p + 2 < pattern.size() && pattern[p + 1] == '-' && pattern[p + 2] != ']') {
            hi = pattern[p + 2];
            if (hi == '\\' && p + 3 < pattern.size())
                hi = pattern[++p + 2];
            p += 2;
        }
        if (lo <= c && c <= hi)
            matched = true;
        ++p;
    }
    closed = p < pattern.size();
    end = p + 1;
    return matched != negate;
}

bool glob_at(const std::string &pattern, std::size_t p, const std::string &name, std::size_t n)
{
    while (p < pattern.size()) {
        char pc = pattern[p];
        if (pc == '*') {
            while (p < pattern.size() && pattern[p] == '*')
                ++p;
            if (p == pattern.size())
                return true;
            for (std::size_t k = n; k <= name.size(); ++k)
                if (glob_at(pattern, p, name, k))
                    return true;
            return false;
        }
        if (n >= name.size())
            return false;
        if (pc == '?') {
            ++p;
            ++n;
            continue;
        }
        if (pc == '[') {
            std::size_t end = 0;
            bool closed = false;
            bool ok = set_matches(pattern, p + 1, name[n], end, closed);
            if (closed) {
                if (!ok)
                    return false;
                p = end;
                ++n;
                continue;
            }
        }
        if (pc == '\\' && p + 1 < pattern.size())
            pc = pattern[++p];
        if (pc != name[n])
            return false;
        ++p;
        ++n;
    }
    return n == name.size();
}

} // namespace

bool glob_match(const std::string &pattern, const std::string &name)
{
    return glob_at(pattern, 0, name, 0);
}

namespace {

// Compares digit runs by value and everything else by character.
bool digit_aware_less(const std::string &a, const std::string &b)
{
    size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
        bool da = std::isdigit(static_cast<unsigned char>(a[i]));
        bool db = std::isdigit(static_cast<unsigned char>(b[j]));
        if (da && db) {
            size_t ei = i, ej = j;
            while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei])))
                ++ei;
            while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej])))
                ++ej;
            // By value without overflow: skip leading zeros, then length, then text.
            size_t zi = i, zj = j;
            while (zi + 1 < ei && a[zi] == '0')
                ++zi;
            while (zj + 1 < ej && b[zj] == '0')
                ++zj;
            if (ei - zi != ej - zj)
                return ei - zi < ej - zj;
            if (int c = a.compare(zi, ei - zi, b, zj, ej - zj); c != 0)
                return c < 0;
            i = ei;
            j = ej;
            continue;
        }
        if (a[i] != b[j])
            return a[i] < b[j];
        ++i;
        ++j;
    }
    return a.size() - i < b.size() - j;
}

// Disk families named by letters (sda..sdz, sdaa..): the letters count like a number.
constexpr const char *kLetterFamilies[] = {"xvd", "sd", "vd", "hd"};

size_t letter_run(const std::string &s, size_t from)
{
    size_t end = from;
    while (end < s.size() && std::islower(static_cast<unsigned char>(s[end])))
        ++end;
    return end - from;
}

} // namespace

bool natural_less(const std::string &a, const std::string &b)
{
    for (const char *family : kLetterFamilies) {
        std::string f(family);
        if (a.compare(0, f.size(), f) != 0 || b.compare(0, f.size(), f) != 0)
            continue;
        size_t la = letter_run(a, f.size()), lb = letter_run(b, f.size());
        if (la != lb)
            return la < lb;
        if (int c = a.compare(f.size(), la, b, f.size(), lb); c != 0)
            return c < 0;
        return digit_aware_less(a.substr(f.size() + la), b.substr(f.size() + lb));
    }
    return digit_aware_less(a, b);
}

std::vector<DiskChoice> select_disks(const std::vector<DiskInfo> &disks,
                                     const std::vector<std::string> &match)
{
    std::vector<DiskChoice> out;
    out.reserve(disks.size());
    for (const auto &disk : disks) {
        DiskChoice choice{disk, false, ""};
        std::string matched;
        for (const auto &pattern : match) {
            if (glob_match(pattern, disk.name) && pattern_names_kind(pattern, disk.name)) {
                matched = pattern;
                break;
            }
        }
        if (matched.empty()) {
            bool virtual_by_glob = false;
            for (const auto &pattern : match)
                virtual_by_glob |= glob_match(pattern, disk.name);
            choice.reason = virtual_by_glob && is_virtual_kind(disk.name)
                                ? "not a physical disk; name it explicitly in disks.match to pass it"
                                : "excluded by disks.match";
        } else if (!disk.in_use.empty()) {
            choice.reason = "in use by the host: " + join(disk.in_use, ", ");
        } else if (disk.size_bytes == 0) {
            choice.reason = "empty (size 0)";
        } else {
            choice.selected = true;
            choice.reason = "matches disks.match \"" + matched + "\"";
        }
        out.push_back(std::move(choice));
    }
    std::stable_sort(out.begin(), out.end(), [](const DiskChoice &x, const DiskChoice &y) {
        return natural_less(x.disk.name, y.disk.name);
    });
    return out;
}

} // namespace rescuevm
