// SPDX-License-Identifier: GPL-2.0-or-later
// render_qemu_argv(): the exact QEMU command line for a plan. Pure.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/plan.h"
#include "rescuevm/core/runtime_paths.h"

#include <string>
#include <vector>

namespace rescuevm {

// The fd number QEMU gets the macvtap tap on (the launcher maps it there).
constexpr int kTapFdInQemu = 3;

// What one VM session adds to the plan: created by the shell, named here.
struct Session {
    std::string uuid;          // fresh per session
    RuntimePaths paths;
    int tap_fd = -1;           // macvtap fd number inside QEMU; -1: no network
    bool vhost_net = false;
    bool config_drive = false; // attach paths.config_drive() as a CD-ROM
};

// Escapes a value for a QEMU option list (commas doubled); refuses newline and NUL.
Result<std::string> qemu_escape(const std::string &value, const std::string &what);

// The serial a guest sees for a disk on a bus: the host's, cut to the bus's limit;
// NVMe needs one, so it is derived from the WWN or the name when the host has none.
std::string guest_serial(const DiskInfo &disk, DiskBus bus);

// The whole argv, argv[0] = the QEMU binary. Fails on values QEMU cannot take.
Result<std::vector<std::string>> render_qemu_argv(const Plan &plan, const Session &session);

// One line a shell can paste: every word quoted where needed.
std::string shell_quote(const std::vector<std::string> &argv);

} // namespace rescuevm
