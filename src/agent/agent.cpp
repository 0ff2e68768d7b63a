// SPDX-License-Identifier: GPL-2.0-or-later
// The agent's executor: events become policy events, the policy's actions are carried out here, nothing else decides (QEMU's side in agent_qemu.cpp, the console's in agent_console.cpp, control in agent_control.cpp).
#include "rescuevm/agent/agent.h"

#include "agent_deadlines.h"

#include "rescuevm/agent/console_guard.h"
#include "rescuevm/configdrive/config_drive_iso.h"
#include "rescuevm/core/qemu_argv.h"
#include "rescuevm/signatures/disk_signatures.h"
#include "rescuevm/sys/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <csignal>
#include <cstring>

namespace rescuevm {
namespace {

namespace sv = supervisor;
using namespace std::chrono_literals;
using namespace agent_deadlines;

const char *signal_name(int signo)
{
    const char *name = ::sigabbrev_np(signo);
    return name ? name : "?";
}

// This agent's own binary, to run as `rescuevm screen` (/proc/self/exe when the file was
// replaced meanwhile: it still runs this very program).
std::string own_program()
{
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    std::string path = n > 0 ? std::string(buf, std::size_t(n)) : "";
    if (path.empty() || path.ends_with(" (deleted)"))
        return "/proc/self/exe";
    return path;
}

} // namespace

Agent::Agent(const Plan &plan, EventLoop &loop, std::optional<Takeover> takeover)
    : plan_(plan), loop_(loop), takeover_(std::move(takeover)),
      control_(loop, [this](std::uint64_t c, const ControlRequest &r) { on_control(c, r); }), notifier_(loop),
      worker_(loop),
      boot_watch_(loop, plan.paths, plan.firmware.kind, plan.boot.image,
                  [this](const std::string &message) { feed(sv::BootFailed{message}); }),
      started_(std::chrono::steady_clock::now()),
      console_(loop,
               {plan.paths.guest_serial_socket(), plan.paths.guest_console(), plan.paths.guest_console_previous(),
                plan.guest.console_log_size, plan.paths.console_clients_socket()},
               [this](std::size_t) { guest_output(); }),
      guest_agent_(loop, plan.paths.guest_agent_socket(),
                   {[this] { feed(sv::GuestAgentUp{}); },
                    [this](const std::string &why) { feed(sv::GuestAgentDown{why}); },
                    [this](bool first) { guest_facts(first); }})
{
    session_uuid_ = fresh_instance_uuid().value_or("00000000-0000-4000-8000-000000000000");
    for (const DiskInfo *d : plan_.passed())
        seen_disk_ids_[d->name] = d->disk_id;
    if (plan_.screen.physical) {
        viewer_ = std::make_unique<ScreenViewer>(loop_, plan_.screen, own_program());
        inputs_ = std::make_unique<InputDevices>(
            loop_, [this](const std::string &command, const nlohmann::json &args, QmpClient::CommandCallback done) {
                if (!qemu_)
                    return done(fail("QEMU is not running"));
                qemu_->command(command, args, kQmpCommandDeadline, std::move(done));
            });
    }
}

Agent::~Agent() = default;
std::int64_t Agent::now_ms() const
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

int Agent::run()
{
    auto log = log::get("supervisor");
    if (auto r = control_.listen(plan_.paths.control_socket()); !r)
        log->warn("{}; `rescuevm status` and `rescuevm vm` will not work until it can be made, ignoring",
                  r.error().message);
    if (auto r = console_.listen(); !r)
        log->warn("{}; `rescuevm vm console` will not work until it can be made, ignoring", r.error().message);
    if (auto r = worker_.start(); !r) {
        log->error("{}", r.error().message);
        return 1;
    }
    watch_signals();
    protect_console();
    if (inputs_)
        if (auto r = inputs_->start(); !r)
            log::get("input")->error("{}; the host's keyboards and mice stay the host's", r.error().message);
    notifier_.start_watchdog();
    housekeeping_timer_ = loop_.add_timer(kHousekeeping, [this] { housekeeping(); });
    notifier_.ready(takeover_ ? "agent up; re-attaching to the running VM" : "agent up; starting the VM");
    if (takeover_) {
        reattach();
    } else {
        log->info("starting a new session: a fresh overlay and UEFI variables");
        reset_session_files(plan_.paths);
        feed(sv::SessionStarted{});
    }
    if (exit_code_)
        return *exit_code_;
    return loop_.run();
}

void Agent::watch_signals()
{
    auto stop = loop_.watch_signals({SIGTERM, SIGINT}, [this](int) { feed(sv::StopRequested{}); });
    if (!stop)
        log::get("supervisor")->error("{}", stop.error().message);
    ::signal(SIGPIPE, SIG_IGN);
    // Every other signal that would end us by default is logged and ignored: a stray
    // SIGUSR1 (or a serial console hang-up) must not end the session.
    auto others = loop_.watch_signals({SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGXCPU,
                                       SIGXFSZ, SIGQUIT, SIGTRAP, SIGSTKFLT},
                                      [](int signo) {
        log::get("supervisor")->warn("received SIG{}: ignored (only SIGTERM or SIGINT stop the agent)",
                                     signal_name(signo));
    });
    if (!others)
        log::get("supervisor")->warn("{}, ignoring", others.error().message);
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; ++sig)
        ::signal(sig, SIG_IGN); // spawn() gives children default dispositions back
}

