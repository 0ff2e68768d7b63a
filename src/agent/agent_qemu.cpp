// SPDX-License-Identifier: GPL-2.0-or-later
// The agent's side of QEMU: preparing and spawning a start, re-attaching, QMP commands, and QEMU's events turned into policy events.
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

namespace rescuevm {
namespace {

namespace sv = supervisor;
using namespace agent_deadlines;

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

} // namespace

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

} // namespace rescuevm
