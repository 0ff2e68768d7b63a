// SPDX-License-Identifier: GPL-2.0-or-later
// IpAddress: an IPv4 or IPv6 address parsed and printed without the C library (the core includes no system header).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rescuevm {

struct IpAddress {
    bool v6 = false;
    std::array<std::uint8_t, 16> bytes{}; // IPv4: the first 4

    // Dotted quad, or RFC 4291 text (with "::" and an embedded IPv4 tail). A zone
    // ("fe80::1%eth0") is accepted and dropped. What inet_pton(3) accepts, no more.
    static std::optional<IpAddress> parse(std::string_view text);

    unsigned bits() const { return v6 ? 128 : 32; }
    bool link_local() const;                // fe80::/10 or 169.254.0.0/16
    // The canonical text: inet_ntop(3)'s form (RFC 5952 for IPv6).
    std::string text() const;
    // The address with every bit past `prefix` cleared.
    IpAddress network(unsigned prefix) const;
    bool same_network(const IpAddress &other, unsigned prefix) const;
    // The prefix as a mask in address form: "255.255.255.0", "ffff:ffff:ffff:ffff::".
    static std::string netmask_text(bool v6, unsigned prefix);

    bool operator==(const IpAddress &) const = default;
};

// True when `text` parses as an IPv4 or IPv6 address (a zone allowed).
inline bool is_ip_address(std::string_view text) { return IpAddress::parse(text).has_value(); }

} // namespace rescuevm
