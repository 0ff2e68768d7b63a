// SPDX-License-Identifier: GPL-2.0-or-later
// Reads the server's uplink over netlink (links, addresses, routes), DNS and the network stack serving it: NetworkFacts.
#pragma once

#include "rescuevm/core/config.h"
#include "rescuevm/core/error.h"
#include "rescuevm/core/host_facts.h"

#include <string>
#include <string_view>
#include <vector>

namespace rescuevm {

// Where read_network_facts() looks. Roots are parameters so tests can use fixture trees.
struct NetworkOptions {
    std::string uplink = "auto";                   // interface name, or "auto"
    Addressing addressing = Addressing::auto_;     // network.addressing: for callers that decide dhcp (uplink_uses_dhcp)
    std::string resolv_conf = "/etc/resolv.conf";
    std::string proc_root = "/proc";               // DHCP clients, network daemons (/proc/<pid>/cmdline)
    std::string sys_root = "/sys";                 // macvtap support (/sys/class/macvtap)
    std::string modules_root = "/lib/modules";     // macvtap as a loadable module
    std::string netif_dir = "/run/systemd/netif";  // systemd-networkd's links/ and leases/
    std::string dhcpcd_rundir = "/run/dhcpcd";     // dhcpcd's pid files and control sockets
};

NetworkOptions network_options(const Config &config);

// Reads links, addresses and routes with libnl-route-3 (one netlink dump each),
// DNS from resolv.conf, and who serves the uplink: DHCP clients and other network
// daemons from procfs, systemd-networkd from its state files. Changes nothing.
// An error only when netlink itself cannot be used; what is wrong with the uplink
// is for uplink_problem() (core/uplink_rules.h) to say.
Result<NetworkFacts> read_network_facts(const NetworkOptions &options);

// The nameserver addresses of a resolv.conf, in order, without duplicates.
std::vector<std::string> parse_resolv_conf(std::string_view text);

} // namespace rescuevm
