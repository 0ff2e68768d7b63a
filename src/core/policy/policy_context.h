// SPDX-License-Identifier: GPL-2.0-or-later
// The policy's working state during one transition, and the steps its parts share (supervisor_policy.cpp, policy_guest.cpp, policy_control.cpp, policy_guest_agent.cpp). Pure.
#pragma once

#include "rescuevm/core/supervisor_policy.h"

#include <fmt/format.h>

namespace rescuevm::supervisor::detail {

constexpr int kInfo = 0, kWarning = 1, kError = 2;

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
        if (s.vm == vm)
            return;
        s.vm = vm;
        out.push_back(Notify{fmt::format("VM {}", to_string(vm))});
    }
    void reply(bool ok, std::string message) { out.push_back(Reply{ok, std::move(message)}); }
    // Answers a `vm start` that waits for its outcome, if one does.
    void settle_start_reply(bool ok, const std::string &message)
    {
        if (!s.start_reply_pending)
            return;
        s.start_reply_pending = false;
        reply(ok, message);
    }
    void quit_qemu()
    {
        out.push_back(Qmp{"quit"});
        out.push_back(StartTimer{Timer::quit_deadline, p.quit_grace});
    }
    void end_agent()
    {
        out.push_back(ReleaseNetwork{});
        log(kInfo, p.network ? "session ended; the host stays in rescue and has its network back"
                             : "session ended; the host stays in rescue");
        out.push_back(ExitAgent{0});
    }
};

// supervisor_policy.cpp
void begin_start(Ctx &c);
// signal: a SIGTERM/SIGINT (only a second signal cuts a power-down short), else the session limit.
void on_stop_requested(Ctx &c, const std::string &why, bool signal);
// policy_guest.cpp
void on_guest_resumed(Ctx &c);
void on_guest_paused(Ctx &c, const GuestPaused &e);
void on_guest_reset(Ctx &c, const GuestReset &e);
void on_guest_shutdown(Ctx &c, const GuestShutdown &e);
void on_guest_panicked(Ctx &c, const GuestPanicked &e);
void on_panic_backoff(Ctx &c);
void on_boot_failed(Ctx &c, const BootFailed &e);
void on_image_retry(Ctx &c);
void on_image_settled(Ctx &c);
void on_overlay_limit(Ctx &c, const OverlayLimit &e);
// policy_control.cpp
void on_control(Ctx &c, const Control &e);
// policy_guest_agent.cpp
// A stop of the running guest: guest-shutdown through the guest agent when it answers (the
// ACPI button follows after guest_shutdown_grace), else the ACPI button; QEMU is stopped
// after `deadline`. With `reply`, the pending control request is answered.
void ask_guest_to_stop(Ctx &c, Millis deadline, bool reply);
// The guest (re)starts: its boot-progress clock starts.
void new_boot(Ctx &c);
void on_guest_activity(Ctx &c, const std::string &source);
void on_guest_agent_up(Ctx &c);
void on_guest_agent_down(Ctx &c, const GuestAgentDown &e);
void on_guest_agent_shutdown_done(Ctx &c, const GuestAgentShutdownDone &e);
void on_boot_progress_timer(Ctx &c);
void on_acpi_fallback_timer(Ctx &c);

} // namespace rescuevm::supervisor::detail
