// SPDX-License-Identifier: GPL-2.0-or-later
// SystemdNotifier: the one place the agent talks sd_notify (READY, STATUS, WATCHDOG, STOPPING).
#pragma once

#include "rescuevm/sys/event_loop.h"

#include <string>

namespace rescuevm {

class SystemdNotifier {
public:
    explicit SystemdNotifier(EventLoop &loop) : loop_(loop) {}
    ~SystemdNotifier();

    // READY=1 means the agent is up and answers its control socket, whatever the VM
    // does: a VM that fails before its first boot must not hold systemd's start job.
    void ready(const std::string &status);
    void status(const std::string &status);
    void stopping();
    // WATCHDOG=1 from the event loop at half of WatchdogSec= (nothing without it): a
    // stalled loop is what the watchdog is there to catch.
    void start_watchdog();

private:
    void beat();

    EventLoop &loop_;
    TimerId timer_ = 0;
    std::chrono::milliseconds period_{0};
};

} // namespace rescuevm
