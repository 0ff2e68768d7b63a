// SPDX-License-Identifier: GPL-2.0-or-later
// Table tests of the supervisor policy: every (state, event) row that does something.
#include "rescuevm/core/supervisor_policy.h"

#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <sstream>

using namespace rescuevm::supervisor;

namespace {

Params params()
{
    Params p;
    p.shutdown_timeout = Millis{120'000};
    return p;
}

State in(VmState vm)
{
    State s;
    s.vm = vm;
    s.qemu_started_ms = 0;
    // A QEMU runs in every state but these.
    s.qemu_alive = vm != VmState::off && vm != VmState::crashed_waiting && vm != VmState::failed &&
                   vm != VmState::refused;
    return s;
}

// Actions rendered as short words so a row reads like the table.
std::string words(const std::vector<Action> &actions)
{
    std::string out;
    for (const auto &a : actions) {
        std::string w = std::visit(
            [](const auto &x) -> std::string {
                using T = std::decay_t<decltype(x)>;
                if constexpr (std::is_same_v<T, Log>) return "";
                else if constexpr (std::is_same_v<T, PrepareStart>) return "prepare";
                else if constexpr (std::is_same_v<T, SpawnQemu>) return "spawn";
                else if constexpr (std::is_same_v<T, Qmp>) return "qmp:" + x.command + (x.reply ? "+reply" : "");
                else if constexpr (std::is_same_v<T, Screendump>) return "screendump:" + std::to_string(x.slot);
                else if constexpr (std::is_same_v<T, StartTimer>)
                    return std::string("timer:") + to_string(x.timer) + "=" + std::to_string(x.after.count());
                else if constexpr (std::is_same_v<T, CancelTimer>) return std::string("cancel:") + to_string(x.timer);
                else if constexpr (std::is_same_v<T, KillQemu>) return "kill";
                else if constexpr (std::is_same_v<T, CheckSignatures>) return "check-ids";
                else if constexpr (std::is_same_v<T, ReleaseNetwork>) return "release-net";
                else if constexpr (std::is_same_v<T, Notify>) return "";
                else if constexpr (std::is_same_v<T, ExitAgent>) return "exit:" + std::to_string(x.code);
                else if constexpr (std::is_same_v<T, Reply>) return x.ok ? "reply:ok" : "reply:refused";
                else if constexpr (std::is_same_v<T, BootScreenshot>) return "screenshot:boot-progress";
                else if constexpr (std::is_same_v<T, GuestAgentShutdown>)
                    return std::string("qga:guest-shutdown") + (x.reply ? "+reply" : "");
            },
            a);
        if (w.empty())
            continue;
        if (!out.empty())
            out += ' ';
        out += w;
    }
    return out;
}

std::string logs(const std::vector<Action> &actions)
{
    std::string out;
    for (const auto &a : actions)
        if (auto *l = std::get_if<Log>(&a))
            out += l->message + "\n";
    return out;
}

struct Row {
    const char *name;
    VmState from;
    Event event;
    VmState to;
    const char *actions;
};

} // namespace

TEST_CASE("policy table")
{
    const Row rows[] = {
        {"session start prepares (disks, uplink, files)", VmState::off, SessionStarted{}, VmState::starting, "prepare"},
        {"QMP ready: cont", VmState::starting, QmpReady{}, VmState::starting, "qmp:cont"},
        {"guest runs (READY=1 is the agent's, not the guest's); its boot-progress clock starts", VmState::starting,
         GuestResumed{}, VmState::running, "timer:boot-progress=300000"},
        {"guest reboot keeps QEMU; the boot-progress clock starts again", VmState::running,
         GuestReset{"guest-reset", true}, VmState::running, "check-ids timer:boot-progress=300000"},
        {"our own reset is not a reboot", VmState::running, GuestReset{"host-qmp-system-reset", false},
         VmState::running, ""},
        {"guest poweroff stays off", VmState::running, GuestShutdown{"guest-shutdown", true}, VmState::off,
         "check-ids qmp:quit timer:quit-deadline=15000"},
        {"guest panic: screenshot, restart in place after a backoff", VmState::running,
         GuestPanicked{"hyper-v", 0x7B, {1, 2, 3, 4}}, VmState::paused, "screendump:1 timer:panic-backoff=1000"},
        {"panic backoff over: reset in place", VmState::paused, TimerFired{Timer::panic_backoff}, VmState::paused,
         "qmp:system_reset qmp:cont timer:boot-progress=300000"},
        {"QEMU dies: backoff", VmState::running, QemuExited{"killed by signal 9"}, VmState::crashed_waiting,
         "cancel:quit-deadline cancel:powerdown-deadline cancel:panic-backoff cancel:acpi-fallback "
         "cancel:boot-progress check-ids timer:restart-backoff=1000"},
        {"backoff over: prepare again (disks re-checked)", VmState::crashed_waiting, TimerFired{Timer::restart_backoff},
         VmState::starting, "prepare"},
        {"SIGTERM: ACPI and wait", VmState::running, StopRequested{}, VmState::stopping,
         "qmp:system_powerdown timer:powerdown-deadline=120000"},
        {"SIGTERM before the guest ran", VmState::starting, StopRequested{}, VmState::stopping,
         "qmp:quit timer:quit-deadline=15000"},
        {"SIGTERM when off: exit", VmState::off, StopRequested{}, VmState::off, "release-net exit:0"},
        {"SIGTERM during backoff: exit", VmState::crashed_waiting, StopRequested{}, VmState::crashed_waiting,
         "cancel:restart-backoff release-net exit:0"},
        {"SIGTERM after giving up: exit", VmState::failed, StopRequested{}, VmState::failed, "release-net exit:0"},
        {"powerdown deadline: quit", VmState::stopping, TimerFired{Timer::powerdown_deadline}, VmState::stopping,
         "qmp:quit timer:quit-deadline=15000"},
        {"quit deadline: SIGKILL", VmState::stopping, TimerFired{Timer::quit_deadline}, VmState::stopping, "kill"},
        {"vm start from off: reply once the guest runs", VmState::off, Control{"start"}, VmState::starting, "prepare"},
        {"vm start when running refused", VmState::running, Control{"start"}, VmState::running, "reply:refused"},
        {"vm reset: reply after QEMU", VmState::running, Control{"reset"}, VmState::running,
         "qmp:system_reset+reply timer:boot-progress=300000"},
        {"vm powerdown", VmState::running, Control{"powerdown"}, VmState::stopping,
         "qmp:system_powerdown+reply timer:powerdown-deadline=86400000"},
        {"vm stop", VmState::running, Control{"stop"}, VmState::stopping,
         "qmp:system_powerdown+reply timer:powerdown-deadline=120000"},
        {"unknown vm action refused", VmState::running, Control{"reboot-host"}, VmState::running, "reply:refused"},
        {"QEMU ends after stay-off quit", VmState::off, QemuExited{"exit status 0"}, VmState::off,
         "cancel:quit-deadline cancel:powerdown-deadline cancel:panic-backoff cancel:acpi-fallback "
         "cancel:boot-progress check-ids release-net"},
        {"session end = clean stop", VmState::running, TimerFired{Timer::session_end}, VmState::stopping,
         "qmp:system_powerdown timer:powerdown-deadline=120000"},
        {"session warnings only log", VmState::running, TimerFired{Timer::session_warn_1h}, VmState::running, ""},
        {"QMP lost: just log", VmState::running, QmpLost{}, VmState::running, ""},
        // Without an answer from the guest agent (the state of every row above), a stop is the ACPI button.
        {"guest agent answers: no action", VmState::running, GuestAgentUp{}, VmState::running, ""},
        {"guest agent lost: no action", VmState::running, GuestAgentDown{"no answer"}, VmState::running, ""},
        {"console output of a running guest (already alive)", VmState::running, GuestActivity{"console"},
         VmState::running, ""},
        {"boot progress over, the guest showed life: nothing", VmState::running, TimerFired{Timer::boot_progress},
         VmState::running, ""},
        {"ACPI fallback after the VM stopped: nothing", VmState::off, TimerFired{Timer::acpi_fallback}, VmState::off,
         ""},
        {"ACPI fallback while stopping: the button", VmState::stopping, TimerFired{Timer::acpi_fallback},
         VmState::stopping, "qmp:system_powerdown"},
        {"guest-shutdown taken: the ACPI button follows after the grace", VmState::stopping,
         GuestAgentShutdownDone{true, ""}, VmState::stopping, "timer:acpi-fallback=60000"},
        {"guest-shutdown refused: the ACPI button at once (it answers vm stop)", VmState::stopping,
         GuestAgentShutdownDone{false, "no answer"}, VmState::stopping, "qmp:system_powerdown+reply"},
        {"a late guest-shutdown answer after the stop: nothing", VmState::off, GuestAgentShutdownDone{true, ""},
         VmState::off, ""},
    };
    for (const Row &row : rows) {
        CAPTURE(row.name);
        Step step = transition(in(row.from), row.event, params(), 100'000);
        CHECK(step.state.vm == row.to);
        CHECK(words(step.actions) == row.actions);
    }
}

TEST_CASE("a SeaBIOS reset burst counts as one reboot")
{
    State s = in(VmState::running);
    Params p = params();
    s = transition(s, GuestReset{"guest-reset", true}, p, 10'000).state;
    s = transition(s, GuestReset{"guest-reset", true}, p, 10'300).state;
    s = transition(s, GuestReset{"guest-reset", true}, p, 11'000).state;
    CHECK(s.reboots == 1);
    s = transition(s, GuestReset{"guest-reset", true}, p, 20'000).state;
    CHECK(s.reboots == 2);
    CHECK(s.vm == VmState::running);
}

TEST_CASE("the firmware's resets after our own system_reset are not a guest reboot")
{
    State s = in(VmState::running);
    Params p = params();
    s = transition(s, GuestReset{"host-qmp-system-reset", false}, p, 10'000).state;
    s = transition(s, GuestReset{"guest-reset", true}, p, 10'040).state; // SeaBIOS, 40 ms later
    s = transition(s, GuestReset{"guest-reset", true}, p, 10'045).state;
    CHECK(s.reboots == 0);
    s = transition(s, GuestReset{"guest-reset", true}, p, 20'000).state; // a real reboot later
    CHECK(s.reboots == 1);
}

TEST_CASE("reboot and poweroff log lines say the host stays in rescue")
{
    Step reboot = transition(in(VmState::running), GuestReset{"guest-reset", true}, params(), 5'000);
    CHECK(logs(reboot.actions).find("guest restarted itself (Windows reboot 1); VM keeps running, host stays in "
                                    "rescue") != std::string::npos);
    Step off = transition(in(VmState::running), GuestShutdown{"guest-shutdown", true}, params(), 5'000);
    CHECK(logs(off.actions).find("rescuevm vm start") != std::string::npos);
}

TEST_CASE("guest poweroff with on_guest_poweroff = restart resets in the same QEMU")
{
    Params p = params();
    p.restart_on_poweroff = true;
    Step step = transition(in(VmState::running), GuestShutdown{"guest-shutdown", true}, p, 5'000);
    CHECK(step.state.vm == VmState::running);
    CHECK(words(step.actions) == "check-ids qmp:system_reset qmp:cont timer:boot-progress=300000");
}

TEST_CASE("Windows STOP code is logged in hex with its parameters")
{
    Step step = transition(in(VmState::running), GuestPanicked{"hyper-v", 0x7B, {0xfffff, 0xc0000034, 0, 0}},
                           params(), 5'000);
    std::string l = logs(step.actions);
    CHECK(l.find("STOP code 0x0000007B") != std::string::npos);
    CHECK(l.find("0x00000000C0000034") != std::string::npos);
    CHECK(step.state.panics == 1);
}

TEST_CASE("backoff doubles to 60 s, resets after 10 minutes of good running, gives up after 5")
{
    Params p = params();
    CHECK(backoff_delay(1, p).count() == 1000);
    CHECK(backoff_delay(2, p).count() == 2000);
    CHECK(backoff_delay(4, p).count() == 8000);
    CHECK(backoff_delay(7, p).count() == 60000);
    CHECK(backoff_delay(30, p).count() == 60000);

    State s = in(VmState::running);
    std::int64_t now = 1'000;
    for (unsigned i = 1; i <= 4; ++i) {
        Step st = transition(s, QemuExited{"exit status 1"}, p, now);
        CHECK(st.state.vm == VmState::crashed_waiting);
        CHECK(st.state.quick_failures == i);
        s = transition(st.state, TimerFired{Timer::restart_backoff}, p, now + 100).state;
        CHECK(s.vm == VmState::starting);
        s = transition(s, StartPrepared{}, p, now + 200).state;
        CHECK(s.qemu_alive);
        now += 5'000;
    }
    Step fifth = transition(s, QemuExited{"exit status 1"}, p, now);
    CHECK(fifth.state.vm == VmState::failed);
    CHECK(words(fifth.actions).find("release-net") != std::string::npos);
    CHECK(logs(fifth.actions).find("not restarting it") != std::string::npos);

    // A QEMU that ran for more than 10 minutes starts the count again.
    State good = in(VmState::running);
    good.quick_failures = 4;
    good.qemu_started_ms = 0;
    Step later = transition(good, QemuExited{"exit status 1"}, p, 11 * 60'000);
    CHECK(later.state.vm == VmState::crashed_waiting);
    CHECK(later.state.quick_failures == 1);
}

TEST_CASE("a second SIGTERM skips the wait")
{
    State s = transition(in(VmState::running), StopRequested{}, params(), 1'000).state;
    CHECK(s.vm == VmState::stopping);
    Step second = transition(s, StopRequested{}, params(), 2'000);
    CHECK(words(second.actions) ==
          "cancel:powerdown-deadline cancel:acpi-fallback qmp:quit timer:quit-deadline=15000");
    Step exited = transition(second.state, QemuExited{"exit status 0"}, params(), 3'000);
    CHECK(words(exited.actions) == "cancel:quit-deadline cancel:powerdown-deadline cancel:panic-backoff "
                                   "cancel:acpi-fallback cancel:boot-progress check-ids release-net exit:0");
}

TEST_CASE("clean stop: the guest powers off, then QEMU quits, then the agent exits 0")
{
    State s = transition(in(VmState::running), StopRequested{}, params(), 1'000).state;
    Step off = transition(s, GuestShutdown{"guest-shutdown", true}, params(), 2'000);
    CHECK(words(off.actions) == "cancel:powerdown-deadline cancel:acpi-fallback qmp:quit timer:quit-deadline=15000");
    Step done = transition(off.state, QemuExited{"exit status 0"}, params(), 3'000);
    CHECK(words(done.actions).find("exit:0") != std::string::npos);
}

TEST_CASE("vm stop: the VM goes off and the agent stays")
{
    State s = transition(in(VmState::running), Control{"stop"}, params(), 1'000).state;
    s = transition(s, GuestShutdown{"guest-shutdown", true}, params(), 2'000).state;
    Step done = transition(s, QemuExited{"exit status 0"}, params(), 3'000);
    CHECK(done.state.vm == VmState::off);
    CHECK(words(done.actions).find("exit") == std::string::npos);
}

TEST_CASE("max_session schedules two warnings and the end")
{
    Params p = params();
    p.max_session = Millis{24LL * 3'600'000};
    Step step = transition(in(VmState::starting), SessionStarted{}, p, 0);
    CHECK(words(step.actions) == "timer:session-warn-1h=82800000 timer:session-warn-10m=85800000 "
                                 "timer:session-end=86400000 prepare");
}

TEST_CASE("a session of 10 minutes or less is warned once, half way")
{
    Params p = params();
    p.max_session = Millis{40'000};
    Step step = transition(in(VmState::starting), SessionStarted{}, p, 0);
    CHECK(words(step.actions) == "timer:session-warn-half=20000 timer:session-end=40000 prepare");
    Step warn = transition(in(VmState::running), TimerFired{Timer::session_warn_half}, p, 20'000);
    CHECK(warn.state.vm == VmState::running);
    CHECK(words(warn.actions).empty());
    CHECK(logs(warn.actions).find("powered down in 20 s") != std::string::npos);
    p.max_session = Millis{600'000};
    CHECK(words(transition(in(VmState::starting), SessionStarted{}, p, 0).actions) ==
          "timer:session-warn-half=300000 timer:session-end=600000 prepare");
}

TEST_CASE("no state and no event leads to a host power action")
{
    // Every action the policy can emit is about the VM; none is about the host.
    const VmState states[] = {VmState::starting, VmState::running, VmState::paused, VmState::off,
                              VmState::crashed_waiting, VmState::failed, VmState::refused, VmState::stopping};
    const Event events[] = {SessionStarted{}, Reattached{"running"}, Reattached{"io-error"}, StartPrepared{},
                            StartRefused{"x"}, SpawnFailed{"x"}, QmpReady{}, GuestResumed{}, GuestPaused{"io-error", ""},
                            GuestReset{"guest-reset", true}, GuestShutdown{"guest-shutdown", true}, GuestPanicked{},
                            QemuExited{"x"}, QmpLost{}, QmpUnresponsive{"x"}, QmpRestored{}, StopRequested{},
                            TimerFired{Timer::quit_deadline}, TimerFired{Timer::panic_backoff}, Control{"stop"},
                            Control{"reset"}, Control{"resume"}, Control{"start"}, GuestActivity{"console"},
                            GuestAgentUp{}, GuestAgentDown{"x"}, GuestAgentShutdownDone{true, ""},
                            GuestAgentShutdownDone{false, "x"}, TimerFired{Timer::boot_progress},
                            TimerFired{Timer::acpi_fallback}};
    for (auto st : states)
        for (const auto &ev : events) {
            Step step = transition(in(st), ev, params(), 1'000);
            for (const auto &a : step.actions)
                if (auto *q = std::get_if<Qmp>(&a))
                    CHECK((q->command == "cont" || q->command == "quit" || q->command == "system_reset" ||
                           q->command == "system_powerdown"));
        }
}

namespace {

Step run(State s, std::initializer_list<Event> events, std::int64_t now = 1'000)
{
    Step step{s, {}};
    for (const auto &e : events) {
        step = transition(step.state, e, params(), now);
        now += 10;
    }
    return step;
}

} // namespace

TEST_CASE("a start: prepare (disks, uplink, files), spawn, negotiate, cont, running")
{
    Step st = transition(State{}, SessionStarted{}, params(), 0);
    CHECK(words(st.actions) == "prepare");
    CHECK(st.state.vm == VmState::starting);
    CHECK_FALSE(st.state.qemu_alive);
    st = transition(st.state, StartPrepared{}, params(), 10);
    CHECK(words(st.actions) == "spawn");
    CHECK(st.state.qemu_alive);
    st = transition(st.state, QmpReady{}, params(), 20);
    CHECK(words(st.actions) == "qmp:cont");
    st = transition(st.state, GuestResumed{}, params(), 30);
    CHECK(st.state.vm == VmState::running);
    CHECK(st.state.boots == 1);
}

TEST_CASE("a refused start names the reason, gives the uplink back and answers a waiting vm start")
{
    Step st = run(in(VmState::off), {Control{"start"}});
    CHECK(words(st.actions) == "prepare");
    CHECK(st.state.start_reply_pending);
    Step refused = transition(st.state, StartRefused{"disk loop3 is now mounted at /mnt (in use by the host)"},
                              params(), 2'000);
    CHECK(refused.state.vm == VmState::refused);
    CHECK(words(refused.actions) == "release-net reply:refused");
    CHECK(logs(refused.actions).find("loop3 is now mounted") != std::string::npos);
    CHECK(logs(refused.actions).find("systemctl restart rescuevm") != std::string::npos);
    CHECK_FALSE(refused.state.start_reply_pending);
    // From refused, `vm start` tries again.
    CHECK(words(transition(refused.state, Control{"start"}, params(), 3'000).actions) == "prepare");
}

TEST_CASE("vm start answers once the guest runs")
{
    Step st = run(in(VmState::off), {Control{"start"}, StartPrepared{}, QmpReady{}});
    CHECK(words(st.actions) == "qmp:cont");
    st = transition(st.state, GuestResumed{}, params(), 5'000);
    CHECK(words(st.actions) == "timer:boot-progress=300000 reply:ok");
}

TEST_CASE("QEMU that cannot be spawned counts as a quick failure")
{
    Step st = run(in(VmState::off), {Control{"start"}, StartPrepared{}});
    Step failed = transition(st.state, SpawnFailed{"qemu-system-x86_64 not found in PATH"}, params(), 2'000);
    CHECK(failed.state.vm == VmState::crashed_waiting);
    CHECK(failed.state.quick_failures == 1);
    CHECK(words(failed.actions) == "check-ids timer:restart-backoff=1000");
}

TEST_CASE("a stop while the start is being prepared waits for the preparation, then exits without QEMU")
{
    Step st = run(State{}, {SessionStarted{}, StopRequested{}});
    CHECK(words(st.actions) == "");
    Step done = transition(st.state, StartPrepared{}, params(), 5'000);
    CHECK(words(done.actions) == "release-net exit:0");
}

TEST_CASE("the first SIGTERM during vm powerdown/stop still gives the guest its shutdown_timeout")
{
    for (const char *action : {"powerdown", "stop"}) {
        CAPTURE(action);
        State s = transition(in(VmState::running), Control{action}, params(), 1'000).state;
        Step first = transition(s, StopRequested{}, params(), 2'000);
        CHECK(first.state.vm == VmState::stopping);
        CHECK(words(first.actions) == "cancel:powerdown-deadline timer:powerdown-deadline=120000");
        Step second = transition(first.state, StopRequested{}, params(), 3'000);
        CHECK(words(second.actions) ==
              "cancel:powerdown-deadline cancel:acpi-fallback qmp:quit timer:quit-deadline=15000");
    }
}

TEST_CASE("the first SIGTERM during the session limit's power-down waits for the guest; a second cuts it short")
{
    Params p = params();
    p.max_session = Millis{60'000};
    Step end = transition(in(VmState::running), TimerFired{Timer::session_end}, p, 60'000);
    CHECK(end.state.vm == VmState::stopping);
    CHECK(words(end.actions) == "qmp:system_powerdown timer:powerdown-deadline=120000");
    Step first = transition(end.state, StopRequested{}, p, 61'000);
    CHECK(first.state.vm == VmState::stopping);
    CHECK(words(first.actions).empty());
    CHECK(logs(first.actions).find("already powering down") != std::string::npos);
    Step second = transition(first.state, StopRequested{}, p, 62'000);
    CHECK(words(second.actions) == "cancel:powerdown-deadline cancel:acpi-fallback qmp:quit timer:quit-deadline=15000");
}

TEST_CASE("a panic loop backs off, reuses 5 screenshot slots, and after 5 quick crashes stays paused")
{
    Params p = params();
    State s = in(VmState::running);
    std::int64_t now = 1'000;
    std::vector<std::string> seen;
    for (unsigned n = 1; n <= 4; ++n) {
        Step crash = transition(s, GuestPanicked{}, p, now);
        CHECK(crash.state.vm == VmState::paused);
        CHECK(words(crash.actions) == "screendump:" + std::to_string(n) + " timer:panic-backoff=" +
                                          std::to_string(backoff_delay(n, p).count()));
        // vm resume during the backoff keeps the restart coming.
        CHECK(words(transition(crash.state, Control{"resume"}, p, now + 50).actions) == "reply:refused");
        Step again = transition(crash.state, TimerFired{Timer::panic_backoff}, p, now + 100);
        CHECK(words(again.actions) == "qmp:system_reset qmp:cont timer:boot-progress=300000");
        s = transition(again.state, GuestResumed{}, p, now + 200).state;
        CHECK(s.vm == VmState::running);
        now += 30'000;
    }
    Step fifth = transition(s, GuestPanicked{}, p, now);
    CHECK(fifth.state.vm == VmState::paused);
    CHECK(words(fifth.actions) == "screendump:5");
    CHECK(logs(fifth.actions).find("5 crashes in a row") != std::string::npos);
    CHECK(logs(fifth.actions).find("rescuevm vm reset") != std::string::npos);
    // vm resume cannot continue a crashed guest (QEMU would refuse): refused, the VM stays as it is.
    Step resume = transition(fifth.state, Control{"resume"}, p, now + 500);
    CHECK(words(resume.actions) == "reply:refused");
    CHECK(resume.state.vm == VmState::paused);
    // vm reset boots it again; the next crash takes slot 1 again.
    Step reset = transition(fifth.state, Control{"reset"}, p, now + 1'000);
    CHECK(words(reset.actions) == "cancel:panic-backoff qmp:system_reset qmp:cont+reply timer:boot-progress=300000");
    s = transition(reset.state, GuestResumed{}, p, now + 1'100).state;
    CHECK(words(transition(s, GuestPanicked{}, p, now + 2'000).actions) == "screendump:1 timer:panic-backoff=1000");
    // Crashes far apart are not a loop.
    State calm = in(VmState::running);
    calm.panic_streak = 4;
    calm.last_panic_ms = 0;
    CHECK(transition(calm, GuestPanicked{}, p, 11 * 60'000).state.panic_streak == 1);
}

TEST_CASE("a disk I/O error pause is shown, resumed by vm resume, reset by vm reset")
{
    Step paused = transition(in(VmState::running), GuestPaused{"io-error", "I/O error writing disk1 (sdb)"},
                             params(), 1'000);
    CHECK(paused.state.vm == VmState::paused);
    CHECK(paused.state.pause_reason == "I/O error writing disk1 (sdb)");
    CHECK(logs(paused.actions).find("sdb") != std::string::npos);
    CHECK(words(transition(paused.state, Control{"resume"}, params(), 2'000).actions) ==
          "cancel:panic-backoff qmp:cont+reply");
    CHECK(words(transition(paused.state, Control{"reset"}, params(), 2'000).actions) ==
          "cancel:panic-backoff qmp:system_reset qmp:cont+reply timer:boot-progress=300000");
    CHECK(transition(paused.state, GuestResumed{}, params(), 3'000).state.vm == VmState::running);
    // Our own pauses are not this: -S, shutdown=pause, panic=pause.
    for (const char *status : {"prelaunch", "shutdown", "guest-panicked"})
        CHECK(transition(in(VmState::running), GuestPaused{status, ""}, params(), 1'000).state.vm ==
              VmState::running);
    // A paused guest cannot power down: a stop ends QEMU.
    CHECK(words(transition(paused.state, StopRequested{}, params(), 2'000).actions) ==
          "cancel:panic-backoff qmp:quit timer:quit-deadline=15000");
    CHECK(words(transition(paused.state, Control{"powerdown"}, params(), 2'000).actions) == "reply:refused");
}

TEST_CASE("re-attach takes the VM's state from QEMU's own status")
{
    CHECK(transition(State{}, Reattached{"running", 3}, params(), 0).state.vm == VmState::running);
    CHECK(transition(State{}, Reattached{"running", 3}, params(), 0).state.boots == 3);
    Step pre = transition(State{}, Reattached{"prelaunch"}, params(), 0);
    CHECK(pre.state.vm == VmState::starting);
    CHECK(words(pre.actions) == "qmp:cont");
    CHECK(transition(State{}, Reattached{"io-error"}, params(), 0).state.vm == VmState::paused);
    Step off = transition(State{}, Reattached{"shutdown"}, params(), 0);
    CHECK(off.state.vm == VmState::off);
    CHECK(words(off.actions) == "check-ids qmp:quit timer:quit-deadline=15000");
    Step unknown = transition(State{}, Reattached{""}, params(), 0);
    CHECK(unknown.state.vm == VmState::running);
    CHECK_FALSE(unknown.state.qmp_answering);
}

TEST_CASE("QMP that stops answering is logged once, and again when it answers")
{
    Step a = transition(in(VmState::running), QmpUnresponsive{"query-status: no answer within 5 s"}, params(), 1'000);
    CHECK(logs(a.actions).find("does not answer") != std::string::npos);
    CHECK(logs(transition(a.state, QmpUnresponsive{"x"}, params(), 2'000).actions).empty());
    CHECK(logs(transition(a.state, QmpRestored{}, params(), 3'000).actions).find("again") != std::string::npos);
}

namespace {

State with_agent(VmState vm)
{
    State s = in(vm);
    s.guest_agent_up = true;
    return s;
}

} // namespace

TEST_CASE("a stop asks the guest agent first when it answers, then the ACPI button, then quit")
{
    const Row rows[] = {
        {"SIGTERM: guest-shutdown through the guest agent, wait", VmState::running, StopRequested{},
         VmState::stopping, "qga:guest-shutdown timer:powerdown-deadline=120000"},
        {"vm stop: guest-shutdown, answered once the guest agent took it", VmState::running, Control{"stop"},
         VmState::stopping, "qga:guest-shutdown+reply timer:powerdown-deadline=120000"},
        {"vm powerdown stays the ACPI button alone", VmState::running, Control{"powerdown"}, VmState::stopping,
         "qmp:system_powerdown+reply timer:powerdown-deadline=86400000"},
        {"session end: guest-shutdown too", VmState::running, TimerFired{Timer::session_end}, VmState::stopping,
         "qga:guest-shutdown timer:powerdown-deadline=120000"},
        {"a paused guest: quit, no guest agent", VmState::paused, StopRequested{}, VmState::stopping,
         "cancel:panic-backoff qmp:quit timer:quit-deadline=15000"},
    };
    for (const Row &row : rows) {
        CAPTURE(row.name);
        Step step = transition(with_agent(row.from), row.event, params(), 100'000);
        CHECK(step.state.vm == row.to);
        CHECK(words(step.actions) == row.actions);
    }

    // The whole chain: guest-shutdown taken, the guest stays up, the button after the grace,
    // still up, quit at shutdown_timeout, QEMU ends, the agent exits.
    Step st = transition(with_agent(VmState::running), StopRequested{}, params(), 1'000);
    CHECK(logs(st.actions).find("guest agent guest-shutdown, then the ACPI power button") != std::string::npos);
    st = transition(st.state, GuestAgentShutdownDone{true, ""}, params(), 3'000);
    CHECK(words(st.actions) == "timer:acpi-fallback=60000");
    st = transition(st.state, TimerFired{Timer::acpi_fallback}, params(), 63'000);
    CHECK(words(st.actions) == "qmp:system_powerdown");
    st = transition(st.state, TimerFired{Timer::powerdown_deadline}, params(), 121'000);
    CHECK(words(st.actions) == "qmp:quit timer:quit-deadline=15000");
    st = transition(st.state, QemuExited{"exit status 0"}, params(), 122'000);
    CHECK(words(st.actions).ends_with("release-net exit:0"));
    CHECK_FALSE(st.state.guest_agent_up);
}

TEST_CASE("the ACPI button follows guest-shutdown after at most half the shutdown timeout")
{
    Params p = params();
    p.shutdown_timeout = Millis{30'000};
    State stopping = with_agent(VmState::stopping);
    CHECK(words(transition(stopping, GuestAgentShutdownDone{true, ""}, p, 1'000).actions) ==
          "timer:acpi-fallback=15000");
    // A refusal (or no answer) presses the button at once and says why.
    Step refused = transition(stopping, GuestAgentShutdownDone{false, "guest-sync-delimited: no answer within 3 s"},
                              p, 1'000);
    CHECK(logs(refused.actions).find("no answer within 3 s") != std::string::npos);
    auto *q = std::get_if<Qmp>(&refused.actions.back());
    REQUIRE(q);
    CHECK(q->reply_message.find("ACPI power button sent") != std::string::npos);
}

TEST_CASE("the guest agent's answers are tracked, and logged only when that changes")
{
    Step up = transition(in(VmState::running), GuestAgentUp{}, params(), 1'000);
    CHECK(up.state.guest_agent_up);
    CHECK(logs(up.actions).find("guest agent answers") != std::string::npos);
    CHECK(logs(transition(up.state, GuestAgentUp{}, params(), 2'000).actions).empty());
    Step down = transition(up.state, GuestAgentDown{"no answer within 3 s"}, params(), 3'000);
    CHECK_FALSE(down.state.guest_agent_up);
    CHECK(logs(down.actions).find("no answer within 3 s") != std::string::npos);
    CHECK(logs(transition(down.state, GuestAgentDown{"x"}, params(), 4'000).actions).empty());
    // Without it, a stop is the ACPI button as before.
    CHECK(words(transition(down.state, StopRequested{}, params(), 5'000).actions) ==
          "qmp:system_powerdown timer:powerdown-deadline=120000");
}

TEST_CASE("boot progress: no sign of life in time is said once, with a screenshot, and the VM keeps running")
{
    Step st = run(in(VmState::starting), {GuestResumed{}});
    CHECK(words(st.actions) == "timer:boot-progress=300000");
    CHECK_FALSE(st.state.guest_alive);
    Step silent = transition(st.state, TimerFired{Timer::boot_progress}, params(), 301'000);
    CHECK(silent.state.vm == VmState::running);
    CHECK(silent.state.boot_warned);
    CHECK(words(silent.actions) == "screenshot:boot-progress");
    CHECK(logs(silent.actions).find("neither written to its serial console nor answered the guest agent 5 min") !=
          std::string::npos);
    CHECK(logs(silent.actions).find("keeps running") != std::string::npos);
    // Life after the warning is said too; before it, nothing is said and the clock stops.
    Step late = transition(silent.state, GuestActivity{"it wrote to its serial console"}, params(), 400'000);
    CHECK(logs(late.actions).find("shows life after all") != std::string::npos);
    CHECK(late.state.guest_alive);
    Step early = transition(st.state, GuestActivity{"it wrote to its serial console"}, params(), 10'000);
    CHECK(words(early.actions) == "cancel:boot-progress");
    CHECK(logs(early.actions).empty());
    CHECK(words(transition(early.state, TimerFired{Timer::boot_progress}, params(), 301'000).actions).empty());
    // The guest agent's answer is a sign of life as well.
    Step agent = transition(st.state, GuestAgentUp{}, params(), 10'000);
    CHECK(words(agent.actions) == "cancel:boot-progress");
    // A reboot starts the clock again.
    Step reboot = transition(early.state, GuestReset{"guest-reset", true}, params(), 500'000);
    CHECK_FALSE(reboot.state.guest_alive);
    CHECK(words(reboot.actions) == "check-ids timer:boot-progress=300000");
    // Output before the guest runs (the -S pause) is no sign of this boot.
    CHECK(words(transition(in(VmState::starting), GuestActivity{"x"}, params(), 0).actions).empty());
}

TEST_CASE("boot progress off: no clock; a re-attached guest has no clock either")
{
    Params p = params();
    p.boot_progress_timeout.reset();
    State s = in(VmState::starting);
    CHECK(words(transition(s, GuestResumed{}, p, 1'000).actions).empty());
    Step re = transition(State{}, Reattached{"running", 2}, params(), 0);
    CHECK(re.state.guest_alive);
    CHECK(words(re.actions).find("boot-progress") == std::string::npos);
}

TEST_CASE("an image that does not boot is shown, kept up, and stopped without waiting for ACPI")
{
    Step failed = transition(in(VmState::running), BootFailed{"the rescue image at vm.image does not boot under UEFI"},
                             params(), 1'000);
    CHECK(failed.state.vm == VmState::running);
    CHECK(failed.state.boot_problem.find("does not boot") != std::string::npos);
    CHECK(logs(failed.actions).find("stays up") != std::string::npos);
    CHECK(logs(transition(failed.state, BootFailed{"again"}, params(), 2'000).actions).empty()); // said once
    Step stop = transition(failed.state, StopRequested{}, params(), 3'000);
    CHECK(stop.state.vm == VmState::stopping);
    CHECK(words(stop.actions) == "qmp:quit timer:quit-deadline=15000");
    Step vmstop = transition(failed.state, Control{"stop"}, params(), 3'000);
    CHECK(words(vmstop.actions) == "qmp:quit timer:quit-deadline=15000 reply:ok");
    // A guest agent that answered in an earlier boot is not asked either: nothing booted.
    State with_ga = failed.state;
    with_ga.guest_agent_up = true;
    CHECK(words(transition(with_ga, StopRequested{}, params(), 3'000).actions) == "qmp:quit timer:quit-deadline=15000");
    CHECK(words(transition(with_ga, Control{"stop"}, params(), 3'000).actions) ==
          "qmp:quit timer:quit-deadline=15000 reply:ok");
    // A new boot (a guest or our own reset) clears it.
    CHECK(transition(failed.state, GuestReset{"guest-reset", true}, params(), 9'000).state.boot_problem.empty());
    CHECK(transition(failed.state, Control{"reset"}, params(), 9'000).state.boot_problem.empty());
}

TEST_CASE("an image server outage pauses the VM once, retries cont, and says when it runs again")
{
    Params p = params();
    p.image_over_network = true;
    GuestPaused outage{"io-error", "I/O error read the rescue image", true, false};
    Step paused = transition(in(VmState::running), outage, p, 10'000);
    CHECK(paused.state.vm == VmState::paused);
    CHECK(paused.state.image_outage);
    CHECK(words(paused.actions) == "cancel:image-settled timer:image-retry=5000");
    CHECK(logs(paused.actions).find("resumes by itself") != std::string::npos);
    // The retry: cont, and the next retry.
    Step retry = transition(paused.state, TimerFired{Timer::image_retry}, p, 15'000);
    CHECK(words(retry.actions) == "qmp:cont timer:image-retry=5000");
    // cont ran the guest on trial; the server is still away: paused again, silently.
    Step trial = transition(retry.state, GuestResumed{}, p, 15'010);
    CHECK(trial.state.vm == VmState::running);
    CHECK(words(trial.actions) == "timer:image-settled=3000");
    CHECK(logs(trial.actions).empty());
    Step again = transition(trial.state, outage, p, 15'020);
    CHECK(again.state.vm == VmState::paused);
    CHECK(logs(again.actions).empty());
    CHECK(words(again.actions) == "cancel:image-settled timer:image-retry=5000");
    // The server is back: the trial run lasts, and that is said once.
    Step back = transition(transition(again.state, GuestResumed{}, p, 20'010).state,
                           TimerFired{Timer::image_settled}, p, 23'010);
    CHECK(back.state.vm == VmState::running);
    CHECK_FALSE(back.state.image_outage);
    CHECK(back.state.pause_reason.empty());
    CHECK(words(back.actions) == "cancel:image-retry");
    CHECK(logs(back.actions).find("answers again: the guest runs again after 10 s paused") != std::string::npos);
    // A retry timer left over does nothing once the guest runs.
    CHECK(words(transition(back.state, TimerFired{Timer::image_retry}, p, 25'000).actions).empty());
}

TEST_CASE("an I/O error on disk 0 is no image outage when the overlay is full or the image is local")
{
    Params nbd = params();
    nbd.image_over_network = true;
    Step full = transition(in(VmState::running), GuestPaused{"io-error", "I/O error write", true, true}, nbd, 1'000);
    CHECK(full.state.vm == VmState::paused);
    CHECK_FALSE(full.state.image_outage);
    CHECK(full.state.pause_reason.find("runtime directory is full") != std::string::npos);
    CHECK(words(full.actions).find("image-retry") == std::string::npos);
    Step local = transition(in(VmState::running), GuestPaused{"io-error", "I/O error read", true, false}, params(),
                            1'000);
    CHECK(local.state.vm == VmState::paused);
    CHECK_FALSE(local.state.image_outage);
    CHECK(words(local.actions).empty());
    // A passed disk's error on an NBD setup is not the image server either.
    Step disk1 = transition(in(VmState::running), GuestPaused{"io-error", "I/O error disk 1", false, false}, nbd, 1'000);
    CHECK_FALSE(disk1.state.image_outage);
}

TEST_CASE("the overlay bound pauses the running VM with a line; vm resume goes on without it")
{
    Params p = params();
    p.overlay_max = 64ULL << 20;
    Step limit = transition(in(VmState::running), OverlayLimit{(64ULL << 20) + 4096}, p, 1'000);
    CHECK(limit.state.vm == VmState::paused);
    CHECK(words(limit.actions) == "qmp:stop");
    CHECK(logs(limit.actions).find("wrote 64 MiB to its disk 0, the most vm.overlay_max allows") != std::string::npos);
    CHECK(words(transition(limit.state, Control{"resume"}, p, 2'000).actions) == "cancel:panic-backoff qmp:cont+reply");
    // Not running (already paused, stopping): nothing.
    CHECK(words(transition(in(VmState::stopping), OverlayLimit{1}, p, 1'000).actions).empty());
}
