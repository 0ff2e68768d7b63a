// SPDX-License-Identifier: GPL-2.0-or-later
// The agent's executor: events become policy events, the policy's actions are carried out here, nothing else decides.
#include "rescuevm/agent/agent.h"

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

constexpr auto kQmpCommandDeadline = 30s;
constexpr auto kReplyDeadline = 10s;      // a `vm ...` answer: QEMU's, or that it did not answer
constexpr auto kPrepareDeadline = 120s;   // disks, signatures, files, uplink hand-over
constexpr auto kSignaturesDeadline = 30s; // reading every passed disk's first sectors
constexpr auto kHousekeeping = 5s;
constexpr auto kConsoleDeadline = 90s;    // sysctls and systemctl mask/unmask (a daemon-reload)

const char *signal_name(int signo)
{
    const char *name = ::sigabbrev_np(signo);
    return name ? name : "?";
}

std::string json_text(const nlohmann::json &j, const char *key)
{
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::uint64_t json_u64(const nlohmann::json &j, const char *key)
{
    auto it = j.find(key);
    return it != j.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
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

std::vector<std::string> Agent::expected_disk_ids() const
{
    std::vector<std::string> ids;
    for (const DiskInfo *d : plan_.passed()) {
        auto it = seen_disk_ids_.find(d->name);
        ids.push_back(it == seen_disk_ids_.end() ? d->disk_id : it->second);
    }
    return ids;
}

void Agent::prepare_start()
{
    StartInputs in;
    in.plan = plan_;
    in.expected_disk_ids = expected_disk_ids();
    in.record_signatures = signatures_.empty() && !plan_.passed().empty();
    in.claim_uplink = plan_.network.mode == NetworkMode::macvtap && !net_;
    log::get("supervisor")->info("checking the {} passed disk(s) again and locking them{}", plan_.passed().size(),
                                 in.claim_uplink ? "; handing the uplink to the VM" : "");
    worker_.run<PreparedStart>(
        "preparing the VM start", kPrepareDeadline, [in] { return rescuevm::prepare_start(in); },
        [this](Result<PreparedStart> prepared) {
            if (!prepared) {
                feed(sv::StartRefused{prepared.error().message});
                return;
            }
            if (prepared->claim) {
                net_.emplace(std::move(*prepared->claim));
                prepared->claim.reset();
                log::get("supervisor")->info("uplink {} ({}) handed to the VM through macvtap {} ({}); the host no "
                                             "longer speaks on it; use the serial console",
                                             net_->uplink(), net_->mac(), net_->macvtap(), net_->tap_path());
            }
            if (!prepared->signatures.empty()) {
                signatures_ = prepared->signatures;
                for (const auto &d : signatures_)
                    log::get("signatures")->info("recorded {} signature: {} {}", d.name, d.table,
                                                 d.disk_id.empty() ? "-" : d.disk_id);
            }
            prepared_.emplace(std::move(*prepared));
            feed(sv::StartPrepared{});
        },
        [](PreparedStart &&late) { abandon_start(std::move(late)); });
}

void Agent::spawn_qemu()
{
    auto log = log::get("qemu");
    auto fail_spawn = [this](const std::string &why) {
        prepared_.reset();
        loop_.add_timer(0ms, [this, why] { feed(sv::SpawnFailed{why}); });
    };
    if (!prepared_)
        return fail_spawn("the start was not prepared");
    if (net_ && net_->tap_fd() < 0) {
        ClaimOptions options;
        options.runtime_dir = plan_.paths.dir;
        if (auto r = net_->open_tap(options); !r)
            return fail_spawn(r.error().message);
    }
    Session session = session_for(plan_, session_uuid_);
    auto argv = render_qemu_argv(plan_, session);
    if (!argv)
        return fail_spawn(argv.error().message);
    SpawnOptions options;
    options.argv = *argv;
    options.stdout_path = plan_.paths.qemu_log();
    options.stderr_path = plan_.paths.qemu_log();
    if (session.tap_fd >= 0 && net_)
        options.keep_fds.push_back({net_->tap_fd(), session.tap_fd});
    for (std::size_t i = 0; i < prepared_->disks.size() && i < session.disk_fds.size(); ++i)
        options.keep_fds.push_back({prepared_->disks[i].fd.get(), session.disk_fds[i]});
    log->debug("starting {}", shell_quote(*argv));
    auto instance = QemuInstance::spawn(loop_, *this, options, plan_.paths.qmp_socket());
    prepared_.reset(); // QEMU holds its own copies of the disk fds now
    if (!instance) {
        log->error("cannot start QEMU: {}", instance.error().message);
        return fail_spawn(instance.error().message);
    }
    qemu_ = std::move(*instance);
    qemu_argv_ = *argv;
    qmp_negotiated_once_ = false;
    start_guest_channels();
    if (auto r = save_qemu_record(plan_.paths, {qemu_->pid(), qemu_->start_time(), session_uuid_, state_.boots,
                                                qemu_argv_});
        !r)
        log->error("{}; a restarted agent will find this QEMU by its command line instead", r.error().message);
    log->info("QEMU started, pid {}; guest console in {}", qemu_->pid(), plan_.paths.guest_console());
}

void Agent::qmp(const sv::Qmp &command)
{
    std::optional<std::uint64_t> client = command.reply ? replying_to_ : std::nullopt;
    auto answer = [this, client](const nlohmann::json &reply) {
        if (client)
            control_.respond(*client, reply);
    };
    if (!qemu_) {
        answer(control_error("QEMU is not running"));
        return;
    }
    if (command.command == "quit") {
        qemu_->expect_exit();
        if (!qemu_->qmp_ready()) {
            // QEMU ends cleanly on SIGTERM; without QMP that is the way to `quit`.
            qemu_->terminate();
            return;
        }
    }
    std::string name = command.command;
    std::string done = command.reply_message;
    qemu_->command(name, nlohmann::json::object(), command.reply ? kReplyDeadline : kQmpCommandDeadline,
                   [this, name, done, answer](Result<nlohmann::json> reply) {
                       if (!reply) {
                           if (name != "quit") // QEMU may close the socket before answering
                               log::get("qmp")->warn("{} failed: {}", name, reply.error().message);
                           // Unanswered is not undone: the command is in QEMU's socket and a
                           // stopped QEMU carries it out when it runs again.
                           bool unanswered = reply.error().message.find("got no answer") != std::string::npos;
                           answer(control_error(
                               unanswered ? fmt::format("QEMU did not answer {} in time ({}); it may still carry it "
                                                        "out once it runs again: see `rescuevm status`",
                                                        name, reply.error().message)
                                          : fmt::format("QEMU did not carry out {}: {}", name,
                                                        reply.error().message)));
                           return;
                       }
                       answer(control_ok(done.empty() ? name + " done" : done));
                       if (name == "cont")
                           feed(sv::GuestResumed{});
                   });
}

void Agent::panic_screenshot(unsigned slot)
{
    if (!qemu_)
        return;
    std::string path = fmt::format("{}/panic-{}.ppm", plan_.paths.dir, slot);
    qemu_->command("screendump", {{"filename", path}}, kQmpCommandDeadline, [path](Result<nlohmann::json> r) {
        if (r)
            log::get("supervisor")->info("screenshot of the crashed guest saved to {}", path);
        else
            log::get("supervisor")->warn("screenshot to {} failed: {}, ignoring", path, r.error().message);
    });
}

void Agent::check_signatures(const std::string &when)
{
    if (signatures_.empty())
        return;
    std::vector<DiskSignature> recorded = signatures_;
    worker_.run<std::vector<SignatureChange>>(
        "reading the passed disks' signatures", kSignaturesDeadline,
        [recorded]() -> Result<std::vector<SignatureChange>> { return rescuevm::check_signatures(recorded); },
        [this, when](Result<std::vector<SignatureChange>> changes) {
            if (!changes) {
                log::get("signatures")->warn("{} (when {}); the VM is not affected, ignoring", changes.error().message,
                                             when);
                return;
            }
            changes_.clear();
            changes_.swap(changes.value());
            for (const auto &change : changes_) {
                if (change.kind == SignatureChange::Kind::disk_id)
                    seen_disk_ids_[change.name] = change.new_value == "00000000" ? "" : change.new_value;
                std::string line = describe_change(change);
                if (warned_.insert(line).second)
                    log::get("signatures")->warn("{} (seen when {})", line, when);
            }
        });
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
            if (!said)
                log::get("console")->error("{}; the console's settings stay as the session set them", said.error().message);
            else
                for (const auto &line : *said)
                    log::get("console")->info("{}", line);
            finish_checked(code);
        });
}

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

