// SPDX-License-Identifier: GPL-2.0-or-later
// The files one agent session keeps in runtime_dir: overlay, UEFI variables, config drive, and the QEMU record.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/plan.h"
#include "rescuevm/core/runtime_paths.h"

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rescuevm {

// Creates runtime_dir (root-owned, 0700) when it is missing; an existing one is
// used as it is (never chmodded: `plan` refuses one others could write).
Result<void> prepare_runtime_dir(const std::string &dir);

// A new agent session starts fresh: the overlay and UEFI variables an earlier
// session left (its agent and QEMU are gone) are removed, so Windows boots the
// rescue image as shipped. Within a session they are kept across guest reboots,
// QEMU restarts and `vm start`: what the customer installed stays.
void reset_session_files(const RuntimePaths &paths);

// Before each QEMU start (blocking: run it in a Worker): the overlay over the image
// and the UEFI variables when missing, and a fresh config drive (a new instance
// uuid, so cloudbase-init applies the network and password again).
Result<void> prepare_session_files(const Plan &plan);

// Removes what a session created, keeping the logs, screenshots and the recorded
// disk signatures (`rescuevm signatures restore` needs them later).
void remove_session_files(const RuntimePaths &paths);

// Which QEMU this agent runs, so a restarted agent re-attaches instead of starting another.
struct QemuRecord {
    pid_t pid = 0;
    std::uint64_t start_time = 0;   // /proc/<pid>/stat field 22: tells a recycled pid apart
    std::string session_uuid;
    unsigned boots = 0;
    std::vector<std::string> argv;  // what QEMU was started with
};
// Written atomically (temp file, fsync, rename): a full runtime_dir keeps the old record.
Result<void> save_qemu_record(const RuntimePaths &paths, const QemuRecord &record);
// Read back as untrusted input: a regular root-owned file of bounded size with
// plausible fields, else an error saying what is wrong with it.
Result<std::optional<QemuRecord>> load_qemu_record(const RuntimePaths &paths);
void remove_qemu_record(const RuntimePaths &paths);

} // namespace rescuevm
