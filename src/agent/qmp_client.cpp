// SPDX-License-Identifier: GPL-2.0-or-later
// QmpClient implementation: line framing, greeting/negotiation, id matching, deadlines, teardown.
#include "rescuevm/agent/qmp_client.h"

#include "rescuevm/sys/files.h"
#include "rescuevm/sys/log.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rescuevm {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr milliseconds kMaxRetryDelay{200};

std::string duration_text(milliseconds d)
{
    if (d.count() % 1000 == 0)
        return std::to_string(d.count() / 1000) + " s";
    return std::to_string(d.count()) + " ms";
}

// For log lines: a bounded, single-line excerpt of what the peer sent.
std::string excerpt(std::string_view s)
{
    std::string out(s.substr(0, 80));
    std::replace_if(out.begin(), out.end(), [](char c) { return c < 0x20 || c == 0x7f; }, '?');
    return s.size() > 80 ? out + "..." : out;
}

} // namespace

QmpClient::QmpClient(EventLoop &loop, QmpLimits limits) : loop_(loop), limits_(limits) {}

QmpClient::~QmpClient()
{
    *alive_ = false;
    // Pending callbacks are dropped, not called: their owners may be going away too.
    for (auto &[id, p] : pending_)
        loop_.cancel_timer(p.deadline_timer);
    loop_.cancel_timer(connect_timer_);
    loop_.cancel_timer(handshake_timer_);
    loop_.remove_fd(watch_);
}

void QmpClient::connect(const std::string &path, milliseconds connect_deadline)
{
    if (state_ != State::idle)
        teardown(false, "reconnecting");
    path_ = path;
    state_ = State::connecting;
    connect_until_ = std::chrono::steady_clock::now() + connect_deadline;
    retry_delay_ = milliseconds(10);
    // Deferred so that even an immediate failure reaches on_disconnect from the loop.
    connect_timer_ = loop_.add_timer(milliseconds(0), [this] { try_connect(); });
}

void QmpClient::try_connect()
{
    connect_timer_ = 0;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof addr.sun_path)
        return disconnect("QMP socket path " + path_ + " is too long for a unix socket; use a shorter runtime_dir");
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);

    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd)
        return disconnect("cannot create a socket for QMP: " + errno_text(errno));
    if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0)
        return start_session(std::move(fd));
    int err = errno;
    if (err == EINPROGRESS) {
        fd_ = std::move(fd);
        auto watch = loop_.add_fd(fd_.get(), EPOLLOUT, [this](std::uint32_t ev) { on_socket(ev); });
        if (!watch)
            return disconnect(watch.error().message);
        watch_ = *watch;
        return;
    }
    if (err != ENOENT && err != ECONNREFUSED && err != EAGAIN)
        return disconnect("cannot connect to QMP socket " + path_ + ": " + errno_text(err));
    // QEMU creates the socket shortly after it starts: try again until the deadline.
    auto now = std::chrono::steady_clock::now();
    if (now + retry_delay_ > connect_until_)
        return disconnect("QMP socket " + path_ + " did not accept a connection in time (" + errno_text(err) +
                          "); is QEMU running?");
    connect_timer_ = loop_.add_timer(retry_delay_, [this] { try_connect(); });
    retry_delay_ = std::min(retry_delay_ * 2, kMaxRetryDelay);
}

void QmpClient::attach_fd(UniqueFd fd)
{
    if (state_ != State::idle)
        teardown(false, "replaced by another socket");
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags >= 0)
        ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
    start_session(std::move(fd));
}

void QmpClient::start_session(UniqueFd fd)
{
    loop_.remove_fd(watch_);
    watch_ = 0;
    watching_output_ = false;
    fd_ = std::move(fd);
    state_ = State::greeting;
    auto watch = loop_.add_fd(fd_.get(), EPOLLIN, [this](std::uint32_t ev) { on_socket(ev); });
    if (!watch)
        return disconnect(watch.error().message);
    watch_ = *watch;
    handshake_timer_ = loop_.add_timer(limits_.handshake_timeout, [this] {
        handshake_timer_ = 0;
        disconnect("QMP greeting and negotiation did not complete within " +
                   duration_text(limits_.handshake_timeout) + "; is another client connected?");
    });
    update_watch();
}

std::string QmpClient::execute(const std::string &name, const json &args, milliseconds deadline,
                               CommandCallback callback)
{
    return queue_command(name, args, -1, deadline, std::move(callback));
}

std::string QmpClient::execute_with_fd(const std::string &name, const json &args, int fd,
                                       milliseconds deadline, CommandCallback callback)
{
    return queue_command(name, args, fd, deadline, std::move(callback));
}

