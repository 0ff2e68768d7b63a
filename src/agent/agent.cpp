// SPDX-License-Identifier: GPL-2.0-or-later
// The agent's executor: one event loop; QMP, pidfd, signals, timers and the control
// socket become policy events, and the policy's actions are carried out here.
#include "rescuevm/agent/agent.h"

#include "rescuevm/configdrive/config_drive_iso.h"
#include "rescuevm/agent/control.h"
#include "rescuevm/signatures/disk_signatures.h"
#include "rescuevm/sys/event_loop.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/net/uplink_claim.h"
#include "rescuevm/sys/process.h"
#include "rescuevm/core/qemu_argv.h"
#include "rescuevm/agent/qmp_client.h"
#include "rescuevm/core/secret.h"
#include "rescuevm/agent/session_files.h"
#include "rescuevm/core/supervisor_policy.h"

#include <fcntl.h>
#include <poll.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <set>

namespace rescuevm {
namespace {

namespace sv = supervisor;
using namespace std::chrono_literals;

constexpr auto kQmpConnectDeadline = 30s;
constexpr auto kQmpCommandDeadline = 30s;

std::int64_t now_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

sv::Params policy_params(const Config &cfg)
{
    sv::Params p;
    p.restart_on_poweroff = cfg.supervisor.on_guest_poweroff == OnGuestPoweroff::restart;
    p.network = cfg.network.mode == NetworkMode::macvtap;
    p.shutdown_timeout = std::chrono::duration_cast<sv::Millis>(cfg.supervisor.shutdown_timeout);
    if (cfg.supervisor.max_session)
        p.max_session = std::chrono::duration_cast<sv::Millis>(*cfg.supervisor.max_session);
    return p;
}

class Agent {
public:
    Agent(const Plan &plan, EventLoop &loop)
        : plan_(plan), cfg_(plan.config), loop_(loop), params_(policy_params(cfg_)),
          control_(loop, [this](std::uint64_t c, const nlohmann::json &r) { on_control(c, r); }),
          log_(log::get("supervisor")), started_(std::chrono::steady_clock::now())
    {
        paths_.dir = cfg_.paths.runtime_dir;
        session_uuid_ = new_session_uuid();
    }

    int run();

private:
    // Events in, actions out.
    void feed(const sv::Event &event);
    void execute(const sv::Action &action);

    // Actions.
    void spawn_qemu();
    void qmp(const std::string &command);
    void screendump(const std::string &path, std::uint64_t reply_to);
    void check_signatures(const std::string &when);
    void claim_network();
    void release_network();
    void finish(int code);

    // Event sources.
    void watch_qemu();
    void connect_qmp();
    void on_qmp_event(const QmpEvent &event);
    void on_qemu_exit();
    void on_control(std::uint64_t client, const nlohmann::json &request);
    nlohmann::json status_json() const;

    bool reattach();
    void release_stale_claim();
    void record_identities();
    void start_watchdog();
    std::string new_session_uuid() const;

    const Plan &plan_;
    const Config &cfg_;
    EventLoop &loop_;
    sv::Params params_;
    sv::State state_;
    RuntimePaths paths_;
    std::string session_uuid_;
    ControlServer control_;
    std::shared_ptr<spdlog::logger> log_;
    std::chrono::steady_clock::time_point started_;

