// SPDX-License-Identifier: GPL-2.0-or-later
// The host's console made harmless for a session: no reboot, halt or kill from a console keyboard (kernel.sysrq restricted, kernel.ctrl-alt-del, ctrl-alt-del.target masked), and given back at the end.
#pragma once

#include "rescuevm/core/error.h"

#include <string>
#include <vector>

namespace rescuevm {

// Where the kernel's and systemd's settings are (tests point them elsewhere).
struct ConsoleGuardPaths {
    std::string record;                              // runtime_dir/console-guard.json
    std::string proc_sys = "/proc/sys";
    std::string systemd_dir = "/run/systemd/system"; // exists when systemd is PID 1
};

// Blocking (writes /proc/sys, runs systemctl): call it from a Worker job. Records the values
// it found first (an earlier agent's record of this boot wins: those are the real originals),
// then sets kernel.sysrq to restricted_sysrq(), kernel.ctrl-alt-del to 0, and masks
// ctrl-alt-del.target for this boot (--runtime) unless it is masked already. Returns the
// lines to log (what it did, and a warning when systemd's CtrlAltDelBurstAction is not none).
Result<std::vector<std::string>> protect_console(const ConsoleGuardPaths &paths);

// Blocking. Puts back what the record says was changed and removes the record; nothing when
// there is no record.
Result<std::vector<std::string>> release_console(const ConsoleGuardPaths &paths);

} // namespace rescuevm