std::string QmpClient::queue_command(const std::string &name, const json &args, int fd, milliseconds deadline,
                                     CommandCallback callback)
{
    std::string id = "rv-" + std::to_string(next_id_++);
    json message = {{"execute", name}, {"id", id}};
    if (!args.is_null() && !args.empty())
        message["arguments"] = args;
    Outgoing out{id, message.dump() + "\r\n", UniqueFd()};
    if (fd >= 0)
        out.fd.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 3));

    Pending pending{name, 0, std::move(callback)};
    if (state_ == State::idle) {
        // Not connected: fail from the loop, never from inside execute().
        pending.deadline_timer = loop_.add_timer(milliseconds(0), [this, id, name] {
            fail_command(id, "QMP is not connected; " + name + " was not sent");
        });
    } else {
        pending.deadline_timer = loop_.add_timer(deadline, [this, id, name, deadline] {
            fail_command(id, "QMP command " + name + " got no answer within " + duration_text(deadline));
        });
        if (fd >= 0 && !out.fd)
            pending.deadline_timer = loop_.add_timer(milliseconds(0), [this, id, name] {
                fail_command(id, "QMP command " + name + ": cannot duplicate the fd to pass: " + errno_text(EBADF));
            });
        else if (state_ == State::ready)
            output_.push_back(std::move(out));
        else
            queued_.push_back(std::move(out)); // QEMU refuses commands before qmp_capabilities
    }
    pending_.emplace(id, std::move(pending));
    update_watch();
    return id;
}

void QmpClient::fail_command(const std::string &id, const std::string &message)
{
    auto it = pending_.find(id);
    if (it == pending_.end())
        return;
    Pending p = std::move(it->second);
    pending_.erase(it);
    loop_.cancel_timer(p.deadline_timer);
    // A queued command whose caller has been told it failed is never sent (one
    // already in output_ may be partly written: it goes, its late reply is ignored).
    std::erase_if(queued_, [&](const Outgoing &o) { return o.id == id; });
    log::get("qmp")->warn("{}", message);
    p.callback(fail(message));
}

void QmpClient::on_socket(std::uint32_t revents)
{
    auto alive = alive_;
    if (state_ == State::connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0)
            return disconnect("cannot connect to QMP socket " + path_ + ": " + errno_text(err));
        return start_session(std::move(fd_));
    }
    if (revents & EPOLLOUT) {
        flush_output();
        if (!*alive || !fd_)
            return;
    }
    if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
        read_input();
}

void QmpClient::read_input()
{
    char buffer[kReadChunk];
    ssize_t n = ::read(fd_.get(), buffer, sizeof buffer);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        if (errno != ECONNRESET) // a reset is QEMU exiting: reported like an end of file
            return disconnect("reading the QMP socket failed: " + errno_text(errno));
        n = 0;
    }
    if (n == 0) {
        if (!input_.empty())
            return disconnect("QMP connection closed in the middle of a message (" + std::to_string(input_.size()) +
                              " bytes without end of line)");
        log::get("qmp")->debug("QEMU closed the QMP connection");
        return teardown(true, "QEMU closed the QMP connection");
    }
    input_.append(buffer, static_cast<std::size_t>(n));

    // Handle complete lines; a callback may close or destroy us, so re-check after each.
    auto alive = alive_;
    std::uint64_t session = session_;
    std::size_t start = 0;
    for (std::size_t nl; (nl = input_.find('\n', start)) != std::string::npos;) {
        std::string line = input_.substr(start, nl - start);
        start = nl + 1;
        if (line.size() > limits_.max_line)
            return disconnect("QMP sent a line longer than " + std::to_string(limits_.max_line) + " bytes");
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        handle_line(line);
        if (!*alive || session != session_)
            return;
    }
    input_.erase(0, start);
    if (input_.size() > limits_.max_line)
        return disconnect("QMP sent a line longer than " + std::to_string(limits_.max_line) + " bytes");
}

void QmpClient::handle_line(std::string_view line)
{
    if (line.find_first_not_of(" \t") == std::string_view::npos)
        return;
    json message = json::parse(line, nullptr, false);
    if (message.is_discarded() || !message.is_object())
        return disconnect("QMP sent something that is not a JSON object: '" + excerpt(line) + "'");

    if (message.contains("QMP")) {
        if (state_ != State::greeting)
            return disconnect("QMP sent a second greeting");
        return handle_greeting();
    }
    if (message.contains("event")) {
        QmpEvent event;
        event.name = message["event"].is_string() ? message["event"].get<std::string>() : "";
        event.data = message.value("data", json::object());
        const json &ts = message.value("timestamp", json::object());
        if (ts.is_object())
            event.timestamp_us = ts.value("seconds", std::int64_t{0}) * 1000000 + ts.value("microseconds", std::int64_t{0});
        if (auto callback = on_event_) // a copy: the callback may destroy us, and itself
            callback(event);
        return;
    }
    if (message.contains("return") || message.contains("error"))
        return handle_reply(message);
    log::get("qmp")->warn("QMP sent a message that is neither greeting, event nor reply: '{}', ignoring",
                          excerpt(line));
}