void Agent::protect_console()
{
    ConsoleGuardPaths paths{plan_.paths.console_guard()};
    worker_.run<std::vector<std::string>>(
        "protecting the host from its console", kConsoleDeadline, [paths] { return rescuevm::protect_console(paths); },
        [](Result<std::vector<std::string>> said) {
            auto log = log::get("console");
            if (!said)
                return log->error("{}: a key combination on the server's console may still reboot the host",
                                  said.error().message);
            for (const auto &line : *said) {
                if (line.starts_with("warning: "))
                    log->warn("{}", line.substr(9));
                else
                    log->info("{}", line);
            }
        });
}

void Agent::console_qemu_up()
{
    if (viewer_ && !finishing_)
        viewer_->start();
    if (inputs_)
        inputs_->qemu_ready();
}

void Agent::console_qemu_gone()
{
    if (viewer_)
        viewer_->stop();
    if (inputs_)
        inputs_->qemu_gone();
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

void Agent::reattach()
{
    auto log = log::get("supervisor");
    const QemuRecord &record = takeover_->record;
    auto instance = QemuInstance::attach(loop_, *this, record.pid, record.start_time, plan_.paths.qmp_socket());
    if (!instance) {
        log->info("QEMU of an earlier agent (pid {}) is gone ({}); starting a new session", record.pid,
                  instance.error().message);
        takeover_.reset();
        remove_qemu_record(plan_.paths);
        reset_session_files(plan_.paths);
        feed(sv::SessionStarted{});
        return;
    }
    log->info("found the VM of an earlier agent still running (QEMU pid {}); re-attaching without restarting it",
              record.pid);
    qemu_ = std::move(*instance);
    qemu_argv_ = record.argv;
    session_uuid_ = record.session_uuid;
    // A record found unusable (emptied, damaged) is written whole again: the next agent
    // should not have to search for this QEMU by its command line.
    if (auto r = save_qemu_record(plan_.paths, {qemu_->pid(), qemu_->start_time(), session_uuid_, record.boots,
                                                qemu_argv_});
        !r)
        log->warn("{}, ignoring", r.error().message);
    start_guest_channels();
    // QEMU holds the macvtap's tap: the claim is taken over without opening it again
    // (a second open would be a second queue that nobody reads).
    if (auto claim = UplinkClaim::load(plan_.paths.network_claim()); claim && *claim)
        net_.emplace(std::move(**claim));
    else if (!claim)
        log->error("{}", claim.error().message);
    if (auto sigs = load_signatures(plan_.paths.signatures()))
        signatures_ = std::move(*sigs);
    // The state comes from QEMU's own answer (qmp_ready()).
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

void Agent::qemu_exited(const std::string &how)
{
    console_qemu_gone();
    boot_watch_.stop();
    qemu_.reset();
    console_.qemu_gone();
    guest_agent_.stop();
    remove_qemu_record(plan_.paths);
    feed(sv::QemuExited{how});
}

void Agent::qmp_ready()
{
    console_qemu_up();
    if (takeover_) {
        unsigned boots = takeover_->record.boots;
        takeover_.reset();
        qmp_negotiated_once_ = true;
        qemu_->command("query-status", nlohmann::json::object(), kQmpCommandDeadline,
                       [this, boots](Result<nlohmann::json> r) {
                           feed(sv::Reattached{r ? json_text(*r, "status") : std::string(), boots});
                       });
        return;
    }
    if (!qmp_negotiated_once_) {
        qmp_negotiated_once_ = true;
        set_overlay_threshold(); // before the policy's `cont`: commands run in order
        feed(sv::QmpReady{});
        return;
    }
    log::get("qmp")->info("QMP connection to QEMU made again");
    feed(sv::QmpRestored{});
}

void Agent::qmp_event(const QmpEvent &e)
{
    // QEMU's own timestamp (seconds.microseconds) lets bench/supervisor_bench.sh time the policy's reaction.
    log::get("qmp")->debug("event {} {} qemu_time={}.{:06}", e.name, e.data.dump(), e.timestamp_us / 1000000,
                           e.timestamp_us % 1000000);
    const nlohmann::json &data = e.data.is_object() ? e.data : nlohmann::json::object();
    bool guest = data.contains("guest") && data["guest"].is_boolean() && data["guest"].get<bool>();
    std::string reason = json_text(data, "reason");
    if (e.name == "RESET") {
        guest_agent_.guest_reset(); // whatever answered in the guest before is gone
        if (!plan_.boot.direct_kernel)
            boot_watch_.boot_started();
        feed(sv::GuestReset{reason, guest});
    } else if (e.name == "SHUTDOWN") {
        feed(sv::GuestShutdown{reason, guest});
    } else if (e.name == "GUEST_PANICKED") {
        sv::GuestPanicked p;
        auto info = data.find("info");
        if (info != data.end() && info->is_object()) {
            p.type = json_text(*info, "type");
            p.code = json_u64(*info, "arg1");
            for (int i = 0; i < 4; ++i)
                p.params[i] = json_u64(*info, fmt::format("arg{}", i + 2).c_str());
        }
        feed(p);
    } else if (e.name == "RESUME") {
        // QEMU says RESUME before it answers `cont`: the firmware starts now.
        if (!plan_.boot.direct_kernel && state_.vm == sv::VmState::starting)
            boot_watch_.boot_started();
        feed(sv::GuestResumed{});
    } else if (e.name == "BLOCK_IO_ERROR") {
        std::string node = json_text(data, "node-name");
        std::string device = node.empty() ? json_text(data, "device") : node;
        std::string what = device;
        unsigned index = 0;
        if (std::sscanf(device.c_str(), "disk%u", &index) == 1 && index >= 1 && index <= plan_.passed().size())
            what = fmt::format("disk {} ({})", index, plan_.passed()[index - 1]->name);
        bool boot_disk = device.starts_with("overlay") || device.starts_with("image") || device == "disk0";
        bool nospace = data.contains("nospace") && data["nospace"].is_boolean() && data["nospace"].get<bool>();
        if (boot_disk)
            what = plan_.boot.nbd && !nospace ? "the rescue image (disk 0, " + describe(plan_.boot.nbd_url) + ")"
                                              : "the rescue image's overlay in " + plan_.paths.dir;
        std::string detail = fmt::format("I/O error {} {}{}{}", json_text(data, "operation"), what,
                                         nospace ? ": no space left" : "",
                                         reason.empty() ? "" : " (" + reason + ")");
        if (json_text(data, "action") == "stop")
            feed(sv::GuestPaused{"io-error", detail, boot_disk, nospace});
        else
            log::get("qmp")->warn("{}; the guest was told", detail);
    } else if (e.name == "BLOCK_WRITE_THRESHOLD") {
        feed(sv::OverlayLimit{json_u64(data, "write-threshold") + json_u64(data, "amount-exceeded")});
    } else if (e.name == "STOP" && qemu_) {
        qemu_->command("query-status", nlohmann::json::object(), kQmpCommandDeadline, [this](Result<nlohmann::json> r) {
            if (r)
                qmp_status(json_text(*r, "status"));
        });
    }
}

void Agent::set_overlay_threshold()
{
    if (plan_.boot.direct_kernel || plan_.boot.overlay_max == 0 || !qemu_)
        return;
    // On the overlay's file node: the event comes when a write would make the file bigger than the bound.
    std::uint64_t bound = plan_.boot.overlay_max;
    qemu_->command("block-set-write-threshold", {{"node-name", "overlay-file"}, {"write-threshold", bound}},
                   kQmpCommandDeadline, [bound](Result<nlohmann::json> r) {
                       if (r)
                           log::get("qemu")->info("overlay bound set: the VM is paused when its overlay reaches {}",
                                                  format_size(bound));
                       else
                           log::get("qemu")->warn("cannot set the overlay bound ({}): only the runtime directory's "
                                                  "free space limits the VM's writes, ignoring",
                                                  r.error().message);
                   });
}

void Agent::qmp_lost()
{
    feed(sv::QmpLost{});
}

void Agent::qmp_unresponsive(const std::string &detail)
{
    feed(sv::QmpUnresponsive{detail});
}

void Agent::qmp_status(const std::string &status)
{
    if (!state_.qmp_answering)
        feed(sv::QmpRestored{});
    if (status != "running" && state_.vm == sv::VmState::running)
        feed(sv::GuestPaused{status, ""});
}

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
