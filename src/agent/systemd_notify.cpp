// SPDX-License-Identifier: GPL-2.0-or-later
// SystemdNotifier: sd_notify(3) for READY=1, STATUS=, WATCHDOG=1 and STOPPING=1; a no-op outside systemd.
#include "rescuevm/agent/systemd_notify.h"

#include <systemd/sd-daemon.h>

namespace rescuevm {

SystemdNotifier::~SystemdNotifier()
{
    loop_.cancel_timer(timer_);
}

void SystemdNotifier::ready(const std::string &status)
{
    sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
}

void SystemdNotifier::status(const std::string &status)
{
    sd_notify(0, ("STATUS=" + status).c_str());
}

void SystemdNotifier::stopping()
{
    sd_notify(0, "STOPPING=1");
}

void SystemdNotifier::start_watchdog()
{
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return;
    period_ = std::chrono::milliseconds(usec / 2000);
    beat();
}

void SystemdNotifier::beat()
{
    sd_notify(0, "WATCHDOG=1");
    timer_ = loop_.add_timer(period_, [this] { beat(); });
}

} // namespace rescuevm
