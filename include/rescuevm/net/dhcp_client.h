// SPDX-License-Identifier: GPL-2.0-or-later
// Stopping and restarting the DHCP clients that serve the uplink while the VM carries it.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/host/dhcp_clients.h"

namespace rescuevm::net {

// SIGTERM through a pidfd, wait up to 5 s for the exit, then SIGKILL. A process
// already gone (or replaced by another with the same pid) counts as stopped.
Result<void> stop_dhcp_client(const std::string &proc_root, const DhcpProcess &client);

// Starts the recorded command again, detached (new session, stdio on /dev/null).
// Fails when the program cannot be executed.
Result<void> restart_dhcp_client(const DhcpProcess &client);

} // namespace rescuevm::net
