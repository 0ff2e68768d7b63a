// SPDX-License-Identifier: GPL-2.0-or-later
// The supervisor's policy. Nothing here can reboot or power off the host: the only
// power actions are QMP commands to the VM and a SIGKILL to QEMU.
#include "rescuevm/core/supervisor_policy.h"

#include <fmt/format.h>

#include <algorithm>

namespace rescuevm::supervisor {
namespace {

constexpr int kInfo = 0, kWarning = 1, kError = 2;
constexpr Millis kHour{3'600'000}, kTenMinutes{600'000};

struct Ctx {
    State s;
    std::vector<Action> out;
    const Params &p;
    std::int64_t now;

    void log(int level, std::string message) { out.push_back(Log{level, std::move(message)}); }
    void event(std::string words)
    {
        s.last_event = std::move(words);
        s.last_event_ms = now;
    }
    void set_state(VmState vm)
    {
        s.vm = vm;
        out.push_back(Notify{false, fmt::format("VM {}", to_string(vm))});
    }
    void spawn()
    {
        s.qemu_starts++;
        s.qemu_started_ms = now;
        s.guest_ran = false;
        out.push_back(SpawnQemu{});
        set_state(VmState::starting);
    }
    void quit_qemu()
    {
        out.push_back(Qmp{"quit"});
        out.push_back(StartTimer{Timer::quit_deadline, p.quit_grace});
    }
    void begin_powerdown(Millis deadline)
    {
        out.push_back(Qmp{"system_powerdown"});
        out.push_back(StartTimer{Timer::powerdown_deadline, deadline});
        set_state(VmState::stopping);
    }
    void end_agent()
    {
        out.push_back(ReleaseNetwork{});
        log(kInfo, p.network ? "session ended; the host stays in rescue and has its network back"
                             : "session ended; the host stays in rescue");
        out.push_back(ExitAgent{0});
    }
};

void on_stop_requested(Ctx &c, const std::string &why)
{
    bool second = c.s.stop_requested;
    c.s.stop_requested = true;
    switch (c.s.vm) {
    case VmState::running:
        c.log(kInfo, fmt::format("{}: asking the guest to power down (ACPI power button), waiting up to {} s",
                                 why, c.p.shutdown_timeout.count() / 1000));
        c.begin_powerdown(c.p.shutdown_timeout);
        break;
    case VmState::starting:
        c.log(kInfo, fmt::format("{}: the guest has not started yet; stopping QEMU", why));
        c.quit_qemu();
        c.set_state(VmState::stopping);
        break;
    case VmState::stopping:
        if (second || c.s.off_requested) {
            c.log(kWarning, fmt::format("{} again: not waiting for the guest any longer; stopping QEMU", why));
            c.out.push_back(CancelTimer{Timer::powerdown_deadline});
            c.quit_qemu();
        }
        break;
    case VmState::crashed_waiting:
        c.out.push_back(CancelTimer{Timer::restart_backoff});
        [[fallthrough]];
    case VmState::off:
    case VmState::failed:
        c.log(kInfo, fmt::format("{}: no VM is running", why));
        c.end_agent();
        break;
    }
}

void on_qemu_exited(Ctx &c, const QemuExited &e)
{
    c.out.push_back(CancelTimer{Timer::quit_deadline});
    c.out.push_back(CancelTimer{Timer::powerdown_deadline});
    switch (c.s.vm) {
    case VmState::stopping:
    case VmState::off:
        c.event("QEMU ended");
        c.out.push_back(CheckDiskIdentities{"the VM process ended"});
        if (c.s.stop_requested) {
            c.end_agent();
            return;
        }
        c.s.off_requested = false;
        c.out.push_back(ReleaseNetwork{});
        c.log(kInfo, fmt::format("VM is off; the host stays in rescue{}. Start the VM again with `rescuevm vm start`",
                                 c.p.network ? " and has its network back" : ""));
        if (c.s.vm != VmState::off)
            c.set_state(VmState::off);
        return;
    case VmState::running:
    case VmState::starting: {
        c.event("QEMU ended unexpectedly: " + e.how);
        c.out.push_back(CheckDiskIdentities{"the VM process ended"});
        if (c.now - c.s.qemu_started_ms >= c.p.good_run.count())
            c.s.quick_failures = 0;
        c.s.quick_failures++;
        if (c.s.quick_failures >= c.p.max_quick_failures) {
            c.log(kError, fmt::format("QEMU ended unexpectedly ({}), {} times in a row: not restarting it. "
                                      "See qemu.log in the runtime directory, then `rescuevm vm start`; "
                                      "the host stays in rescue",
                                      e.how, c.s.quick_failures));
            c.out.push_back(ReleaseNetwork{});
            c.set_state(VmState::failed);
            return;
        }
        Millis delay = backoff_delay(c.s.quick_failures, c.p);
        c.log(kError, fmt::format("QEMU ended unexpectedly ({}); the host stays in rescue; restarting QEMU in {} s "
                                  "(failure {} of {})",
                                  e.how, delay.count() / 1000.0, c.s.quick_failures, c.p.max_quick_failures));
        c.out.push_back(StartTimer{Timer::restart_backoff, delay});
        c.set_state(VmState::crashed_waiting);
        return;
    }
    case VmState::crashed_waiting:
    case VmState::failed:
        return;
    }
}

void on_guest_shutdown(Ctx &c, const GuestShutdown &e)
{
    if (!e.guest)
        return; // our own quit or a signal to QEMU: its exit follows
    c.event("guest powered off");
    if (c.s.vm == VmState::stopping) {
        c.log(kInfo, "guest powered off as asked; stopping QEMU");
        c.out.push_back(CancelTimer{Timer::powerdown_deadline});
        c.quit_qemu();
        return;
    }
    if (c.s.vm != VmState::running)
        return;
    c.out.push_back(CheckDiskIdentities{"the guest powered off"});
    if (c.p.restart_on_poweroff) {
        c.log(kInfo, "guest powered itself off; supervisor.on_guest_poweroff = \"restart\": "
                     "starting it again in the same QEMU; the host stays in rescue");
        c.out.push_back(Qmp{"system_reset"});
        c.out.push_back(Qmp{"cont"});
        c.s.boots++;
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
    if (e.type == "hyper-v")
        c.log(kError, fmt::format("guest crashed: Windows STOP code 0x{:08X} (0x{:016X}, 0x{:016X}, 0x{:016X}, "
                                  "0x{:016X}); screenshot saved, restarting the guest in place",
                                  e.code, e.params[0], e.params[1], e.params[2], e.params[3]));
    else
        c.log(kError, "guest crashed (panic reported through pvpanic); screenshot saved, restarting the guest "
                      "in place");
    c.event("guest crashed");
    c.out.push_back(Screendump{});
    c.out.push_back(Qmp{"system_reset"});
    c.out.push_back(Qmp{"cont"});
    c.s.boots++;
}

void on_control(Ctx &c, const Control &e)
{
    auto reply = [&](bool ok, std::string msg) { c.out.push_back(Reply{ok, std::move(msg)}); };
    if (e.action == "start") {
        if (c.s.stop_requested)
            return reply(false, "the agent is stopping; start it again to run the VM");
        if (c.s.vm == VmState::running || c.s.vm == VmState::starting || c.s.vm == VmState::stopping)
            return reply(false, fmt::format("the VM is {}; nothing to start", to_string(c.s.vm)));
        if (c.s.vm == VmState::crashed_waiting)
            c.out.push_back(CancelTimer{Timer::restart_backoff});
        c.s.quick_failures = 0;
        c.log(kInfo, "starting the VM (asked through the control socket)");
        c.out.push_back(ClaimNetwork{});
        c.spawn();
        return reply(true, "starting the VM");
    }
    if (e.action == "stop" || e.action == "powerdown") {
        if (c.s.vm != VmState::running)
            return reply(false, fmt::format("the VM is {}; nothing to {}", to_string(c.s.vm), e.action));
        c.s.off_requested = true;
        c.log(kInfo, fmt::format("asking the guest to power down ({}, through the control socket)", e.action));
        // `stop` insists after shutdown_timeout; `powerdown` leaves it to the guest.
        c.begin_powerdown(e.action == "stop" ? c.p.shutdown_timeout : Millis{24LL * 3'600'000});
        return reply(true, "ACPI power button sent to the guest");
    }
    if (e.action == "reset") {
        if (c.s.vm != VmState::running)
            return reply(false, fmt::format("the VM is {}; nothing to reset", to_string(c.s.vm)));
        c.log(kWarning, "resetting the VM (reset button, asked through the control socket)");
        c.out.push_back(Qmp{"system_reset"});
        c.s.boots++;
        return reply(true, "VM reset");
    }
    reply(false, fmt::format("unknown VM action \"{}\": use start, stop, powerdown or reset", e.action));
}

void on_timer(Ctx &c, Timer t)
{
    switch (t) {
    case Timer::restart_backoff:
        if (c.s.vm == VmState::crashed_waiting) {
            c.log(kInfo, "restarting QEMU");
            c.spawn();
        }
        return;
    case Timer::powerdown_deadline:
        if (c.s.vm == VmState::stopping) {
            c.log(kWarning, "guest did not power off in time; stopping QEMU (the server's disks may not be clean)");
            c.quit_qemu();
        }
        return;
    case Timer::quit_deadline:
        c.log(kWarning, "QEMU did not end after `quit`; killing it");
        c.out.push_back(KillQemu{});
        return;
    case Timer::session_warn_1h:
        c.log(kWarning, "session limit (supervisor.max_session): the VM will be powered down in 1 hour");
        return;
    case Timer::session_warn_10m:
        c.log(kWarning, "session limit (supervisor.max_session): the VM will be powered down in 10 minutes");
        return;
    case Timer::session_end:
        on_stop_requested(c, "session limit reached (supervisor.max_session)");
        return;
    }
}

} // namespace

const char *to_string(VmState s)
{
    switch (s) {
    case VmState::starting: return "starting";
    case VmState::running: return "running";
    case VmState::off: return "off";
    case VmState::crashed_waiting: return "crashed-waiting";
    case VmState::failed: return "failed";
    case VmState::stopping: return "stopping";
    }
    return "?";
}

const char *to_string(Timer t)
{
    switch (t) {
    case Timer::restart_backoff: return "restart-backoff";
    case Timer::powerdown_deadline: return "powerdown-deadline";
    case Timer::quit_deadline: return "quit-deadline";
    case Timer::session_warn_1h: return "session-warn-1h";
    case Timer::session_warn_10m: return "session-warn-10m";
    case Timer::session_end: return "session-end";
    }
    return "?";
}

Millis backoff_delay(unsigned n, const Params &p)
{
    Millis d = p.backoff_first;
    for (unsigned i = 1; i < n && d < p.backoff_max; ++i)
        d *= 2;
    return std::min(d, p.backoff_max);
}

Step transition(const State &state, const Event &event, const Params &params, std::int64_t now_ms)
{
    Ctx c{state, {}, params, now_ms};
    std::visit(
        [&](const auto &e) {
            using E = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<E, SessionStarted>) {
                if (params.max_session) {
                    Millis max = *params.max_session;
                    if (max > kHour)
                        c.out.push_back(StartTimer{Timer::session_warn_1h, max - kHour});
                    if (max > kTenMinutes)
                        c.out.push_back(StartTimer{Timer::session_warn_10m, max - kTenMinutes});
                    c.out.push_back(StartTimer{Timer::session_end, max});
                }
                c.out.push_back(ClaimNetwork{});
                c.spawn();
            } else if constexpr (std::is_same_v<E, QmpReady>) {
                if (c.s.vm == VmState::starting)
                    c.out.push_back(Qmp{c.s.stop_requested ? "quit" : "cont"});
            } else if constexpr (std::is_same_v<E, GuestResumed>) {
                if (c.s.vm == VmState::starting) {
                    c.s.guest_ran = true;
                    c.s.boots++;
                    c.event("guest started");
                    c.log(kInfo, fmt::format("guest is running (boot {}); the host stays in rescue", c.s.boots));
                    c.s.vm = VmState::running;
                    c.out.push_back(Notify{true, "VM running"});
                }
            } else if constexpr (std::is_same_v<E, GuestReset>) {
                bool burst = now_ms - c.s.last_reset_ms < params.reset_burst.count();
                if (e.guest && c.s.vm == VmState::running && !burst) {
                    c.s.reboots++;
                    c.s.boots++;
                    c.event("guest restarted itself");
                    c.log(kInfo, fmt::format("guest restarted itself (Windows reboot {}); VM keeps running, host "
                                             "stays in rescue",
                                             c.s.reboots));
                    c.out.push_back(CheckDiskIdentities{"the guest rebooted"});
                }
                // Our own system_reset (restart policy, panic, `vm reset`) opens a burst too: SeaBIOS
                // follows it with guest-reset RESETs of its own, which are no guest reboot.
                c.s.last_reset_ms = now_ms;
            } else if constexpr (std::is_same_v<E, GuestShutdown>) {
                on_guest_shutdown(c, e);
            } else if constexpr (std::is_same_v<E, GuestPanicked>) {
                on_guest_panicked(c, e);
            } else if constexpr (std::is_same_v<E, QemuExited>) {
                on_qemu_exited(c, e);
            } else if constexpr (std::is_same_v<E, QmpLost>) {
                c.log(kWarning, "lost the QMP connection to QEMU; reconnecting");
            } else if constexpr (std::is_same_v<E, StopRequested>) {
                on_stop_requested(c, "stop requested (SIGTERM/SIGINT)");
            } else if constexpr (std::is_same_v<E, TimerFired>) {
                on_timer(c, e.timer);
            } else if constexpr (std::is_same_v<E, Control>) {
                on_control(c, e);
            }
        },
        event);
    return {c.s, std::move(c.out)};
}

} // namespace rescuevm::supervisor
