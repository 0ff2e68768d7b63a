// SPDX-License-Identifier: GPL-2.0-or-later
// render_qemu_argv(): the exact QEMU command line for a plan and a session. Pure.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/plan.h"

#include <string>
#include <vector>

namespace rescuevm {

// The fd numbers QEMU gets the macvtap tap and the passed disks on (the launcher maps them there).
constexpr int kTapFdInQemu = 3;
constexpr int kFirstDiskFdInQemu = 10;

// What one VM session adds to the plan. session_for() is the one builder: `plan`
// prints the argv of the same Session `run` starts QEMU with.
struct Session {
    std::string uuid;          // the VM's SMBIOS uuid, fresh per agent session
    int tap_fd = -1;           // macvtap fd number inside QEMU; -1: no network
    bool config_drive = false; // attach the plan's config-2.iso as a CD-ROM
    std::vector<int> disk_fds; // per passed disk: its O_EXCL fd's number inside QEMU
};
Session session_for(const Plan &plan, std::string uuid);

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
