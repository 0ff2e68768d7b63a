// SPDX-License-Identifier: GPL-2.0-or-later
// The supervisor's policy: a pure transition (state, event) -> (state, actions); the only place the VM's state changes.
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
    starting,        // disks checked, network claimed, QEMU spawned, QMP negotiated: guest not yet running
    running,         // the guest runs (it may be rebooting itself: that is still running)
    paused,          // QEMU holds the guest paused: a disk I/O error, or after crashes (see pause_reason)
    off,             // the guest powered itself off (or was stopped); no QEMU process
    crashed_waiting, // QEMU ended unexpectedly; a restart is scheduled
    failed,          // QEMU failed too often in a row; no more restarts until `vm start`
    refused,         // a start was refused (a disk changed or is in use, the network cannot be handed over)
    stopping,        // the guest was asked to power down (a stop of the agent, or `vm stop`)
};
const char *to_string(VmState);

// session_warn_half: the one warning of a session of 10 minutes or less, half way through it.
enum class Timer { restart_backoff, panic_backoff, powerdown_deadline, quit_deadline, session_warn_1h,
                   session_warn_10m, session_warn_half, session_end, boot_progress, acpi_fallback, image_retry,
                   image_settled };
const char *to_string(Timer);

struct Params {
    bool restart_on_poweroff = false;   // supervisor.on_guest_poweroff = "restart"
    bool network = true;                // the VM carries the server's network (macvtap)
    Millis shutdown_timeout{120'000};
    std::optional<Millis> max_session;
    Millis reset_burst{1500};           // SeaBIOS sends 2-3 RESETs per reboot
    Millis backoff_first{1000};
    Millis backoff_max{60'000};
    Millis good_run{600'000};           // a QEMU (or a boot) that ran this long resets the backoff
    unsigned max_quick_failures = 5;    // QEMU ends in a row before giving up
    unsigned max_quick_panics = 5;      // guest crashes in a row before leaving it paused
    unsigned panic_screenshots = 5;     // screenshots kept: panic-1.ppm .. panic-5.ppm, reused in turn
    Millis quit_grace{15'000};          // after `quit`, SIGKILL if QEMU is still there
    // supervisor.boot_progress_timeout: no console output and no guest-agent answer this
    // long after a boot is said once, with a screenshot (nullopt: never).
    std::optional<Millis> boot_progress_timeout = Millis{300'000};
    // A stop through the guest agent (guest-shutdown) gets the ACPI button too after this
    // (at most half of shutdown_timeout): Windows may have ignored or lost the request.
    Millis guest_shutdown_grace{60'000};
    // The rescue image is read from an image server (NBD): a read or write error on disk 0 that is
    // not "no space" is the server's outage; the paused VM is resumed (`cont`) every image_retry
    // until it runs image_settle without pausing again.
    bool image_over_network = false;
    Millis image_retry{5000};
    Millis image_settle{3000};
    std::uint64_t overlay_max = 0;      // bytes the overlay may grow to (for messages)
};

struct State {
    VmState vm = VmState::off;
    bool stop_requested = false;     // SIGTERM/SIGINT or the session limit: the agent is ending
    bool stop_signalled = false;     // a SIGTERM/SIGINT came (a second one cuts the guest's power-down short)
    bool off_requested = false;      // `vm stop`/`vm powerdown`: the VM goes off, the agent stays
    bool qemu_alive = false;         // a QEMU process exists (spawned or re-attached)
    bool guest_ran = false;          // the guest has run in this QEMU
    bool start_reply_pending = false; // a `vm start` waits for the guest to run (or the start to fail)
    bool qmp_answering = true;       // QMP answered the last health check
    unsigned boots = 0;              // guest boots seen (first boot and each reboot)
    unsigned reboots = 0;            // guest-initiated reboots (bursts counted once)
    unsigned panics = 0;
    unsigned panic_streak = 0;       // crashes in a row, each within good_run of the one before
    bool crashed = false;            // paused because the guest crashed: only a reset can go on
    unsigned qemu_starts = 0;
    unsigned quick_failures = 0;     // QEMU ends in a row, each after less than good_run
    std::int64_t last_reset_ms = -1'000'000'000;
    std::int64_t last_panic_ms = -1'000'000'000;
    std::int64_t qemu_started_ms = 0;
    std::string pause_reason;        // why the VM is paused or refused, in words
    std::string boot_problem;        // the firmware found nothing to boot (this boot), in words
    bool image_outage = false;       // paused (or resumed on trial) because the image server is unreachable
    std::int64_t image_outage_ms = 0; // when that outage paused the VM
    unsigned image_retries = 0;      // `cont` tries during it
    std::string last_event;          // in words, for `status`
    std::int64_t last_event_ms = 0;
    bool guest_agent_up = false;     // the guest agent answered its last probe
    bool guest_alive = true;         // since its last boot the guest wrote to its console or answered its agent
    bool boot_warned = false;        // the boot-progress warning was given for this boot
};

// What happened, as the executor saw it. `now` is a monotonic time in ms.
struct SessionStarted {};                               // the agent's loop started, no earlier VM found
struct Reattached { std::string status; unsigned boots = 0; }; // an earlier agent's QEMU: query-status
struct StartPrepared {};                                // disks checked and locked, uplink claimed, files ready
struct StartRefused { std::string why; };               // the checks before a start said no
struct SpawnFailed { std::string why; };                // QEMU could not be started at all
struct QmpReady {};                                     // negotiated; the guest is still stopped (-S)
struct GuestResumed {};                                 // `cont` done or QMP RESUME: the guest runs
struct GuestPaused {                                    // QMP STOP: run state ("io-error", ...)
    std::string status;
    std::string detail;
    bool boot_disk = false;                             // BLOCK_IO_ERROR on disk 0 (the image under its overlay)
    bool nospace = false;                               // ... because the overlay's file system is full
};
struct OverlayLimit { std::uint64_t bytes = 0; };       // BLOCK_WRITE_THRESHOLD: the overlay reached overlay_max
struct GuestReset { std::string reason; bool guest = true; };
struct GuestShutdown { std::string reason; bool guest = true; };
struct GuestPanicked {
    std::string type;                                   // "hyper-v" carries a Windows STOP code
    std::uint64_t code = 0;                             // arg1: the STOP code
    std::uint64_t params[4] = {};                       // arg2..arg5
};
struct BootFailed { std::string message; };            // the firmware says the image does not boot
struct QemuExited { std::string how; };                 // "exit status 1", "killed by signal 9"
struct QmpLost {};                                      // the QMP connection dropped, QEMU alive
struct QmpUnresponsive { std::string detail; };         // the health check got no answer in time
struct QmpRestored {};                                  // QMP answers again
struct StopRequested {};                                // SIGTERM/SIGINT (a second one skips the wait)
struct TimerFired { Timer timer; };
struct Control { std::string action; };                 // vm start|stop|powerdown|reset|resume
struct GuestActivity { std::string source; };           // the guest wrote to its serial console ("console")
struct GuestAgentUp {};                                 // the guest agent answered (sent after each good probe)
struct GuestAgentDown { std::string detail; };          // it stopped answering
struct GuestAgentShutdownDone { bool ok; std::string detail; }; // guest-shutdown taken, or why not

using Event = std::variant<SessionStarted, Reattached, StartPrepared, StartRefused, SpawnFailed, QmpReady,
                           GuestResumed, GuestPaused, GuestReset, GuestShutdown, GuestPanicked, BootFailed, QemuExited,
                           QmpLost, QmpUnresponsive, QmpRestored, StopRequested, TimerFired, Control, OverlayLimit,
                           GuestActivity, GuestAgentUp, GuestAgentDown, GuestAgentShutdownDone>;

// What the executor must do, in order.
struct Log { int level; std::string message; };         // level: 0 info, 1 warning, 2 error
struct PrepareStart {};                                 // check and lock disks, claim the uplink, make files
struct SpawnQemu {};
// A QMP command. With `reply`, the pending control request is answered once QEMU has:
// `reply_message` when it succeeded, QEMU's error (or its silence) when not.
struct Qmp { std::string command; bool reply = false; std::string reply_message = ""; };
struct Screendump { unsigned slot; };                   // panic-<slot>.ppm in runtime_dir
struct BootScreenshot {};                               // boot-progress.ppm in runtime_dir
// guest-shutdown (mode powerdown) through the guest agent; its outcome comes back as
// GuestAgentShutdownDone. With `reply`, the pending control request gets `reply_message`
// once the guest agent took it (a refusal goes on to the ACPI button, which answers).
struct GuestAgentShutdown { bool reply = false; std::string reply_message = ""; };
struct StartTimer { Timer timer; Millis after; };
struct CancelTimer { Timer timer; };
struct KillQemu {};                                     // SIGKILL through the pidfd
struct CheckSignatures { std::string when; };           // read each passed disk's signature, off the loop
struct ReleaseNetwork {};                               // give the uplink back (QEMU has ended)
struct Notify { std::string status; };                  // systemd STATUS=
struct ExitAgent { int code; };
struct Reply { bool ok; std::string message; };         // answer to the pending control request

using Action = std::variant<Log, PrepareStart, SpawnQemu, Qmp, Screendump, StartTimer, CancelTimer, KillQemu,
                            CheckSignatures, ReleaseNetwork, Notify, ExitAgent, Reply, BootScreenshot,
                            GuestAgentShutdown>;

struct Step {
    State state;
    std::vector<Action> actions;
};

// The whole policy. Pure: no clock, no I/O; `now_ms` comes with the event.
Step transition(const State &state, const Event &event, const Params &params, std::int64_t now_ms);

// Delay before the n-th restart in a row (n >= 1): first, doubling, capped.
Millis backoff_delay(unsigned n, const Params &params);

} // namespace rescuevm::supervisor
