// SPDX-License-Identifier: GPL-2.0-or-later
// IpAddress: parses and prints IPv4/IPv6 text as inet_pton(3)/inet_ntop(3) do, written out because the core may not include <arpa/inet.h>.
#include "rescuevm/core/ip_address.h"

#include <fmt/format.h>

#include <vector>

namespace rescuevm {
namespace {

// inet_pton's IPv4: exactly four decimal parts 0..255, no leading zeros beyond "0".
std::optional<std::array<std::uint8_t, 4>> parse_v4(std::string_view text)
{
    std::array<std::uint8_t, 4> out{};
    std::size_t part = 0, i = 0;
    while (part < 4) {
        if (i >= text.size() || text[i] < '0' || text[i] > '9')
            return std::nullopt;
        unsigned value = 0;
        std::size_t start = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            value = value * 10 + unsigned(text[i] - '0');
            if (value > 255 || i - start >= 3)
                return std::nullopt;
            ++i;
        }
        if (i - start > 1 && text[start] == '0')
            return std::nullopt;
        out[part++] = static_cast<std::uint8_t>(value);
        if (part < 4) {
            if (i >= text.size() || text[i] != '.')
                return std::nullopt;
            ++i;
        }
    }
    if (i != text.size())
        return std::nullopt;
    return out;
}

int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

std::optional<std::array<std::uint8_t, 16>> parse_v6(std::string_view text)
{
    // Groups before and after "::"; the last group may be a dotted quad.
    std::vector<std::uint16_t> head, tail;
    bool compressed = false;
    std::vector<std::uint16_t> *groups = &head;
    std::size_t i = 0;
    if (text.starts_with("::")) {
        compressed = true;
        groups = &tail;
        i = 2;
        if (i == text.size())
            return std::array<std::uint8_t, 16>{};
    } else if (text.starts_with(":")) {
        return std::nullopt;
    }
    bool v4_tail = false;
    std::array<std::uint8_t, 4> v4{};
    while (i < text.size()) {
        std::size_t end = text.find(':', i);
        std::string_view group = text.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
        if (group.find('.') != std::string_view::npos) {
            if (end != std::string_view::npos)
                return std::nullopt; // a dotted quad only at the very end
            auto q = parse_v4(group);
            if (!q)
                return std::nullopt;
            v4 = *q;
            v4_tail = true;
            i = text.size();
            break;
        }
        if (group.empty() || group.size() > 4)
            return std::nullopt;
        unsigned value = 0;
        for (char c : group) {
            int h = hex_value(c);
            if (h < 0)
                return std::nullopt;
            value = value << 4 | unsigned(h);
        }
        groups->push_back(static_cast<std::uint16_t>(value));
        if (end == std::string_view::npos) {
            i = text.size();
            break;
        }
        i = end + 1;
        if (i < text.size() && text[i] == ':') {
            if (compressed)
                return std::nullopt; // "::" twice
            compressed = true;
            groups = &tail;
            ++i;
            if (i == text.size())
                break;
        } else if (i == text.size()) {
            return std::nullopt; // a trailing single ':'
        }
    }
    std::size_t count = head.size() + tail.size() + (v4_tail ? 2 : 0);
    if (compressed ? count > 7 : count != 8)
        return std::nullopt;
    std::array<std::uint8_t, 16> out{};
    std::size_t at = 0;
    for (auto g : head) {
        out[at++] = static_cast<std::uint8_t>(g >> 8);
        out[at++] = static_cast<std::uint8_t>(g);
    }
    at = 16 - tail.size() * 2 - (v4_tail ? 4 : 0);
    for (auto g : tail) {
        out[at++] = static_cast<std::uint8_t>(g >> 8);
        out[at++] = static_cast<std::uint8_t>(g);
    }
    if (v4_tail)
        for (auto b : v4)
            out[at++] = b;
    return out;
}

} // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text)
{
    text = text.substr(0, text.find('%'));
    IpAddress ip;
    if (auto v4 = parse_v4(text)) {
        for (std::size_t k = 0; k < 4; ++k)
            ip.bytes[k] = (*v4)[k];
        return ip;
    }
    if (auto v6 = parse_v6(text)) {
        ip.v6 = true;
        ip.bytes = *v6;
        return ip;
    }
    return std::nullopt;
}

bool IpAddress::link_local() const
{
    return v6 ? bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80 : bytes[0] == 169 && bytes[1] == 254;
}

std::string IpAddress::text() const
{
    if (!v6)
        return fmt::format("{}.{}.{}.{}", bytes[0], bytes[1], bytes[2], bytes[3]);
    std::uint16_t g[8];
    for (int k = 0; k < 8; ++k)
        g[k] = static_cast<std::uint16_t>(bytes[2 * k] << 8 | bytes[2 * k + 1]);
    // IPv4-mapped and IPv4-compatible forms keep a dotted tail, as inet_ntop does.
    bool zero5 = g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0;
    if (zero5 && (g[5] == 0xffff || (g[5] == 0 && g[6] != 0)))
        return fmt::format("::{}{}.{}.{}.{}", g[5] == 0xffff ? "ffff:" : "", bytes[12], bytes[13], bytes[14],
                           bytes[15]);
    // The longest run of two or more zero groups becomes "::" (the first one on a tie).
    int best = -1, best_len = 0;
    for (int k = 0; k < 8;) {
        if (g[k] != 0) {
            ++k;
            continue;
        }
        int start = k;
        while (k < 8 && g[k] == 0)
            ++k;
        if (k - start > best_len && k - start >= 2) {
            best = start;
            best_len = k - start;
        }
    }
    std::string out;
    for (int k = 0; k < 8; ++k) {
        if (k == best) {
            out += "::";
            k += best_len - 1;
            continue;
        }
        if (!out.empty() && !out.ends_with(':'))
            out += ':';
        out += fmt::format("{:x}", g[k]);
    }
    return out;
}

IpAddress IpAddress::network(unsigned prefix) const
{
    IpAddress net = *this;
    for (unsigned bit = 0; bit < 128; ++bit)
        if (bit >= prefix)
            net.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
    if (!v6)
        for (std::size_t k = 4; k < 16; ++k)
            net.bytes[k] = 0;
    return net;
}

bool IpAddress::same_network(const IpAddress &other, unsigned prefix) const
{
    return v6 == other.v6 && network(prefix) == other.network(prefix);
}

std::string IpAddress::netmask_text(bool v6, unsigned prefix)
{
    IpAddress all_ones;
    all_ones.v6 = v6;
    all_ones.bytes.fill(0xff);
    return all_ones.network(prefix).text();
}

} // namespace rescuevm
