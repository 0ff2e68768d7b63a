// SPDX-License-Identifier: GPL-2.0-or-later
// The supervisor's policy: starting QEMU, its exits and restarts, stopping, QMP health, timers. Nothing here can
// reboot or power off the host: the only power actions are QMP commands to the VM and a SIGKILL to QEMU.
#include "policy_context.h"

#include <algorithm>

namespace rescuevm::supervisor {
namespace detail {
namespace {

constexpr Millis kHour{3'600'000}, kTenMinutes{600'000};

void start_session_timers(Ctx &c)
{
    if (!c.p.max_session)
        return;
    Millis max = *c.p.max_session;
    if (max > kHour)
        c.out.push_back(StartTimer{Timer::session_warn_1h, max - kHour});
    if (max > kTenMinutes)
        c.out.push_back(StartTimer{Timer::session_warn_10m, max - kTenMinutes});
    else // a short session still gets one warning, half way
        c.out.push_back(StartTimer{Timer::session_warn_half, max / 2});
    c.out.push_back(StartTimer{Timer::session_end, max});
}

void spawn(Ctx &c)
{
    c.s.qemu_starts++;
    c.s.qemu_started_ms = c.now;
    c.s.guest_ran = false;
    c.s.qemu_alive = true;
    c.s.qmp_answering = true;
    c.out.push_back(SpawnQemu{});
}

// QEMU is gone (or never came) when it should be running: restart with a backoff,
// or give up after too many quick failures in a row.
void on_unexpected_end(Ctx &c, const std::string &how)
{
    c.out.push_back(CheckSignatures{"the VM process ended"});
    if (c.now - c.s.qemu_started_ms >= c.p.good_run.count())
        c.s.quick_failures = 0;
    c.s.quick_failures++;
    if (c.s.quick_failures >= c.p.max_quick_failures) {
        c.log(kError, fmt::format("QEMU ended unexpectedly ({}), {} times in a row: not restarting it. "
                                  "See qemu.log in the runtime directory, then `rescuevm vm start`; "
                                  "the host stays in rescue",
                                  how, c.s.quick_failures));
        c.out.push_back(ReleaseNetwork{});
        c.set_state(VmState::failed);
        c.settle_start_reply(false, "QEMU ended unexpectedly (" + how + "); see qemu.log in the runtime directory");
        return;
    }
    Millis delay = backoff_delay(c.s.quick_failures, c.p);
    c.log(kError, fmt::format("QEMU ended unexpectedly ({}); the host stays in rescue; restarting QEMU in {} s "
                              "(failure {} of {})",
                              how, delay.count() / 1000.0, c.s.quick_failures, c.p.max_quick_failures));
    c.out.push_back(StartTimer{Timer::restart_backoff, delay});
    c.set_state(VmState::crashed_waiting);
}

void on_qemu_exited(Ctx &c, const QemuExited &e)
{
    c.s.qemu_alive = false;
    c.s.guest_agent_up = false;
    c.out.push_back(CancelTimer{Timer::quit_deadline});
    c.out.push_back(CancelTimer{Timer::powerdown_deadline});
    c.out.push_back(CancelTimer{Timer::panic_backoff});
    c.out.push_back(CancelTimer{Timer::acpi_fallback});
    c.out.push_back(CancelTimer{Timer::boot_progress});
    if (c.s.image_outage) {
        c.out.push_back(CancelTimer{Timer::image_retry});
        c.out.push_back(CancelTimer{Timer::image_settled});
        c.s.image_outage = false;
    }
    switch (c.s.vm) {
    case VmState::stopping:
    case VmState::off:
        c.event("QEMU ended");
        c.out.push_back(CheckSignatures{"the VM process ended"});
        if (c.s.stop_requested) {
            c.end_agent();
            return;
        }
        c.s.off_requested = false;
        c.out.push_back(ReleaseNetwork{});
        c.log(kInfo, fmt::format("VM is off; the host stays in rescue{}. Start the VM again with `rescuevm vm start`",
                                 c.p.network ? " and has its network back" : ""));
        c.set_state(VmState::off);
        return;
    case VmState::running:
    case VmState::starting:
    case VmState::paused:
        c.event("QEMU ended unexpectedly: " + e.how);
        if (c.s.stop_requested) { // it ended while we were about to stop it anyway
            c.out.push_back(CheckSignatures{"the VM process ended"});
            c.end_agent();
            return;
        }
        on_unexpected_end(c, e.how);
        return;
    case VmState::crashed_waiting:
    case VmState::failed:
    case VmState::refused:
        return;
    }
}

void on_start_prepared(Ctx &c)
{
    if (c.s.vm != VmState::starting || c.s.qemu_alive)
        return;
    if (c.s.stop_requested) {
        c.log(kInfo, "stop requested while the start was being prepared: not starting QEMU");
        c.end_agent();
        return;
    }
    spawn(c);
}

void on_start_refused(Ctx &c, const StartRefused &e)
{
    if (c.s.vm != VmState::starting || c.s.qemu_alive)
        return;
    c.event("start refused");
    c.s.pause_reason = e.why;
    if (c.s.stop_requested) {
        c.end_agent();
        return;
    }
    c.log(kError, fmt::format("the VM is not started: {}; the host stays in rescue. Fix it, then `rescuevm vm "
                              "start`; to plan again with the disks as they are now, restart the agent "
                              "(systemctl restart rescuevm)",
                              e.why));
    c.out.push_back(ReleaseNetwork{});
    c.set_state(VmState::refused);
    c.settle_start_reply(false, "the VM is not started: " + e.why);
}

void on_reattached(Ctx &c, const Reattached &e)
{
    c.s.qemu_alive = true;
    c.s.qemu_starts = 1;
    c.s.qemu_started_ms = c.now;
    c.s.boots = e.boots;
    c.s.guest_ran = e.status != "prelaunch";
    c.s.guest_alive = true; // it ran before this agent came: no boot-progress clock for it
    c.event("re-attached to a running VM");
    start_session_timers(c);
    c.log(kInfo, fmt::format("re-attached; the guest is {}", e.status.empty() ? "in an unknown state (QMP did not "
                                                                                 "answer)"
                                                                               : e.status));
    if (e.status == "prelaunch") {
        c.set_state(VmState::starting);
        c.out.push_back(Qmp{"cont"});
        return;
    }
    c.set_state(VmState::running);
    if (e.status.empty())
        c.s.qmp_answering = false;
    else if (e.status == "shutdown")
        on_guest_shutdown(c, GuestShutdown{"guest-shutdown", true});
    else if (e.status == "guest-panicked")
        on_guest_panicked(c, GuestPanicked{});
    else if (e.status != "running")
        on_guest_paused(c, GuestPaused{e.status, ""});
}

void on_timer(Ctx &c, Timer t)
{
    switch (t) {
    case Timer::restart_backoff:
        if (c.s.vm == VmState::crashed_waiting) {
            c.log(kInfo, "restarting QEMU");
            begin_start(c);
        }
        return;
    case Timer::panic_backoff:
        on_panic_backoff(c);
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
    case Timer::session_warn_half:
        if (c.p.max_session)
            c.log(kWarning, fmt::format("session limit (supervisor.max_session): the VM will be powered down in {} s",
                                        (*c.p.max_session - *c.p.max_session / 2).count() / 1000));
        return;
    case Timer::session_end:
        on_stop_requested(c, "session limit reached (supervisor.max_session)", false);
        return;
    case Timer::boot_progress:
        on_boot_progress_timer(c);
        return;
    case Timer::acpi_fallback:
        on_acpi_fallback_timer(c);
        return;
    case Timer::image_retry:
        on_image_retry(c);
        return;
    case Timer::image_settled:
        on_image_settled(c);
        return;
    }
}

} // namespace

void begin_start(Ctx &c)
{
    c.s.pause_reason.clear();
    c.out.push_back(PrepareStart{});
    c.set_state(VmState::starting);
}

void on_stop_requested(Ctx &c, const std::string &why, bool signal)
{
    // Only a second signal cuts a power-down short: the session limit's power-down is not a
    // first SIGTERM (a host shutdown during it would cut Windows off mid-shutdown).
    bool second = signal && c.s.stop_signalled;
    c.s.stop_signalled = c.s.stop_signalled || signal;
    c.s.stop_requested = true;
    switch (c.s.vm) {
    case VmState::running:
        if (!c.s.boot_problem.empty()) {
            c.log(kInfo, fmt::format("{}: the guest has no operating system to answer the ACPI button (the image "
                                     "did not boot); stopping QEMU now",
                                     why));
            c.quit_qemu();
            c.set_state(VmState::stopping);
            break;
        }
        c.log(kInfo, fmt::format("{}: asking the guest to power down ({}), waiting up to {} s", why,
                                 c.s.guest_agent_up ? "guest agent guest-shutdown, then the ACPI power button"
                                                    : "ACPI power button",
                                 c.p.shutdown_timeout.count() / 1000));
        ask_guest_to_stop(c, c.p.shutdown_timeout, false);
        break;
    case VmState::starting:
        if (!c.s.qemu_alive) {
            c.log(kInfo, fmt::format("{}: the VM start is still being prepared; stopping once that is done", why));
            break;
        }
        c.log(kInfo, fmt::format("{}: the guest has not started yet; stopping QEMU", why));
        c.quit_qemu();
        c.set_state(VmState::stopping);
        break;
    case VmState::paused:
        c.log(kWarning, fmt::format("{}: the guest is paused ({}) and cannot power down; stopping QEMU", why,
                                    c.s.pause_reason.empty() ? "by QEMU" : c.s.pause_reason));
        c.out.push_back(CancelTimer{Timer::panic_backoff});
        c.quit_qemu();
        c.set_state(VmState::stopping);
        break;
    case VmState::stopping:
        if (second) {
            c.log(kWarning, fmt::format("{} again: not waiting for the guest any longer; stopping QEMU", why));
            c.out.push_back(CancelTimer{Timer::powerdown_deadline});
            c.out.push_back(CancelTimer{Timer::acpi_fallback});
            c.quit_qemu();
        } else if (c.s.off_requested) {
            // The guest is already shutting down (`vm stop`/`powerdown`): it keeps its full time.
            c.log(kInfo, fmt::format("{}: the guest is already powering down; waiting up to {} s (stop again to cut "
                                     "it short)",
                                     why, c.p.shutdown_timeout.count() / 1000));
            c.out.push_back(CancelTimer{Timer::powerdown_deadline});
            c.out.push_back(StartTimer{Timer::powerdown_deadline, c.p.shutdown_timeout});
        } else if (signal) {
            // The session limit's power-down is under way, with its deadline running.
            c.log(kInfo, fmt::format("{}: the guest is already powering down; waiting for it (stop again to cut it "
                                     "short)",
                                     why));
        }
        break;
    case VmState::crashed_waiting:
        c.out.push_back(CancelTimer{Timer::restart_backoff});
        [[fallthrough]];
    case VmState::off:
    case VmState::failed:
    case VmState::refused:
        c.log(kInfo, fmt::format("{}: no VM is running", why));
        c.end_agent();
        break;
    }
}

} // namespace detail

using namespace detail;

const char *to_string(VmState s)
{
    switch (s) {
    case VmState::starting: return "starting";
    case VmState::running: return "running";
    case VmState::paused: return "paused";
    case VmState::off: return "off";
    case VmState::crashed_waiting: return "crashed-waiting";
    case VmState::failed: return "failed";
    case VmState::refused: return "refused";
    case VmState::stopping: return "stopping";
    }
    return "?";
}

const char *to_string(Timer t)
{
    switch (t) {
    case Timer::restart_backoff: return "restart-backoff";
    case Timer::panic_backoff: return "panic-backoff";
    case Timer::powerdown_deadline: return "powerdown-deadline";
    case Timer::quit_deadline: return "quit-deadline";
    case Timer::session_warn_1h: return "session-warn-1h";
    case Timer::session_warn_10m: return "session-warn-10m";
    case Timer::session_warn_half: return "session-warn-half";
    case Timer::session_end: return "session-end";
    case Timer::boot_progress: return "boot-progress";
    case Timer::acpi_fallback: return "acpi-fallback";
    case Timer::image_retry: return "image-retry";
    case Timer::image_settled: return "image-settled";
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
                start_session_timers(c);
                begin_start(c);
            } else if constexpr (std::is_same_v<E, Reattached>) {
                on_reattached(c, e);
            } else if constexpr (std::is_same_v<E, StartPrepared>) {
                on_start_prepared(c);
            } else if constexpr (std::is_same_v<E, StartRefused>) {
                on_start_refused(c, e);
            } else if constexpr (std::is_same_v<E, SpawnFailed>) {
                if (c.s.vm == VmState::starting && c.s.qemu_alive) {
                    c.s.qemu_alive = false;
                    c.event("QEMU could not be started: " + e.why);
                    on_unexpected_end(c, "could not be started: " + e.why);
                }
            } else if constexpr (std::is_same_v<E, QmpReady>) {
                if (c.s.vm == VmState::starting && c.s.qemu_alive)
                    c.out.push_back(Qmp{c.s.stop_requested ? "quit" : "cont"});
            } else if constexpr (std::is_same_v<E, GuestResumed>) {
                on_guest_resumed(c);
            } else if constexpr (std::is_same_v<E, GuestPaused>) {
                on_guest_paused(c, e);
            } else if constexpr (std::is_same_v<E, GuestReset>) {
                on_guest_reset(c, e);
            } else if constexpr (std::is_same_v<E, GuestShutdown>) {
                on_guest_shutdown(c, e);
            } else if constexpr (std::is_same_v<E, GuestPanicked>) {
                on_guest_panicked(c, e);
            } else if constexpr (std::is_same_v<E, BootFailed>) {
                on_boot_failed(c, e);
            } else if constexpr (std::is_same_v<E, QemuExited>) {
                on_qemu_exited(c, e);
            } else if constexpr (std::is_same_v<E, QmpLost>) {
                c.log(kWarning, "lost the QMP connection to QEMU; reconnecting");
            } else if constexpr (std::is_same_v<E, QmpUnresponsive>) {
                if (c.s.qmp_answering)
                    c.log(kWarning, fmt::format("QEMU does not answer on QMP ({}): it may be stopped or hung; the VM's "
                                                "state is unknown until it answers",
                                                e.detail));
                c.s.qmp_answering = false;
            } else if constexpr (std::is_same_v<E, QmpRestored>) {
                if (!c.s.qmp_answering)
                    c.log(kInfo, "QEMU answers on QMP again");
                c.s.qmp_answering = true;
            } else if constexpr (std::is_same_v<E, StopRequested>) {
                on_stop_requested(c, "stop requested (SIGTERM/SIGINT)", true);
            } else if constexpr (std::is_same_v<E, TimerFired>) {
                on_timer(c, e.timer);
            } else if constexpr (std::is_same_v<E, Control>) {
                on_control(c, e);
            } else if constexpr (std::is_same_v<E, GuestActivity>) {
                on_guest_activity(c, e.source);
            } else if constexpr (std::is_same_v<E, GuestAgentUp>) {
                on_guest_agent_up(c);
            } else if constexpr (std::is_same_v<E, GuestAgentDown>) {
                on_guest_agent_down(c, e);
            } else if constexpr (std::is_same_v<E, GuestAgentShutdownDone>) {
                on_guest_agent_shutdown_done(c, e);
            } else if constexpr (std::is_same_v<E, OverlayLimit>) {
                on_overlay_limit(c, e);
            }
        },
        event);
    return {c.s, std::move(c.out)};
}

} // namespace rescuevm::supervisor