void QmpClient::handle_greeting()
{
    state_ = State::negotiating;
    std::string id = "rv-" + std::to_string(next_id_++);
    output_.push_front(Outgoing{id, json{{"execute", "qmp_capabilities"}, {"id", id}}.dump() + "\r\n", UniqueFd()});
    // Covered by the handshake timer, hence no deadline of its own.
    pending_.emplace(id, Pending{"qmp_capabilities", 0, [this](Result<json> r) {
                                     if (state_ != State::negotiating)
                                         return; // the connection already ended
                                     if (!r)
                                         return disconnect("QEMU refused QMP negotiation: " + r.error().message);
                                     loop_.cancel_timer(std::exchange(handshake_timer_, 0));
                                     state_ = State::ready;
                                     for (auto &q : queued_)
                                         output_.push_back(std::move(q));
                                     queued_.clear();
                                     update_watch();
                                     if (auto callback = on_ready_)
                                         callback();
                                 }});
    update_watch();
}

void QmpClient::handle_reply(const json &message)
{
    const json *id = message.contains("id") ? &message["id"] : nullptr;
    auto it = (id && id->is_string()) ? pending_.find(id->get<std::string>()) : pending_.end();
    if (it == pending_.end()) {
        if (message.contains("error") && !id)
            log::get("qmp")->warn("QEMU reports an error not tied to a command: {}", message["error"].dump());
        else
            log::get("qmp")->debug("QMP reply for unknown or expired command {}, ignoring",
                                   id ? id->dump() : "(no id)");
        return;
    }
    Pending p = std::move(it->second);
    pending_.erase(it);
    loop_.cancel_timer(p.deadline_timer);
    if (message.contains("return"))
        return p.callback(message["return"]);
    const json &error = message["error"];
    std::string desc = error.is_object() ? error.value("desc", std::string("no description")) : error.dump();
    std::string klass = error.is_object() ? error.value("class", std::string("Error")) : "Error";
    p.callback(fail("QMP command " + p.name + " failed: " + desc + " (" + klass + ")"));
}

void QmpClient::flush_output()
{
    while (!output_.empty()) {
        Outgoing &out = output_.front();
        iovec iov{out.bytes.data(), out.bytes.size()};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
        if (out.fd) {
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
            cmsg->cmsg_level = SOL_SOCKET;
            cmsg->cmsg_type = SCM_RIGHTS;
            cmsg->cmsg_len = CMSG_LEN(sizeof(int));
            int fd = out.fd.get();
            std::memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
        }
        ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            return disconnect("writing to the QMP socket failed: " + errno_text(errno));
        }
        out.fd.reset(); // the kernel has it now, attached to the first byte sent
        out.bytes.erase(0, static_cast<std::size_t>(n));
        if (out.bytes.empty())
            output_.pop_front();
    }
    update_watch();
}

void QmpClient::update_watch()
{
    if (!watch_ || state_ == State::connecting || state_ == State::idle)
        return;
    bool want_output = !output_.empty();
    if (want_output == watching_output_)
        return;
    if (auto r = loop_.modify_fd(watch_, EPOLLIN | (want_output ? EPOLLOUT : 0u)); !r)
        log::get("qmp")->error("{}", r.error().message);
    watching_output_ = want_output;
}

void QmpClient::disconnect(const std::string &reason)
{
    log::get("qmp")->error("{}; disconnecting", reason);
    teardown(true, reason);
}

void QmpClient::close()
{
    teardown(false, "closed by the agent");
}

void QmpClient::teardown(bool notify, const std::string &reason)
{
    bool was_open = state_ != State::idle;
    state_ = State::idle;
    ++session_;
    loop_.remove_fd(std::exchange(watch_, 0));
    watching_output_ = false;
    fd_.reset();
    loop_.cancel_timer(std::exchange(connect_timer_, 0));
    loop_.cancel_timer(std::exchange(handshake_timer_, 0));
    input_.clear();
    output_.clear();
    queued_.clear();

    auto alive = alive_;
    std::map<std::string, Pending> failed;
    failed.swap(pending_);
    for (auto &[id, p] : failed) {
        loop_.cancel_timer(p.deadline_timer);
        p.callback(fail("QMP connection closed before " + p.name + " was answered (" + reason + ")"));
        if (!*alive)
            return;
    }
    if (auto callback = on_disconnect_; notify && was_open && callback)
        callback(Error{reason});
}

} // namespace rescuevm
