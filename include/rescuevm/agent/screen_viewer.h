// SPDX-License-Identifier: GPL-2.0-or-later
// ScreenViewer: the console viewer (`rescuevm screen`) as a child of the agent: started while QEMU runs, held by its pidfd, its lines relayed to the log, restarted with a backoff.
#pragma once

#include "rescuevm/core/plan.h"
#include "rescuevm/sys/event_loop.h"
#include "rescuevm/sys/process.h"

#include <chrono>
#include <optional>
#include <string>

namespace rescuevm {

class ScreenViewer {
public:
    // `program`: the rescuevm binary to run as `program screen ...` (this agent's own).
    ScreenViewer(EventLoop &loop, ScreenPlan plan, std::string program);
    ~ScreenViewer();
    ScreenViewer(const ScreenViewer &) = delete;
    ScreenViewer &operator=(const ScreenViewer &) = delete;

    // QEMU's VNC socket is there: start the viewer (and keep it running) unless it runs.
    void start();
    // QEMU is gone or the agent stops: SIGTERM to the viewer, no restart. It gives the
    // console back by itself (and on the agent's death, by PR_SET_PDEATHSIG).
    void stop();

    bool running() const { return process_.has_value(); }
    pid_t pid() const { return process_ ? process_->pid : -1; }
    // Where the picture goes, for `rescuevm status`: what the viewer said it draws on, or
    // why it is not drawing.
    std::string where() const;

private:
    void spawn();
    void read_output();
    void exited();
    void relay(std::string line);

    EventLoop &loop_;
    ScreenPlan plan_;
    std::string program_;
    std::optional<ProcessHandle> process_;
    WatchId pid_watch_ = 0, out_watch_ = 0;
    TimerId restart_timer_ = 0;
    bool wanted_ = false;
    unsigned failures_ = 0;
    std::chrono::steady_clock::time_point started_;
    std::string partial_;   // output not yet ended by a newline
    std::string drawing_;   // "DRM /dev/dri/card0 (bochs-drm) ... (VT 1, ...)" once it draws
    std::string last_said_;     // its last error line
    std::string last_problem_;  // why it is not running
};

} // namespace rescuevm
