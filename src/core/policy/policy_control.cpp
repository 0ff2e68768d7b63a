// SPDX-License-Identifier: GPL-2.0-or-later
// The policy's answers to `rescuevm vm start|stop|powerdown|reset|resume`; each reply comes once the outcome is known. Pure.
#include "policy_context.h"

namespace rescuevm::supervisor::detail {
namespace {

void start(Ctx &c)
{
    if (c.s.stop_requested)
        return c.reply(false, "the agent is stopping; start it again to run the VM");
    switch (c.s.vm) {
    case VmState::running:
    case VmState::starting:
    case VmState::stopping:
    case VmState::paused:
        return c.reply(false, fmt::format("the VM is {}; nothing to start", to_string(c.s.vm)));
    case VmState::crashed_waiting:
        c.out.push_back(CancelTimer{Timer::restart_backoff});
        break;
    case VmState::off:
    case VmState::failed:
    case VmState::refused:
        break;
    }
    c.s.quick_failures = 0;
    c.s.panic_streak = 0;
    c.log(kInfo, "starting the VM (asked through the control socket)");
    c.s.start_reply_pending = true; // answered when the guest runs, or the start fails
    begin_start(c);
}

void power_down(Ctx &c, const std::string &action)
{
    if (c.s.vm == VmState::paused && action == "stop") {
        c.s.off_requested = true;
        c.log(kWarning, fmt::format("vm stop: the guest is paused ({}) and cannot power down; stopping QEMU",
                                    c.s.pause_reason));
        c.out.push_back(CancelTimer{Timer::panic_backoff});
        c.quit_qemu();
        c.set_state(VmState::stopping);
        return c.reply(true, "the guest was paused: QEMU is being stopped");
    }
    if (c.s.vm != VmState::running)
        return c.reply(false, fmt::format("the VM is {}; nothing to {}", to_string(c.s.vm), action));
    c.s.off_requested = true;
    if (!c.s.boot_problem.empty()) {
        c.log(kInfo, fmt::format("vm {}: the image did not boot, no operating system can answer the ACPI button; "
                                 "stopping QEMU now",
                                 action));
        c.quit_qemu();
        c.set_state(VmState::stopping);
        return c.reply(true, "the image did not boot: QEMU is being stopped");
    }
    if (action == "stop") {
        // `stop` asks the guest agent first when it answers, then insists after shutdown_timeout.
        c.log(kInfo, fmt::format("asking the guest to power down (vm stop, through the control socket: {}), waiting "
                                 "up to {} s",
                                 c.s.guest_agent_up ? "guest agent guest-shutdown, then the ACPI power button"
                                                    : "ACPI power button",
                                 c.p.shutdown_timeout.count() / 1000));
        return ask_guest_to_stop(c, c.p.shutdown_timeout, true);
    }
    c.log(kInfo, "pressing the guest's ACPI power button (vm powerdown, through the control socket)");
    // `powerdown` is the button alone, and leaves it to the guest.
    c.out.push_back(Qmp{"system_powerdown", true, "ACPI power button sent to the guest"});
    c.out.push_back(StartTimer{Timer::powerdown_deadline, Millis{24LL * 3'600'000}});
    c.set_state(VmState::stopping);
}

void reset(Ctx &c)
{
    if (c.s.vm != VmState::running && c.s.vm != VmState::paused)
        return c.reply(false, fmt::format("the VM is {}; nothing to reset", to_string(c.s.vm)));
    c.log(kWarning, "resetting the VM (reset button, asked through the control socket)");
    c.s.boots++;
    c.s.boot_problem.clear();
    if (c.s.vm == VmState::paused) {
        c.out.push_back(CancelTimer{Timer::panic_backoff});
        c.s.panic_streak = 0;
        c.out.push_back(Qmp{"system_reset"});
        c.out.push_back(Qmp{"cont", true, "VM reset"});
        new_boot(c);
        return;
    }
    c.out.push_back(Qmp{"system_reset", true, "VM reset"});
    new_boot(c);
}

void resume(Ctx &c)
{
    if (c.s.vm != VmState::paused)
        return c.reply(false, fmt::format("the VM is {}; nothing to resume", to_string(c.s.vm)));
    // QEMU refuses to continue a crashed guest; cancelling the restart for it would leave the VM paused.
    if (c.s.crashed)
        return c.reply(false, c.s.panic_streak >= c.p.max_quick_panics
                                  ? "the guest crashed and cannot continue: `rescuevm vm reset` boots it again"
                                  : "the guest crashed and cannot continue; it is restarted by itself after its "
                                    "backoff (`rescuevm vm reset` does it now)");
    c.log(kInfo, fmt::format("resuming the paused guest (it was paused: {})", c.s.pause_reason));
    c.out.push_back(CancelTimer{Timer::panic_backoff});
    c.out.push_back(Qmp{"cont", true, "VM resumed"});
}

} // namespace

void on_control(Ctx &c, const Control &e)
{
    if (e.action == "start")
        return start(c);
    if (e.action == "stop" || e.action == "powerdown")
        return power_down(c, e.action);
    if (e.action == "reset")
        return reset(c);
    if (e.action == "resume")
        return resume(c);
    c.reply(false, fmt::format("unknown VM action \"{}\": use start, stop, powerdown, reset or resume", e.action));
}

} // namespace rescuevm::supervisor::detail
