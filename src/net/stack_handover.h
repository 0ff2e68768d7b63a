// SPDX-License-Identifier: GPL-2.0-or-later
// Carries out the hand-over steps core decided (uplink_handover()): each stack lets go of the uplink, and takes it back, through its own controls.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/uplink_rules.h"
#include "rescuevm/sys/process.h"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace rescuevm::net {

struct HandoverContext {
    std::string uplink;
    int ifindex = 0;
    std::string mac;
    std::string macvtap;
    std::string proc_root = "/proc";
};

// Lets go of the uplink as `step` says and checks that it did (networkd reports it
// unmanaged, the client exited or released its lease); an error names what did not.
Result<void> let_go(const HandoverStep &step, const HandoverContext &context);

// Once the macvtap exists: keeps a daemon that picks up new interfaces (a dhcpcd
// manager) off it. Nothing for the other steps.
Result<void> keep_off_macvtap(const HandoverStep &step, const HandoverContext &context);

// Gives the uplink back to the step's stack; safe to repeat, and safe when let_go()
// never ran (a client still running is left alone, never started twice).
Result<void> take_back(const HandoverStep &step, const HandoverContext &context);

// ---- shared by the steps (stack_handover.cpp) ----

// Runs a system program (found in /usr/sbin, /usr/bin, /sbin, /bin only) with a clean
// environment; an error unless it exits 0 within `limit`, naming the command and its
// last output line.
Result<RunResult> run_command(const std::vector<std::string> &argv, std::chrono::milliseconds limit);

// Polls `done` every 50 ms until it holds or `limit` passed; whether it held.
bool wait_until(const std::function<bool()> &done, std::chrono::milliseconds limit);

// The DHCP client steps (dhcp_client.cpp).
Result<void> let_go_dhcp_client(const HandoverStep &step, const HandoverContext &context);
Result<void> keep_dhcpcd_off(const HandoverStep &step, const HandoverContext &context);
Result<void> take_back_dhcp_client(const HandoverStep &step, const HandoverContext &context);

} // namespace rescuevm::net
