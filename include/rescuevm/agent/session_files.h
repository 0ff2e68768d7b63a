// SPDX-License-Identifier: GPL-2.0-or-later
// The files one VM session keeps in runtime_dir: overlay, UEFI variables, config drive, QEMU record.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/plan.h"
#include "rescuevm/core/qemu_argv.h"

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace rescuevm {

struct PreparedFiles {
    bool config_drive = false; // config-2.iso is there to attach
};

// Creates runtime_dir (0700) if needed.
Result<void> prepare_runtime_dir(const std::string &dir);

// Before each QEMU start: the image's overlay and the UEFI variables (once per
// session), and a fresh config drive (every start: a new instance uuid).
Result<PreparedFiles> prepare_session_files(const Plan &plan, const RuntimePaths &paths);

// Removes what a session created, keeping the logs, screenshots and the
// recorded disk identities (`rescuevm signatures restore` needs them later).
void remove_session_files(const RuntimePaths &paths);

// Which QEMU this agent runs, so a restarted agent re-attaches instead of starting another.
struct QemuRecord {
    pid_t pid = 0;
    std::uint64_t start_time = 0; // /proc/<pid>/stat field 22: tells a recycled pid apart
    std::string session_uuid;
    unsigned boots = 0;
};
void save_qemu_record(const RuntimePaths &paths, const QemuRecord &record);
std::optional<QemuRecord> load_qemu_record(const RuntimePaths &paths);
void remove_qemu_record(const RuntimePaths &paths);

} // namespace rescuevm
