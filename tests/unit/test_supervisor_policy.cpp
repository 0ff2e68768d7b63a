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
                else if constexpr (std::is_same_v<T, SpawnQemu>) return "spawn";
                else if constexpr (std::is_same_v<T, Qmp>) return "qmp:" + x.command;
                else if constexpr (std::is_same_v<T, Screendump>) return "screendump";
                else if constexpr (std::is_same_v<T, StartTimer>)
                    return std::string("timer:") + to_string(x.timer) + "=" + std::to_string(x.after.count());
                else if constexpr (std::is_same_v<T, CancelTimer>) return std::string("cancel:") + to_string(x.timer);
                else if constexpr (std::is_same_v<T, KillQemu>) return "kill";
                else if constexpr (std::is_same_v<T, CheckDiskIdentities>) return "check-ids";
                else if constexpr (std::is_same_v<T, ClaimNetwork>) return "claim-net";
                else if constexpr (std::is_same_v<T, ReleaseNetwork>) return "release-net";
                else if constexpr (std::is_same_v<T, Notify>) return x.ready ? "ready" : "";
                else if constexpr (std::is_same_v<T, ExitAgent>) return "exit:" + std::to_string(x.code);
                else if constexpr (std::is_same_v<T, Reply>) return x.ok ? "reply:ok" : "reply:refused";
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
        {"session start spawns", VmState::starting, SessionStarted{}, VmState::starting, "claim-net spawn"},
        {"QMP ready: cont", VmState::starting, QmpReady{}, VmState::starting, "qmp:cont"},
        {"guest runs", VmState::starting, GuestResumed{}, VmState::running, "ready"},
        {"guest reboot keeps QEMU", VmState::running, GuestReset{"guest-reset", true}, VmState::running, "check-ids"},
        {"our own reset is not a reboot", VmState::running, GuestReset{"host-qmp-system-reset", false},
         VmState::running, ""},
        {"guest poweroff stays off", VmState::running, GuestShutdown{"guest-shutdown", true}, VmState::off,
         "check-ids qmp:quit timer:quit-deadline=15000"},
        {"guest panic restarts in place", VmState::running, GuestPanicked{"hyper-v", 0x7B, {1, 2, 3, 4}},
         VmState::running, "screendump qmp:system_reset qmp:cont"},
        {"QEMU dies: backoff", VmState::running, QemuExited{"killed by signal 9"}, VmState::crashed_waiting,
         "cancel:quit-deadline cancel:powerdown-deadline check-ids timer:restart-backoff=1000"},
        {"backoff over: respawn", VmState::crashed_waiting, TimerFired{Timer::restart_backoff}, VmState::starting,
         "spawn"},
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
        {"vm start from off", VmState::off, Control{"start"}, VmState::starting, "claim-net spawn reply:ok"},
        {"vm start when running refused", VmState::running, Control{"start"}, VmState::running, "reply:refused"},
        {"vm reset", VmState::running, Control{"reset"}, VmState::running, "qmp:system_reset reply:ok"},
        {"vm powerdown", VmState::running, Control{"powerdown"}, VmState::stopping,
         "qmp:system_powerdown timer:powerdown-deadline=86400000 reply:ok"},
        {"vm stop", VmState::running, Control{"stop"}, VmState::stopping,
         "qmp:system_powerdown timer:powerdown-deadline=120000 reply:ok"},
        {"unknown vm action refused", VmState::running, Control{"reboot-host"}, VmState::running, "reply:refused"},
        {"QEMU ends after stay-off quit", VmState::off, QemuExited{"exit status 0"}, VmState::off,
         "cancel:quit-deadline cancel:powerdown-deadline check-ids release-net"},
        {"session end = clean stop", VmState::running, TimerFired{Timer::session_end}, VmState::stopping,
         "qmp:system_powerdown timer:powerdown-deadline=120000"},
        {"session warnings only log", VmState::running, TimerFired{Timer::session_warn_1h}, VmState::running, ""},
        {"QMP lost: just log", VmState::running, QmpLost{}, VmState::running, ""},
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
    CHECK(words(step.actions) == "check-ids qmp:system_reset qmp:cont");
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
    CHECK(words(second.actions) == "cancel:powerdown-deadline qmp:quit timer:quit-deadline=15000");
    Step exited = transition(second.state, QemuExited{"exit status 0"}, params(), 3'000);
    CHECK(words(exited.actions) ==
          "cancel:quit-deadline cancel:powerdown-deadline check-ids release-net exit:0");
}

TEST_CASE("clean stop: the guest powers off, then QEMU quits, then the agent exits 0")
{
    State s = transition(in(VmState::running), StopRequested{}, params(), 1'000).state;
    Step off = transition(s, GuestShutdown{"guest-shutdown", true}, params(), 2'000);
    CHECK(words(off.actions) == "cancel:powerdown-deadline qmp:quit timer:quit-deadline=15000");
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
                                 "timer:session-end=86400000 claim-net spawn");
}

TEST_CASE("no state and no event leads to a host power action")
{
    // Every action the policy can emit is about the VM; none is about the host.
    const VmState states[] = {VmState::starting, VmState::running, VmState::off, VmState::crashed_waiting,
                              VmState::failed, VmState::stopping};
    const Event events[] = {SessionStarted{}, QmpReady{}, GuestResumed{}, GuestReset{"guest-reset", true},
                            GuestShutdown{"guest-shutdown", true}, GuestPanicked{}, QemuExited{"x"}, QmpLost{},
                            StopRequested{}, TimerFired{Timer::quit_deadline}, Control{"stop"}};
    for (auto st : states)
        for (const auto &ev : events) {
            Step step = transition(in(st), ev, params(), 1'000);
            for (const auto &a : step.actions)
                if (auto *q = std::get_if<Qmp>(&a))
                    CHECK((q->command == "cont" || q->command == "quit" || q->command == "system_reset" ||
                           q->command == "system_powerdown"));
        }
}
