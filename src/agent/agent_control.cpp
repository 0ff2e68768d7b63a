// SPDX-License-Identifier: GPL-2.0-or-later
// The agent's side of the control socket: status, `vm` actions through the policy, screenshots into files the agent made.
#include "rescuevm/agent/agent.h"

#include "rescuevm/sys/files.h"
#include "rescuevm/sys/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace rescuevm {
namespace {

using namespace std::chrono_literals;

// The file a screenshot goes to: new (O_EXCL, never through a symlink), regular, in
// a directory only root can write, or in the runtime directory. A request may name
// any path: it must not make root overwrite a disk or a file it does not own.
Result<UniqueFd> create_screenshot_file(const std::string &path, const std::string &runtime_dir)
{
    auto slash = path.rfind('/');
    std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    std::string name = path.substr(slash + 1);
    if (name.empty() || name == "." || name == "..")
        return fail(fmt::format("screenshot {}: give a file name", path));
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0)
        return fail(fmt::format("screenshot {}: directory {}: {}", path, dir, errno_text(errno)));
    if (!S_ISDIR(st.st_mode))
        return fail(fmt::format("screenshot {}: {} is not a directory (a symbolic link is refused)", path, dir));
    if (dir != runtime_dir && (st.st_uid != 0 || (st.st_mode & 022)))
        return fail(fmt::format("screenshot {}: {} can be written by users other than root: save it in a "
                                "root-only directory such as /root or {}",
                                path, dir, runtime_dir));
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600));
    if (!fd)
        return fail(fmt::format("screenshot {}: {}{}", path, errno_text(errno),
                                errno == EEXIST ? ": give the name of a new file" : ""));
    return fd;
}

Result<void> copy_into(const std::string &from, int to)
{
    UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!in)
        return fail(fmt::format("{}: {}", from, errno_text(errno)));
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(in.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(fmt::format("{}: {}", from, errno_text(errno)));
        if (n == 0)
            return {};
        for (ssize_t done = 0; done < n;) {
            ssize_t w = ::write(to, buf + done, static_cast<std::size_t>(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return fail(errno_text(w < 0 ? errno : ENOSPC));
            done += w;
        }
    }
}

} // namespace

void Agent::on_control(std::uint64_t client, const ControlRequest &request)
{
    if (request.kind == ControlRequest::Kind::status)
        return control_.respond(client, {{"ok", true}, {"status", status_json(status_report())}});
    if (request.action == "screenshot")
        return screenshot(client, request);
    if (finishing_)
        return control_.respond(client, control_error("the agent is stopping"));
    replying_to_ = client;
    if (request.action == "start")
        start_reply_to_ = client;
    feed(supervisor::Control{request.action});
    replying_to_.reset();
    if (!state_.start_reply_pending && start_reply_to_ == client)
        start_reply_to_.reset(); // answered at once (refused), or not a start
}

void Agent::screenshot(std::uint64_t client, const ControlRequest &request)
{
    if (!qemu_)
        return control_.respond(client, control_error("QEMU is not running: no screen to take"));
    auto target = create_screenshot_file(request.path, plan_.paths.dir);
    if (!target)
        return control_.respond(client, control_error(target.error().message));
    // QEMU writes into our own directory; the agent copies into the file it made.
    std::string staging = fmt::format("{}/screendump.{}", plan_.paths.dir, request.format);
    ::unlink(staging.c_str());
    auto fd = std::make_shared<UniqueFd>(std::move(*target));
    std::string path = request.path;
    qemu_->command("screendump", {{"filename", staging}, {"format", request.format}}, 30s,
                   [this, client, fd, path, staging](Result<nlohmann::json> reply) {
                       Result<void> copied = reply ? copy_into(staging, fd->get()) : Result<void>(fail(reply.error().message));
                       ::unlink(staging.c_str());
                       if (!copied) {
                           ::unlink(path.c_str()); // ours, made empty above
                           log::get("supervisor")->warn("screenshot to {} failed: {}", path, copied.error().message);
                           return control_.respond(client, control_error("screenshot failed: " + copied.error().message));
                       }
                       log::get("supervisor")->info("screenshot of the VM saved to {}", path);
                       control_.respond(client, control_ok(path));
                   });
}

StatusReport Agent::status_report() const
{
    StatusReport s;
    s.version = RESCUEVM_VERSION;
    s.agent_pid = ::getpid();
    s.uptime_s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count();
    s.vm_state = supervisor::to_string(state_.vm);
    s.qemu_pid = qemu_ ? qemu_->pid() : 0;
    s.boots = state_.boots;
    s.reboots = state_.reboots;
    s.panics = state_.panics;
    s.qemu_starts = state_.qemu_starts;
    s.qmp_answering = state_.qmp_answering;
    s.pause_reason = state_.pause_reason;
    s.boot_problem = state_.boot_problem;
    s.last_event = state_.last_event;
    s.last_event_age_s = state_.last_event.empty() ? 0 : (now_ms() - state_.last_event_ms) / 1000;
    for (const DiskInfo *d : plan_.passed())
        s.disks.push_back({d->name, d->path, d->serial, d->disk_id, d->size_bytes, d->logical_block_size});
    s.network_mode = to_string(plan_.network.mode);
    if (plan_.network.mode == NetworkMode::macvtap) {
        s.uplink = plan_.network.uplink.uplink;
        s.mac = plan_.network.uplink.mac;
        for (const auto &a : plan_.network.uplink.addresses)
            s.addresses.push_back(fmt::format("{}/{}", a.address, a.prefix));
        s.handed_to_vm = net_.has_value();
    }
    for (const auto &c : changes_)
        s.signature_changes.push_back(describe_change(c));
    s.runtime_dir = plan_.paths.dir;
    s.screen = plan_.vm.display == Display::vnc ? "VNC socket " + plan_.paths.vnc_socket() : "none";
    return s;
}

} // namespace rescuevm
