// SPDX-License-Identifier: GPL-2.0-or-later
// The policy's use of what the guest itself says: the guest agent (a stop asks it first) and signs of life after a boot. Pure.
#include "policy_context.h"

#include <algorithm>

namespace rescuevm::supervisor::detail {
namespace {

std::string seconds_text(Millis d)
{
    auto s = d.count() / 1000;
    return s % 60 == 0 && s >= 60 ? fmt::format("{} min", s / 60) : fmt::format("{} s", s);
}

} // namespace

void ask_guest_to_stop(Ctx &c, Millis deadline, bool reply)
{
    if (c.s.guest_agent_up) {
        c.out.push_back(GuestAgentShutdown{reply, "the guest agent is shutting the guest down (guest-shutdown)"});
    } else {
        c.out.push_back(Qmp{"system_powerdown", reply, "ACPI power button sent to the guest"});
    }
    c.out.push_back(StartTimer{Timer::powerdown_deadline, deadline});
    c.set_state(VmState::stopping);
}

void new_boot(Ctx &c)
{
    c.s.guest_alive = false;
    c.s.boot_warned = false;
    if (c.p.boot_progress_timeout)
        c.out.push_back(StartTimer{Timer::boot_progress, *c.p.boot_progress_timeout});
}

void on_guest_activity(Ctx &c, const std::string &source)
{
    // Before the guest runs (the -S pause, a start) nothing it says is a sign of this boot.
    if (c.s.guest_alive || (c.s.vm != VmState::running && c.s.vm != VmState::stopping))
        return;
    c.s.guest_alive = true;
    c.out.push_back(CancelTimer{Timer::boot_progress});
    if (c.s.boot_warned)
        c.log(kInfo, fmt::format("the guest shows life after all ({})", source));
}

void on_guest_agent_up(Ctx &c)
{
    if (!c.s.guest_agent_up) {
        c.s.guest_agent_up = true;
        c.log(kInfo, "the guest agent answers: the guest's operating system is up; a stop asks it to shut down first");
    }
    on_guest_activity(c, "its guest agent answered");
}

void on_guest_agent_down(Ctx &c, const GuestAgentDown &e)
{
    if (!c.s.guest_agent_up)
        return;
    c.s.guest_agent_up = false;
    c.log(kInfo, fmt::format("the guest agent stopped answering ({}): the guest may be restarting or shutting down, or "
                             "qemu-ga stopped; a stop uses the ACPI power button until it answers again",
                             e.detail));
}

void on_guest_agent_shutdown_done(Ctx &c, const GuestAgentShutdownDone &e)
{
    if (c.s.vm != VmState::stopping)
        return;
    if (e.ok) {
        Millis grace = std::min(c.p.guest_shutdown_grace, c.p.shutdown_timeout / 2);
        c.log(kInfo, fmt::format("the guest agent took the shutdown (guest-shutdown); the ACPI power button follows "
                                 "in {} if the guest is still up",
                                 seconds_text(grace)));
        c.out.push_back(StartTimer{Timer::acpi_fallback, grace});
        return;
    }
    c.log(kWarning, fmt::format("the guest agent did not take the shutdown ({}); pressing the ACPI power button",
                                e.detail));
    c.out.push_back(Qmp{"system_powerdown", true,
                        "the guest agent did not take the shutdown (" + e.detail +
                            "): ACPI power button sent to the guest"});
}

void on_boot_progress_timer(Ctx &c)
{
    if (c.s.vm != VmState::running || c.s.guest_alive || !c.p.boot_progress_timeout)
        return;
    c.s.boot_warned = true;
    c.event("no sign of life from the guest since its boot");
    c.log(kWarning, fmt::format("the guest has neither written to its serial console nor answered the guest agent "
                                "{} after it started: the firmware or Windows may be stuck, or Windows is slow on "
                                "these disks; screenshot boot-progress.ppm saved in the runtime directory; the VM "
                                "keeps running (look with `rescuevm vm console` or the VNC screen)",
                                seconds_text(*c.p.boot_progress_timeout)));
    c.out.push_back(BootScreenshot{});
}

void on_acpi_fallback_timer(Ctx &c)
{
    if (c.s.vm != VmState::stopping)
        return;
    c.log(kWarning, "the guest is still up after its guest agent took the shutdown; pressing the ACPI power button "
                    "too");
    c.out.push_back(Qmp{"system_powerdown"});
}

} // namespace rescuevm::supervisor::detail
