// SPDX-License-Identifier: GPL-2.0-or-later
// DHCP clients serving an interface, as found in procfs.
#pragma once

#include "rescuevm/core/error.h"

#include <cstdint>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

namespace rescuevm {

// When argv is a DHCP client serving `iface` (dhclient, dhcpcd, udhcpc, also as
// "busybox udhcpc"), its name; otherwise nullopt. A dhcpcd naming no interface
// manages all of them, this one included. Pure.
std::optional<std::string> dhcp_client_for(const std::vector<std::string> &argv,
                                           std::string_view iface);

namespace net {

struct DhcpProcess {
    int pid = 0;
    std::string name;                 // "dhclient", "dhcpcd", "udhcpc"
    std::vector<std::string> argv;    // as in /proc/<pid>/cmdline
    std::string exe;                  // /proc/<pid>/exe, to start it again
    std::string cwd;
    std::uint64_t start_time = 0;     // /proc/<pid>/stat field 22: guards against pid reuse
};

// DHCP clients for `iface` in this process's network namespace (an interface of the
// same name in another namespace is another interface).
std::vector<DhcpProcess> find_dhcp_clients(const std::string &proc_root, const std::string &iface);

// "systemd-networkd (lease <dir>/<ifindex>)" when a systemd-networkd of this network
// namespace holds a DHCP lease for the interface, else "".
std::string networkd_lease(const std::string &proc_root, const std::string &leases_dir,
                           int ifindex);

} // namespace net
} // namespace rescuevm
