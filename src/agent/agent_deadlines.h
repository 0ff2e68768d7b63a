// SPDX-License-Identifier: GPL-2.0-or-later
// The agent's time bounds for the work it hands to QEMU, its worker thread and the host's console settings.
#pragma once

#include <chrono>

namespace rescuevm::agent_deadlines {

using namespace std::chrono_literals;

constexpr auto kQmpCommandDeadline = 30s;
constexpr auto kReplyDeadline = 10s;      // a `vm ...` answer: QEMU's, or that it did not answer
constexpr auto kPrepareDeadline = 120s;   // disks, signatures, files, uplink hand-over
constexpr auto kSignaturesDeadline = 30s; // reading every passed disk's first sectors
constexpr auto kHousekeeping = 5s;
constexpr auto kConsoleDeadline = 90s;    // sysctls and systemctl mask/unmask (a daemon-reload)

} // namespace rescuevm::agent_deadlines