void Agent::feed(const sv::Event &event)
{
    sv::Step step = sv::transition(state_, event, plan_.supervision, now_ms());
    bool boots_changed = step.state.boots != state_.boots;
    state_ = std::move(step.state);
    if (boots_changed && qemu_)
        if (auto r = save_qemu_record(plan_.paths, {qemu_->pid(), qemu_->start_time(), session_uuid_, state_.boots,
                                                    qemu_argv_});
            !r)
            log::get("supervisor")->warn("{}, ignoring", r.error().message);
    for (const auto &action : step.actions) {
        execute(action);
        if (exit_code_)
            break;
    }
}

void Agent::execute(const sv::Action &action)
{
    auto log = log::get("supervisor");
    std::visit(
        [&](const auto &a) {
            using A = std::decay_t<decltype(a)>;
            if constexpr (std::is_same_v<A, sv::Log>) {
                if (a.level == 0)
                    log->info("{}", a.message);
                else if (a.level == 1)
                    log->warn("{}", a.message);
                else
                    log->error("{}", a.message);
            } else if constexpr (std::is_same_v<A, sv::PrepareStart>) {
                prepare_start();
            } else if constexpr (std::is_same_v<A, sv::SpawnQemu>) {
                spawn_qemu();
            } else if constexpr (std::is_same_v<A, sv::Qmp>) {
                qmp(a);
            } else if constexpr (std::is_same_v<A, sv::Screendump>) {
                panic_screenshot(a.slot);
            } else if constexpr (std::is_same_v<A, sv::BootScreenshot>) {
                boot_screenshot();
            } else if constexpr (std::is_same_v<A, sv::GuestAgentShutdown>) {
                guest_agent_shutdown(a);
            } else if constexpr (std::is_same_v<A, sv::StartTimer>) {
                if (auto it = timers_.find(a.timer); it != timers_.end())
                    loop_.cancel_timer(it->second);
                sv::Timer t = a.timer;
                timers_[t] = loop_.add_timer(a.after, [this, t] {
                    timers_.erase(t);
                    feed(sv::TimerFired{t});
                });
            } else if constexpr (std::is_same_v<A, sv::CancelTimer>) {
                if (auto it = timers_.find(a.timer); it != timers_.end()) {
                    loop_.cancel_timer(it->second);
                    timers_.erase(it);
                }
            } else if constexpr (std::is_same_v<A, sv::KillQemu>) {
                if (qemu_)
                    qemu_->kill();
            } else if constexpr (std::is_same_v<A, sv::CheckSignatures>) {
                check_signatures(a.when);
            } else if constexpr (std::is_same_v<A, sv::ReleaseNetwork>) {
                release_network();
            } else if constexpr (std::is_same_v<A, sv::Notify>) {
                notifier_.status(a.status);
            } else if constexpr (std::is_same_v<A, sv::ExitAgent>) {
                finish(a.code);
            } else if constexpr (std::is_same_v<A, sv::Reply>) {
                auto reply = a.ok ? control_ok(a.message) : control_error(a.message);
                if (replying_to_) {
                    control_.respond(*replying_to_, reply);
                } else if (start_reply_to_) {
                    control_.respond(*start_reply_to_, reply);
                    start_reply_to_.reset();
                }
            }
        },
        action);
}

void Agent::release_network()
{
    if (!net_)
        return;
    std::string uplink = net_->uplink();
    if (auto r = net_->release(); !r)
        log::get("supervisor")->error("could not give the uplink {} back to the host completely: {}", uplink,
                                      r.error().message);
    else
        log::get("supervisor")->info("uplink {} is the host's again: addresses and routes restored", uplink);
    net_.reset();
}

