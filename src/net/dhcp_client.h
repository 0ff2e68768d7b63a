// SPDX-License-Identifier: GPL-2.0-or-later
// DHCP clients serving an interface: found in procfs, stopped through a pidfd, restarted detached.
#pragma once

#include "rescuevm/error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rescuevm::net {

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

// SIGTERM through a pidfd, wait up to 5 s for the exit, then SIGKILL. A process
// already gone (or replaced by another with the same pid) counts as stopped.
Result<void> stop_dhcp_client(const std::string &proc_root, const DhcpProcess &client);

// Starts the recorded command again, detached (new session, stdio on /dev/null).
// Fails when the program cannot be executed.
Result<void> restart_dhcp_client(const DhcpProcess &client);

} // namespace rescuevm::net
