// SPDX-License-Identifier: GPL-2.0-or-later
// Who serves an interface: DHCP clients (procfs, pid files, control sockets), systemd-networkd (its state files) and other network daemons.
#pragma once

#include "rescuevm/core/host_facts.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rescuevm {

// What a command line says about a DHCP client serving `iface`: dhclient, dhcpcd
// (also as retitled by dhcpcd 9: "dhcpcd: [manager] [ip4]", "dhcpcd: eth0 [ip4]"),
// udhcpc or udhcpc6 (also as "busybox udhcpc"); nullopt when it is none of them, a
// helper process (dhcpcd's proxies), or serves other interfaces only. A dhclient or
// dhcpcd naming no interface serves every one. Fills name, interfaces, manager,
// family and, for dhclient, its options and files (defaults when not given). Pure.
std::optional<DhcpClientFacts> dhcp_client_for(const std::vector<std::string> &argv, std::string_view iface);

namespace net {

// Where the readers look; roots are parameters so tests can use fixture trees.
struct StackPaths {
    std::string proc_root = "/proc";
    std::string netif_dir = "/run/systemd/netif";  // systemd-networkd: links/<ifindex>, leases/<ifindex>
    std::string dhcpcd_rundir = "/run/dhcpcd";     // dhcpcd 9: pid, sock, <iface>[-4|-6].pid
};

// DHCP clients serving `iface` in this process's network namespace (an interface of
// the same name in another namespace is another interface), with pid, start time,
// what their pid file holds and, for dhcpcd, the pid file and control socket it uses.
std::vector<DhcpClientFacts> find_dhcp_clients(const StackPaths &paths, const std::string &iface);

// systemd-networkd of this network namespace and the link `ifindex`.
NetworkdFacts read_networkd(const StackPaths &paths, int ifindex);

// ADMIN_STATE of link `ifindex` in <netif_dir>/links/<ifindex> ("" without a state file).
std::string networkd_admin_state(const std::string &netif_dir, int ifindex);

// Network daemons of this namespace that rescuevm cannot hand `iface` over from:
// "NetworkManager pid 812", "ifplugd pid 90" (one naming `iface` or no interface).
std::vector<std::string> find_other_managers(const std::string &proc_root, const std::string &iface);

// Whether process `pid` holds a DHCP client socket: a packet socket, or UDP bound
// to port 68 or 546 (busybox udhcpc holds none while released).
bool holds_dhcp_socket(const std::string &proc_root, int pid);

} // namespace net
} // namespace rescuevm
