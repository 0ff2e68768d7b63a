// SPDX-License-Identifier: GPL-2.0-or-later
// The supervisor's policy: a pure transition (state, event) -> (state, actions).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace rescuevm::supervisor {

using Millis = std::chrono::milliseconds;

enum class VmState {
    starting,        // QEMU spawned, QMP being negotiated, guest not yet running
    running,         // the guest runs (it may be rebooting itself: that is still running)
    off,             // the guest powered itself off (or was stopped); no QEMU process
    crashed_waiting, // QEMU ended unexpectedly; a restart is scheduled
    failed,          // QEMU failed too often in a row; no more restarts until `vm start`
    stopping,        // the agent is ending the session: guest asked to power down
};
const char *to_string(VmState);

enum class Timer { restart_backoff, powerdown_deadline, quit_deadline, session_warn_1h, session_warn_10m,
                   session_end };
const char *to_string(Timer);

struct Params {
    bool restart_on_poweroff = false;   // supervisor.on_guest_poweroff = "restart"
    bool network = true;                // the VM carries the server's network (macvtap)
    Millis shutdown_timeout{120'000};
    std::optional<Millis> max_session;
    Millis reset_burst{1500};           // SeaBIOS sends 2-3 RESETs per reboot
    Millis backoff_first{1000};
    Millis backoff_max{60'000};
    Millis good_run{600'000};           // a QEMU that ran this long resets the backoff
    unsigned max_quick_failures = 5;
    Millis quit_grace{15'000};          // after `quit`, SIGKILL if QEMU is still there
};

struct State {
    VmState vm = VmState::starting;
    bool stop_requested = false;     // SIGTERM/SIGINT or the session limit: the agent is ending
    bool off_requested = false;      // `vm stop`/`vm powerdown`: the VM goes off, the agent stays
    bool guest_ran = false;          // the guest has run in this QEMU
    unsigned boots = 0;              // guest boots seen (first boot and each reboot)
    unsigned reboots = 0;            // guest-initiated reboots (bursts counted once)
    unsigned panics = 0;
    unsigned qemu_starts = 0;
    unsigned quick_failures = 0;     // QEMU ends in a row, each after less than good_run
    std::int64_t last_reset_ms = -1'000'000'000;
    std::int64_t qemu_started_ms = 0;
    std::string last_event;          // in words, for `status`
    std::int64_t last_event_ms = 0;
};

// What happened, as the executor saw it. `now` is a monotonic time in ms.
struct QmpReady {};                                     // negotiated; the guest is still stopped (-S)
struct GuestResumed {};                                 // `cont` done: the guest runs
struct GuestReset { std::string reason; bool guest = true; };
struct GuestShutdown { std::string reason; bool guest = true; };
struct GuestPanicked {
    std::string type;                                   // "hyper-v" carries a Windows STOP code
    std::uint64_t code = 0;                             // arg1: the STOP code
    std::uint64_t params[4] = {};                       // arg2..arg5
};
struct QemuExited { std::string how; };                 // "exit status 1", "killed by signal 9"
struct QmpLost {};                                      // the QMP connection dropped, QEMU alive
struct StopRequested {};                                // SIGTERM/SIGINT (a second one skips the wait)
struct TimerFired { Timer timer; };
struct Control { std::string action; };                 // vm start|stop|powerdown|reset
struct SessionStarted {};                               // the agent's loop started

using Event = std::variant<QmpReady, GuestResumed, GuestReset, GuestShutdown, GuestPanicked, QemuExited, QmpLost,
                           StopRequested, TimerFired, Control, SessionStarted>;

// What the executor must do, in order.
struct Log { int level; std::string message; };         // level: 0 info, 1 warning, 2 error
struct SpawnQemu {};
struct Qmp { std::string command; std::string args_json = "{}"; };
struct Screendump {};                                   // into runtime_dir, numbered by panic
struct StartTimer { Timer timer; Millis after; };
struct CancelTimer { Timer timer; };
struct KillQemu {};                                     // SIGKILL through the pidfd
struct CheckDiskIdentities { std::string when; };
struct ClaimNetwork {};
struct ReleaseNetwork {};
struct Notify { bool ready = false; std::string status; };
struct ExitAgent { int code; };
struct Reply { bool ok; std::string message; };         // answer to a Control event

using Action = std::variant<Log, SpawnQemu, Qmp, Screendump, StartTimer, CancelTimer, KillQemu,
                            CheckDiskIdentities, ClaimNetwork, ReleaseNetwork, Notify, ExitAgent, Reply>;

struct Step {
    State state;
    std::vector<Action> actions;
};

// The whole policy. Pure: no clock, no I/O; `now_ms` comes with the event.
Step transition(const State &state, const Event &event, const Params &params, std::int64_t now_ms);

// Delay before the n-th restart in a row (n >= 1): first, doubling, capped.
Millis backoff_delay(unsigned n, const Params &params);

} // namespace rescuevm::supervisor
