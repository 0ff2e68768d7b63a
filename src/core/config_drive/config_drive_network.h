// SPDX-License-Identifier: GPL-2.0-or-later
// GuestNetwork: the host's NetworkFacts reduced to what the guest is given, shared by network_data.json and user_data.
#pragma once

#include "rescuevm/core/host_facts.h"

#include <string>
#include <vector>

namespace rescuevm::guest_network {

struct Route {
    std::string destination; // network address: "0.0.0.0", "::", "198.51.100.0"
    unsigned prefix = 0;     // 0 for a default route
    std::string gateway;
    // The gateway lies outside the address's prefix: stock cloudbase-init fails on it.
    bool gateway_outside_prefix = false;
    // ... and is not IPv6 link-local (on-link anyway): Windows needs an on-link
    // host route to it before a route through it.
    bool needs_onlink_route = false;
};

struct StaticAddress {
    bool ipv6 = false;
    std::string address; // canonical text (inet_ntop)
    unsigned prefix = 0;
    std::vector<Route> routes;
};

struct GuestNetwork {
    bool present = false;     // an uplink with a MAC was found
    std::string link_id;      // the uplink's name; cloudbase-init names the adapter after it
    std::string mac;          // lower case, colons
    unsigned mtu = 1500;
    bool dhcp4 = false;       // IPv4 by DHCP: no static IPv4 addresses
    std::vector<StaticAddress> addresses;
    std::vector<std::string> dns;

    bool any_gateway_outside_prefix() const;
};

// Global addresses only (link-local ones belong to each machine); routes with a
// gateway attached to the address whose prefix holds the gateway, else to the
// first address of the family. Entries that are not valid IP text are dropped.
GuestNetwork plan(const NetworkFacts &facts);

// "255.255.255.255" for an IPv4 /32, "ffff:ffff:ffff:ffff::" for an IPv6 /64:
// the netmask form Nova writes, read by cloud-init and by cloudbase-init (netaddr).
std::string netmask_text(bool ipv6, unsigned prefix);

// "52-54-00-12-34-56": how Windows' Get-NetAdapter shows a MAC.
std::string windows_mac(const std::string &mac);

} // namespace rescuevm::guest_network
