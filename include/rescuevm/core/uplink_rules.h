// SPDX-License-Identifier: GPL-2.0-or-later
// Pure rules about the uplink: which interface carries the server, whether it can be claimed, where its gateway is.
#pragma once

#include "rescuevm/core/config.h"
#include "rescuevm/core/host_facts.h"

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

// Whether the guest gets its address by DHCP (network.addressing; "auto": the host
// got it that way: a DHCP client or networkd serves the uplink, or its IPv4 address
// has a lease's finite lifetime).
bool uplink_uses_dhcp(const NetworkFacts &facts, Addressing addressing);

// Why the uplink found (or not) cannot be handed to the VM, in words with the fix;
// "" when it can. The one place where an uplink is refused.
std::string uplink_problem(const NetworkFacts &facts);

} // namespace rescuevm
