// SPDX-License-Identifier: GPL-2.0-or-later
// The console viewer (`rescuevm screen`): the VM's VNC picture drawn full-screen on the server's own console until SIGTERM.
#pragma once

#include "rescuevm/screen/scaler.h"

#include <chrono>
#include <cstdint>
#include <string>

namespace rescuevm::screen {

struct ViewerOptions {
    std::string vnc_socket;         // QEMU's -vnc unix: socket
    std::string drm;                // /dev/dri/cardN to draw on ("" = none)
    std::string fbdev;              // /dev/fbN: first choice when drm is "", else the fallback
    Size memory;                    // non-zero: draw into memory instead (benchmarks); no VT taken
    unsigned vt = 0;                // 0: the active VT
    bool take_vt = true;            // false: leave the VTs alone (benchmarks, tests on a machine's own console)
    std::uint64_t max_frames = 0;   // stop after this many frames (benchmarks); 0 = never
    std::chrono::seconds max_time{0}; // stop after this long (benchmarks); 0 = never
};

// Runs until SIGTERM/SIGINT/SIGHUP (exit 0), the VNC connection ends (exit 1: the agent
// starts it again) or nothing can be drawn on (exit 3). One line per event on stderr
// ("info: ...", "warning: ...", "error: ..."); statistics (frames, CPU time per frame,
// peak RSS) at the end. Dies with its parent (PR_SET_PDEATHSIG), giving the VT back.
int run_viewer(const ViewerOptions &options);

} // namespace rescuevm::screen
