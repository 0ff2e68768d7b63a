// SPDX-License-Identifier: GPL-2.0-or-later
// The policy's answers to what the guest does: runs, reboots, powers off, crashes, or is paused by QEMU. Pure.
#include "policy_context.h"

#include "rescuevm/core/config.h"

namespace rescuevm::supervisor::detail {

void on_guest_resumed(Ctx &c)
{
    c.s.crashed = false;
    if (c.s.vm == VmState::starting && c.s.qemu_alive) {
        c.s.guest_ran = true;
        c.s.boots++;
        c.event("guest started");
        c.log(kInfo, fmt::format("guest is running (boot {}); the host stays in rescue", c.s.boots));
        c.set_state(VmState::running);
        new_boot(c);
        c.settle_start_reply(true, "VM started: the guest is running");
    } else if (c.s.vm == VmState::paused && c.s.image_outage) {
        // On trial: the image server may still be away, and the next read pauses it again.
        c.out.push_back(StartTimer{Timer::image_settled, c.p.image_settle});
        c.set_state(VmState::running);
    } else if (c.s.vm == VmState::paused) {
        c.event("guest resumed");
        c.log(kInfo, fmt::format("guest runs again (it was paused: {})", c.s.pause_reason));
        c.s.pause_reason.clear();
        c.set_state(VmState::running);
    }
}

void on_guest_paused(Ctx &c, const GuestPaused &e)
{
    // Our own pauses: -S before the first `cont`, shutdown=pause and panic=pause (handled by their events).
    if (c.s.vm != VmState::running || e.status == "shutdown" || e.status == "guest-panicked" ||
        e.status == "prelaunch" || e.status == "running")
        return;
    if (c.p.image_over_network && e.boot_disk && !e.nospace) {
        c.out.push_back(CancelTimer{Timer::image_settled});
        c.out.push_back(StartTimer{Timer::image_retry, c.p.image_retry});
        c.set_state(VmState::paused);
        if (c.s.image_outage)
            return; // a trial resume met the outage again: said once already
        c.s.image_outage = true;
        c.s.image_outage_ms = c.now;
        c.s.image_retries = 0;
        c.s.pause_reason = "the image server does not answer (" + e.detail + ")";
        c.event("guest paused: image server unreachable");
        c.log(kError, fmt::format("the rescue image's server does not answer ({}): the VM is paused so Windows "
                                  "sees no I/O error on C:; it resumes by itself once the server answers (trying "
                                  "every {} s); `rescuevm vm stop` ends it",
                                  e.detail, c.p.image_retry.count() / 1000.0));
        return;
    }
    c.s.pause_reason = e.detail.empty() ? "QEMU paused it (" + e.status + ")" : e.detail;
    if (e.boot_disk && e.nospace)
        c.s.pause_reason += ": the file system of the runtime directory is full; free space there, then "
                            "`rescuevm vm resume`";
    c.event("guest paused: " + c.s.pause_reason);
    c.log(kError, fmt::format("QEMU paused the guest: {}; the host stays in rescue. When the cause is fixed, "
                              "`rescuevm vm resume`; `rescuevm vm stop` ends it",
                              c.s.pause_reason));
    c.set_state(VmState::paused);
}

void on_image_retry(Ctx &c)
{
    if (c.s.vm != VmState::paused || !c.s.image_outage)
        return;
    c.s.image_retries++;
    // Every minute, a line that it is still paused (the first line said why).
    std::int64_t waited = c.now - c.s.image_outage_ms;
    if (c.s.image_retries % 12 == 0)
        c.log(kWarning, fmt::format("the rescue image's server still does not answer after {} s; the VM stays paused",
                                    waited / 1000));
    c.out.push_back(Qmp{"cont"});
    c.out.push_back(StartTimer{Timer::image_retry, c.p.image_retry});
}

void on_image_settled(Ctx &c)
{
    if (c.s.vm != VmState::running || !c.s.image_outage)
        return;
    c.s.image_outage = false;
    c.out.push_back(CancelTimer{Timer::image_retry});
    c.event("guest resumed: image server back");
    c.log(kInfo, fmt::format("the rescue image's server answers again: the guest runs again after {} s paused",
                             (c.now - c.s.image_outage_ms - c.p.image_settle.count()) / 1000));
    c.s.pause_reason.clear();
}

void on_overlay_limit(Ctx &c, const OverlayLimit &e)
{
    if (c.s.vm != VmState::running)
        return;
    c.s.pause_reason = fmt::format("the guest wrote {} to its disk 0, the most vm.overlay_max allows", format_size(e.bytes ? e.bytes : c.p.overlay_max));
    c.event("guest paused: overlay limit");
    c.log(kError, fmt::format("{}; the VM is paused so the overlay cannot fill the host's runtime directory. "
                              "`rescuevm vm resume` lets it go on without the bound (up to the free space there); "
                              "`rescuevm vm stop` ends it",
                              c.s.pause_reason));
    c.out.push_back(Qmp{"stop"});
    c.set_state(VmState::paused);
}

void on_guest_reset(Ctx &c, const GuestReset &e)
{
    bool burst = c.now - c.s.last_reset_ms < c.p.reset_burst.count();
    if (e.guest && c.s.vm == VmState::running && !burst) {
        c.s.reboots++;
        c.s.boots++;
        c.event("guest restarted itself");
        c.log(kInfo, fmt::format("guest restarted itself (Windows reboot {}); VM keeps running, host stays in rescue",
                                 c.s.reboots));
        c.out.push_back(CheckSignatures{"the guest rebooted"});
        new_boot(c);
    }
    // Our own system_reset (restart policy, panic, `vm reset`) opens a burst too: SeaBIOS
    // follows it with guest-reset RESETs of its own, which are no guest reboot.
    c.s.last_reset_ms = c.now;
    c.s.boot_problem.clear(); // a new boot: the firmware gets its chance again
}

void on_guest_shutdown(Ctx &c, const GuestShutdown &e)
{
    if (!e.guest)
        return; // our own quit or a signal to QEMU: its exit follows
    c.event("guest powered off");
    if (c.s.vm == VmState::stopping) {
        c.log(kInfo, "guest powered off as asked; stopping QEMU");
        c.out.push_back(CancelTimer{Timer::powerdown_deadline});
        c.out.push_back(CancelTimer{Timer::acpi_fallback});
        c.quit_qemu();
        return;
    }
    if (c.s.vm != VmState::running)
        return;
    c.out.push_back(CheckSignatures{"the guest powered off"});
    if (c.p.restart_on_poweroff) {
        c.log(kInfo, "guest powered itself off; supervisor.on_guest_poweroff = \"restart\": "
                     "starting it again in the same QEMU; the host stays in rescue");
        c.out.push_back(Qmp{"system_reset"});
        c.out.push_back(Qmp{"cont"});
        c.s.boots++;
        new_boot(c);
        return;
    }
    c.log(kInfo, "guest powered itself off (Windows shutdown); the VM stays off and the host stays in rescue. "
                 "Start it again with `rescuevm vm start`");
    c.set_state(VmState::off);
    c.quit_qemu();
}

void on_guest_panicked(Ctx &c, const GuestPanicked &e)
{
    if (c.s.vm != VmState::running)
        return;
    c.s.panics++;
    c.s.panic_streak = c.now - c.s.last_panic_ms < c.p.good_run.count() ? c.s.panic_streak + 1 : 1;
    c.s.last_panic_ms = c.now;
    unsigned slot = (c.s.panics - 1) % c.p.panic_screenshots + 1;
    std::string what = e.type == "hyper-v"
                           ? fmt::format("Windows STOP code 0x{:08X} (0x{:016X}, 0x{:016X}, 0x{:016X}, 0x{:016X})",
                                         e.code, e.params[0], e.params[1], e.params[2], e.params[3])
                           : std::string("panic reported through pvpanic");
    c.event("guest crashed");
    c.s.crashed = true;
    c.out.push_back(Screendump{slot});
    if (c.s.panic_streak >= c.p.max_quick_panics) {
        c.s.pause_reason = fmt::format("the guest crashed {} times in a row", c.s.panic_streak);
        c.log(kError, fmt::format("guest crashed: {}; that is {} crashes in a row: the VM is left paused for an "
                                  "engineer (screenshots panic-*.ppm in the runtime directory); `rescuevm vm reset` "
                                  "boots it again, `rescuevm vm stop` ends it",
                                  what, c.s.panic_streak));
        c.set_state(VmState::paused);
        return;
    }
    Millis delay = backoff_delay(c.s.panic_streak, c.p);
    c.s.pause_reason = fmt::format("the guest crashed; restarting it in {} s", delay.count() / 1000.0);
    c.log(kError, fmt::format("guest crashed: {}; screenshot panic-{}.ppm saved; restarting the guest in place in {} "
                              "s (crash {} in a row of at most {})",
                              what, slot, delay.count() / 1000.0, c.s.panic_streak, c.p.max_quick_panics));
    c.out.push_back(StartTimer{Timer::panic_backoff, delay});
    c.set_state(VmState::paused);
}

void on_boot_failed(Ctx &c, const BootFailed &e)
{
    if ((c.s.vm != VmState::running && c.s.vm != VmState::starting) || !c.s.boot_problem.empty())
        return;
    c.s.boot_problem = e.message;
    c.event("the rescue image does not boot");
    c.log(kError, e.message + "; the VM stays up for an engineer to look at (`rescuevm vm screenshot`, VNC); "
                              "`rescuevm vm stop` ends it at once");
    c.out.push_back(Notify{"VM up, but the rescue image does not boot"});
}

void on_panic_backoff(Ctx &c)
{
    if (c.s.vm != VmState::paused)
        return;
    c.log(kInfo, "restarting the crashed guest in the same QEMU");
    c.out.push_back(Qmp{"system_reset"});
    c.out.push_back(Qmp{"cont"});
    c.s.boots++;
    new_boot(c);
}

} // namespace rescuevm::supervisor::detail
