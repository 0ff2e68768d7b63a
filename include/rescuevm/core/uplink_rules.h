// SPDX-License-Identifier: GPL-2.0-or-later
// Pure rules about the uplink: which interface carries the server, whether it can be claimed, where its gateway is.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rescuevm {

// True when `gateway` is not inside address/prefix (a /32 with its gateway
// elsewhere, or a /128 with fe80::1). False also when either does not parse
// or the families differ.
bool gateway_outside_prefix(const std::string &address, unsigned prefix,
                            const std::string &gateway);

// One default route as seen in the main table.
struct DefaultRoute {
    std::string family;  // "ipv4" | "ipv6"
    std::string dev;     // interface name
    std::uint32_t metric = 0;
};

// The interface of the IPv4 default route with the lowest metric, else the IPv6 one;
// "" when there is none.
std::string choose_uplink(const std::vector<DefaultRoute> &routes);

// What the checks know about the chosen (or named) uplink.
struct UplinkCheck {
    std::string requested = "auto";   // network.uplink
    std::string name;                 // chosen interface ("" when none)
    bool exists = false;
    bool up = false;
    std::string kind;                 // link kind of the uplink
    std::string master;               // its master, "" when none
    std::string master_kind;          // "bond", "bridge", "team", ...
    std::vector<std::string> interfaces; // other candidates, for the message
    bool macvtap_supported = true;
    std::string macvtap_missing_detail; // e.g. "no /sys/class/macvtap, no macvtap.ko for 6.1.0"
};

// The refusal in words with the fix, or "" when the uplink can be claimed.
std::string uplink_problem(const UplinkCheck &check);

} // namespace rescuevm