    std::optional<ProcessHandle> qemu_;
    WatchId qemu_watch_ = 0;
    std::unique_ptr<QmpClient> qmp_;
    std::optional<UplinkClaim> net_;
    UniqueFd tap_;                      // the tap fd given to each QEMU of this session
    std::map<sv::Timer, TimerId> timers_;
    std::vector<DiskSignature> identities_;
    std::vector<SignatureChange> changes_;
    std::set<std::string> warned_;
    std::optional<std::uint64_t> replying_to_;
    std::optional<int> exit_code_;
    bool ready_notified_ = false;
    bool quitting_ = false;            // `quit` sent: the QMP connection is expected to end
};

std::string Agent::new_session_uuid() const
{
    auto uuid = fresh_instance_uuid();
    return uuid ? *uuid : "00000000-0000-4000-8000-000000000000";
}

int Agent::run()
{
    if (auto r = control_.listen(paths_.control_socket()); !r)
        log_->warn("{}; `rescuevm status` and `rescuevm vm` will not work, ignoring", r.error().message);
    auto sig = loop_.watch_signals({SIGTERM, SIGINT}, [this](int) { feed(sv::StopRequested{}); });
    if (!sig) {
        log_->error("{}", sig.error().message);
        return 1;
    }
    ::signal(SIGPIPE, SIG_IGN);
    ::signal(SIGHUP, SIG_IGN); // a serial console hang-up must not end the session
    start_watchdog();
    if (!reattach()) {
        record_identities();
        feed(sv::SessionStarted{});
    }
    if (exit_code_)
        return *exit_code_;
    return loop_.run();
}

void Agent::feed(const sv::Event &event)
{
    sv::Step step = sv::transition(state_, event, params_, now_ms());
    bool boots_changed = step.state.boots != state_.boots;
    state_ = std::move(step.state);
    if (boots_changed && qemu_)
        save_qemu_record(paths_, {qemu_->pid, qemu_->start_time, session_uuid_, state_.boots});
    for (const auto &action : step.actions) {
        execute(action);
        if (exit_code_)
            break;
    }
}

void Agent::execute(const sv::Action &action)
{
    std::visit(
        [&](const auto &a) {
            using A = std::decay_t<decltype(a)>;
            if constexpr (std::is_same_v<A, sv::Log>) {
                if (a.level == 0)
                    log_->info("{}", a.message);
                else if (a.level == 1)
                    log_->warn("{}", a.message);
                else
                    log_->error("{}", a.message);
            } else if constexpr (std::is_same_v<A, sv::SpawnQemu>) {
                spawn_qemu();
            } else if constexpr (std::is_same_v<A, sv::Qmp>) {
                qmp(a.command);
            } else if constexpr (std::is_same_v<A, sv::Screendump>) {
                screendump(fmt::format("{}/panic-{}.ppm", paths_.dir, state_.panics), 0);
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
                    (void)send_signal(qemu_->pidfd.get(), SIGKILL);
            } else if constexpr (std::is_same_v<A, sv::CheckDiskIdentities>) {
                check_signatures(a.when);
            } else if constexpr (std::is_same_v<A, sv::ClaimNetwork>) {
                claim_network();
            } else if constexpr (std::is_same_v<A, sv::ReleaseNetwork>) {
                release_network();
            } else if constexpr (std::is_same_v<A, sv::Notify>) {
                std::string msg = fmt::format("STATUS={}", a.status);
                if (a.ready && !ready_notified_) {
                    msg = "READY=1\n" + msg;
                    ready_notified_ = true;
                }
                sd_notify(0, msg.c_str());
            } else if constexpr (std::is_same_v<A, sv::ExitAgent>) {
                finish(a.code);
            } else if constexpr (std::is_same_v<A, sv::Reply>) {
                if (replying_to_)
                    control_.respond(*replying_to_, {{"ok", a.ok}, {a.ok ? "message" : "error", a.message}});
            }
        },
        action);
}

void Agent::claim_network()
{
    if (cfg_.network.mode == NetworkMode::none || net_)
        return;
    ClaimOptions options;
    options.runtime_dir = paths_.dir;
    auto claim = UplinkClaim::claim(plan_.host.network, options);
    if (!claim) {
        log_->error("cannot hand the uplink to the VM: {}", claim.error().message);
        return;
    }
    net_ = std::move(*claim);
    tap_.reset(::fcntl(net_->tap_fd(), F_DUPFD_CLOEXEC, 3));
    log_->info("uplink {} ({}) handed to the VM through macvtap {} ({}); the host no longer speaks on it; "
               "use the serial console",
               net_->uplink(), net_->mac(), net_->macvtap(), net_->tap_path());
}

void Agent::release_network()
{
    tap_.reset();
    if (!net_)
        return;
    std::string uplink = net_->uplink();
    if (auto r = net_->release(); !r)
        log_->error("could not give the uplink {} back to the host completely: {}", uplink, r.error().message);
    else
        log_->info("uplink {} is the host's again: addresses and routes restored", uplink);
    net_.reset();
}

void Agent::spawn_qemu()
{
    if (cfg_.network.mode == NetworkMode::macvtap && !tap_) {
        log_->error("the VM is not started: it has no network (see the error above); fix it, then `rescuevm vm start`");
        state_.vm = sv::VmState::failed;
        return;
    }
    auto files = prepare_session_files(plan_, paths_);
    if (!files) {
        log_->error("the VM is not started: {}", files.error().message);
        state_.vm = sv::VmState::failed;
        return;
    }
    Session session;
    session.uuid = session_uuid_;
    session.paths = paths_;
    session.tap_fd = tap_ ? kTapFdInQemu : -1;
    session.vhost_net = plan_.host.vhost_net;
    session.config_drive = files->config_drive;
    auto argv = render_qemu_argv(plan_, session);
    if (!argv) {
        log_->error("the VM is not started: {}", argv.error().message);
        state_.vm = sv::VmState::failed;
        return;
    }
    log::get("qemu")->debug("starting {}", shell_quote(*argv));
    SpawnOptions options;
    options.argv = *argv;
    options.stdout_path = paths_.qemu_log();
    options.stderr_path = paths_.qemu_log();
    if (tap_)
        options.keep_fds.push_back({tap_.get(), kTapFdInQemu});
    auto process = spawn(options);
    if (!process) {
        log_->error("cannot start QEMU: {}", process.error().message);
        // Reported as an event of its own, after the actions of this step.
        loop_.add_timer(0ms, [this] { feed(sv::QemuExited{"could not be started"}); });
        return;
    }
    qemu_ = std::move(*process);
    quitting_ = false;
    save_qemu_record(paths_, {qemu_->pid, qemu_->start_time, session_uuid_, state_.boots});
    log::get("qemu")->info("QEMU started, pid {}; guest console in {}", qemu_->pid, paths_.guest_console());
    watch_qemu();
    connect_qmp();
}

void Agent::watch_qemu()
{
    auto watch = loop_.add_fd(qemu_->pidfd.get(), EPOLLIN, [this](std::uint32_t) { on_qemu_exit(); });
    qemu_watch_ = watch ? *watch : 0;
}

void Agent::connect_qmp()
{
    qmp_ = std::make_unique<QmpClient>(loop_);
    qmp_->on_event([this](const QmpEvent &e) { on_qmp_event(e); });
    qmp_->on_ready([this] {
        log::get("qmp")->debug("QMP negotiated");
        feed(sv::QmpReady{});
    });
    qmp_->on_disconnect([this](const Error &e) {
        log::get("qmp")->debug("QMP connection ended: {}", e.message);
        // QEMU's exit is reported by its pidfd; a live QEMU gets a new connection. Poll the
        // pidfd, never reap here: on_qemu_exit() reaps and logs the exit status.
        pollfd ended{qemu_ ? qemu_->pidfd.get() : -1, POLLIN, 0};
        if (qemu_ && !quitting_ && ::poll(&ended, 1, 0) == 0) {
            feed(sv::QmpLost{});
            loop_.add_timer(1s, [this] {
                if (qemu_ && qmp_ && !qmp_->ready())
                    qmp_->connect(paths_.qmp_socket(), kQmpConnectDeadline);
            });
        }
    });
    qmp_->connect(paths_.qmp_socket(), kQmpConnectDeadline);
}

void Agent::qmp(const std::string &command)
{
    if (command == "quit")
        quitting_ = true;
    if (!qmp_ || !qmp_->ready()) {
        // QEMU ends cleanly on SIGTERM; without QMP that is the way to `quit`.
        if (command == "quit" && qemu_)
            (void)send_signal(qemu_->pidfd.get(), SIGTERM);
        else
            log::get("qmp")->warn("cannot send {}: QMP is not connected, ignoring", command);
        return;
    }
    qmp_->execute(command, nlohmann::json::object(), kQmpCommandDeadline,
                  [this, command](Result<nlohmann::json> reply) {
                      if (!reply) {
                          if (command != "quit") // QEMU may close the socket before answering
                              log::get("qmp")->warn("{} failed: {}", command, reply.error().message);
                          return;
                      }
                      if (command == "cont")
                          feed(sv::GuestResumed{});
                  });
}

void Agent::screendump(const std::string &path, std::uint64_t reply_to)
{
    if (!qmp_ || !qmp_->ready()) {
        if (reply_to)
            control_.respond(reply_to, {{"ok", false}, {"error", "QEMU is not running"}});
        return;
    }
    qmp_->execute("screendump", {{"filename", path}}, kQmpCommandDeadline,
                  [this, path, reply_to](Result<nlohmann::json> reply) {
                      if (reply)
                          log_->info("screenshot of the VM saved to {}", path);
                      else
                          log_->warn("screenshot to {} failed: {}", path, reply.error().message);
                      if (reply_to)
                          control_.respond(reply_to, reply ? nlohmann::json{{"ok", true}, {"message", path}}
                                                           : nlohmann::json{{"ok", false},
                                                                            {"error", reply.error().message}});
                  });
}

void Agent::on_qmp_event(const QmpEvent &e)
{
    // QEMU's own timestamp (seconds.microseconds) lets bench/supervisor_bench.sh time the policy's reaction.
    log::get("qmp")->debug("event {} {} qemu_time={}.{:06}", e.name, e.data.dump(), e.timestamp_us / 1000000,
                           e.timestamp_us % 1000000);
    bool guest = e.data.value("guest", false);
    std::string reason = e.data.value("reason", "");
    if (e.name == "RESET") {
        feed(sv::GuestReset{reason, guest});
    } else if (e.name == "SHUTDOWN") {
        feed(sv::GuestShutdown{reason, guest});
    } else if (e.name == "GUEST_PANICKED") {
        sv::GuestPanicked p;
        const auto &info = e.data.value("info", nlohmann::json::object());
        p.type = info.value("type", "");
        p.code = info.value("arg1", std::uint64_t{0});
        for (int i = 0; i < 4; ++i)
            p.params[i] = info.value(fmt::format("arg{}", i + 2), std::uint64_t{0});
        feed(p);
    }
}

void Agent::on_qemu_exit()
{
    if (!qemu_)
        return;
    auto status = try_reap(qemu_->pidfd.get());
    std::string how = status && *status ? (*status)->describe() : "ended";
    loop_.remove_fd(qemu_watch_);
    qemu_watch_ = 0;
    qemu_.reset();
    if (qmp_)
        qmp_->close();
    remove_qemu_record(paths_);
    log::get("qemu")->info("QEMU {}", how);
    feed(sv::QemuExited{how});
}

void Agent::record_identities()
{
    std::vector<DiskSignature> recorded;
    if (auto old = load_signatures(paths_.signatures()))
        recorded = std::move(*old);
    std::vector<DiskSignature> now;
    for (const DiskInfo *disk : plan_.passed()) {
        // An identity recorded earlier in this rescue boot stays the reference.
        auto it = std::find_if(recorded.begin(), recorded.end(),
                               [&](const DiskSignature &d) { return d.path == disk->path && d.size_bytes == disk->size_bytes; });
        if (it != recorded.end()) {
            now.push_back(*it);
            continue;
        }
        auto id = read_disk_signature(disk->path);
        if (!id) {
            log::get("signatures")->warn("cannot record the identity of {}: {}, ignoring", disk->name, id.error().message);
            continue;
        }
        now.push_back(std::move(*id));
    }
    identities_ = std::move(now);
    if (auto r = save_signatures(paths_.signatures(), identities_); !r)
        log::get("signatures")->warn("{}, ignoring", r.error().message);
    for (const auto &d : identities_)
        log::get("signatures")->info("recorded {} identity: {} {}", d.name, d.table, d.disk_id.empty() ? "-" : d.disk_id);
}

void Agent::check_signatures(const std::string &when)
{
    if (identities_.empty())
        return;
    changes_ = rescuevm::check_signatures(identities_);
    for (const auto &change : changes_) {
        std::string line = describe_change(change);
        if (warned_.insert(line).second)
            log::get("signatures")->warn("{} (seen when {})", line, when);
    }
}

void Agent::finish(int code)
{
    // The agent's stop is a check of its own: with the VM already off the policy checks nothing
    // on SIGTERM, and a disk changed meanwhile (e.g. by hand) would go unreported.
    check_signatures("the agent stopped");
    if (cfg_.supervisor.restore_signatures == RestoreSignatures::on_stop && !identities_.empty()) {
        for (const auto &change : rescuevm::check_signatures(identities_)) {
            if (!change.restorable)
                continue;
            auto it = std::find_if(identities_.begin(), identities_.end(),
                                   [&](const DiskSignature &d) { return d.name == change.name; });
            if (it == identities_.end())
                continue;
            if (auto r = restore_signature(*it); r)
                log::get("signatures")->info("{}: recorded identity written back (supervisor.restore_signatures = on-stop)",
                                             it->name);
            else
                log::get("signatures")->error("{}: {}", it->name, r.error().message);
        }
    }
    for (auto &[timer, id] : timers_)
        loop_.cancel_timer(id);
    timers_.clear();
    control_.close();
    remove_session_files(paths_);
    sd_notify(0, "STOPPING=1");
    exit_code_ = code;
    loop_.quit(code);
}

void Agent::start_watchdog()
{
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return;
    auto period = std::chrono::milliseconds(usec / 2000);
    auto beat = std::make_shared<std::function<void()>>();
    *beat = [this, period, beat] {
        sd_notify(0, "WATCHDOG=1");
        loop_.add_timer(period, *beat);
    };
    loop_.add_timer(period, *beat);
}

void Agent::release_stale_claim()
{
    if (auto old = UplinkClaim::load(paths_.network_claim()); old && *old) {
        log_->info("giving the uplink back to the host first (claimed by an earlier agent)");
        if (auto r = (*old)->release(); !r)
            log_->error("{}", r.error().message);
    }
}

bool Agent::reattach()
{
    // With no VM to re-attach to, an uplink still claimed by an earlier agent goes back first.
    auto record = load_qemu_record(paths_);
    if (!record) {
        release_stale_claim();
        return false;
    }
    auto process = attach(record->pid, record->start_time);
    if (!process) {
        log_->info("QEMU of an earlier agent (pid {}) is gone; starting a new session", record->pid);
        remove_qemu_record(paths_);
        release_stale_claim();
        return false;
    }
    log_->info("found the VM of an earlier agent still running (QEMU pid {}); re-attaching without restarting it",
               record->pid);
    qemu_ = std::move(*process);
    session_uuid_ = record->session_uuid;
    if (auto old = UplinkClaim::load(paths_.network_claim()); old && *old) {
        net_ = std::move(**old);
        tap_.reset(::open(net_->tap_path().c_str(), O_RDWR | O_CLOEXEC));
    }
    if (auto ids = load_signatures(paths_.signatures()))
        identities_ = std::move(*ids);
    state_.vm = sv::VmState::running;
    state_.guest_ran = true;
    state_.boots = record->boots;
    state_.qemu_starts = 1;
    state_.qemu_started_ms = now_ms();
    watch_qemu();
    qmp_ = std::make_unique<QmpClient>(loop_);
    qmp_->on_event([this](const QmpEvent &e) { on_qmp_event(e); });
    qmp_->on_ready([this] {
        qmp_->execute("query-status", nlohmann::json::object(), kQmpCommandDeadline,
                      [this](Result<nlohmann::json> r) {
                          std::string status = r ? r->value("status", "") : "";
                          log_->info("re-attached; the guest is {}", status.empty() ? "in an unknown state" : status);
                          if (status == "prelaunch") {
                              state_.vm = sv::VmState::starting;
                              feed(sv::QmpReady{});
                          } else if (status == "shutdown") {
                              feed(sv::GuestShutdown{"guest-shutdown", true});
                          } else if (status == "guest-panicked") {
                              feed(sv::GuestPanicked{});
                          }
                          sd_notify(0, "READY=1\nSTATUS=VM running (re-attached)");
                          ready_notified_ = true;
                      });
    });
    qmp_->on_disconnect([this](const Error &e) {
        log::get("qmp")->warn("QMP connection to the re-attached QEMU ended: {}", e.message);
    });
    qmp_->connect(paths_.qmp_socket(), kQmpConnectDeadline);
    return true;
}

void Agent::on_control(std::uint64_t client, const nlohmann::json &request)
{
    std::string command = request.value("command", "");
    if (command == "status") {
        control_.respond(client, {{"ok", true}, {"status", status_json()}});
    } else if (command == "vm") {
        std::string action = request.value("action", "");
        if (action == "screenshot") {
            std::string path = request.value("path", "");
            if (path.empty() || path[0] != '/')
                return control_.respond(client, {{"ok", false}, {"error", "screenshot needs an absolute PATH"}});
            return screendump(path, client);
        }
        replying_to_ = client;
        feed(sv::Control{action});
        replying_to_.reset();
    } else {
        control_.respond(client, {{"ok", false},
                                  {"error", fmt::format("unknown command \"{}\": use status or vm", command)}});
    }
}

nlohmann::json Agent::status_json() const
{
    auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
    nlohmann::json disks = nlohmann::json::array();
    for (const DiskInfo *d : plan_.passed())
        disks.push_back({{"name", d->name}, {"path", d->path}, {"size_bytes", d->size_bytes},
                         {"logical_block_size", d->logical_block_size}, {"serial", d->serial}, {"disk_id", d->disk_id}});
    nlohmann::json changes = nlohmann::json::array();
    for (const auto &c : changes_)
        changes.push_back(describe_change(c));
    nlohmann::json net = {{"mode", to_string(cfg_.network.mode)}};
    if (cfg_.network.mode == NetworkMode::macvtap) {
        net["uplink"] = plan_.host.network.uplink;
        net["mac"] = plan_.host.network.mac;
        nlohmann::json addresses = nlohmann::json::array();
        for (const auto &a : plan_.host.network.addresses)
            addresses.push_back(fmt::format("{}/{}", a.address, a.prefix));
        net["addresses"] = addresses;
        net["handed_to_vm"] = net_.has_value();
    }
    return {{"agent", {{"version", RESCUEVM_VERSION}, {"pid", ::getpid()}, {"uptime_s", uptime.count()}}},
            {"vm",
             {{"state", sv::to_string(state_.vm)},
              {"qemu_pid", qemu_ ? qemu_->pid : 0},
              {"boots", state_.boots},
              {"reboots", state_.reboots},
              {"panics", state_.panics},
              {"qemu_starts", state_.qemu_starts},
              {"last_event", state_.last_event},
              {"last_event_age_s", state_.last_event.empty() ? 0 : (now_ms() - state_.last_event_ms) / 1000}}},
            {"disks", disks},
            {"network", net},
            {"signature_changes", changes},
            {"runtime_dir", paths_.dir}};
}

} // namespace

int run_agent(const Plan &plan)
{
    auto loop = EventLoop::create();
    if (!loop) {
        log::get("supervisor")->error("{}", loop.error().message);
        return 1;
    }
    Agent agent(plan, **loop);
    return agent.run();
}

} // namespace rescuevm