// GCC 12 sees the Result moved through the worker as "maybe uninitialized" here once inlined
// (a known false positive of std::expected); the code is the same as protect_console's.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
void Agent::finish(int code)
{
    if (finishing_)
        return;
    finishing_ = true;
    if (viewer_)
        viewer_->stop();
    // QEMU is going: its devices are let go, not handed to it again.
    if (inputs_)
        inputs_->qemu_gone();
    // The console's protection goes back first: the host is the host's again once we are gone.
    ConsoleGuardPaths paths{plan_.paths.console_guard()};
    worker_.run<std::vector<std::string>>(
        "giving the console's settings back", kConsoleDeadline, [paths] { return rescuevm::release_console(paths); },
        [this, code](Result<std::vector<std::string>> said) {
            if (!said) {
                log::get("console")->error("{}; the console's settings stay as the session set them", said.error().message);
            } else {
                for (const auto &line : *said)
                    log::get("console")->info("{}", line);
            }
            finish_checked(code);
        });
}
#pragma GCC diagnostic pop

void Agent::finish_checked(int code)
{
    // The agent's stop is a check of its own: with the VM already off the policy checks nothing
    // on SIGTERM, and a disk changed meanwhile (e.g. by hand) would go unreported. Off the loop,
    // bounded: a disk that does not answer must not hold the stop.
    if (signatures_.empty())
        return finish_now(code);
    std::vector<DiskSignature> recorded = signatures_;
    worker_.run<std::vector<SignatureChange>>(
        "reading the passed disks' signatures at the stop", kSignaturesDeadline,
        [recorded]() -> Result<std::vector<SignatureChange>> { return rescuevm::check_signatures(recorded); },
        [this, code](Result<std::vector<SignatureChange>> changes) {
            if (!changes) {
                log::get("signatures")->warn("{}; not checked at the stop", changes.error().message);
                return finish_now(code);
            }
            changes_.clear();
            changes_.swap(changes.value());
            for (const auto &change : changes_) {
                std::string line = describe_change(change);
                if (warned_.insert(line).second)
                    log::get("signatures")->warn("{} (seen when the agent stopped)", line);
                if (plan_.restore_signatures != RestoreSignatures::on_stop || !change.restorable)
                    continue;
                auto it = std::find_if(signatures_.begin(), signatures_.end(),
                                       [&](const DiskSignature &d) { return d.name == change.name; });
                if (it == signatures_.end())
                    continue;
                if (auto r = restore_signature(*it); r)
                    log::get("signatures")->info("{}: recorded signature written back "
                                                 "(supervisor.restore_signatures = on-stop)",
                                                 it->name);
                else
                    log::get("signatures")->error("{}: {}", it->name, r.error().message);
            }
            finish_now(code);
        });
}

void Agent::finish_now(int code)
{
    for (auto &[timer, id] : timers_)
        loop_.cancel_timer(id);
    timers_.clear();
    loop_.cancel_timer(housekeeping_timer_);
    if (viewer_)
        viewer_->stop();
    control_.close();
    console_.close();
    guest_agent_.stop();
    remove_session_files(plan_.paths);
    notifier_.stopping();
    exit_code_ = code;
    loop_.quit(code);
}

void Agent::housekeeping()
{
    housekeeping_timer_ = loop_.add_timer(kHousekeeping, [this] { housekeeping(); });
    if (!finishing_ && !control_.socket_present()) {
        if (auto r = prepare_runtime_dir(plan_.paths.dir); !r)
            log::get("supervisor")->error("{}", r.error().message);
        else if (auto l = control_.listen(plan_.paths.control_socket()); !l)
            log::get("supervisor")->error("the control socket is gone and cannot be made again: {}", l.error().message);
        else
            log::get("supervisor")->warn("the control socket {} was removed (runtime directory deleted?): made it "
                                         "again",
                                         plan_.paths.control_socket());
        if (qemu_ && ::access(plan_.paths.qemu_record().c_str(), F_OK) != 0)
            (void)save_qemu_record(plan_.paths,
                                   {qemu_->pid(), qemu_->start_time(), session_uuid_, state_.boots, qemu_argv_});
    }
    if (!finishing_ && console_.socket_lost() && control_.socket_present()) {
        if (auto c = console_.listen(); !c)
            log::get("console")->error("the console socket is gone and cannot be made again: {}", c.error().message);
        else
            log::get("console")->warn("the console socket {} was removed: made it again",
                                      plan_.paths.console_clients_socket());
    }
}

// ---- QemuListener ----------------------------------------------------------------

int run_agent(const Plan &plan, std::optional<Takeover> takeover)
{
    auto loop = EventLoop::create();
    if (!loop) {
        log::get("supervisor")->error("{}", loop.error().message);
        return 1;
    }
    Agent agent(plan, **loop, std::move(takeover));
    return agent.run();
}

} // namespace rescuevm
