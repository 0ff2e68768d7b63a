// SPDX-License-Identifier: GPL-2.0-or-later
// ControlServer and control_request(): the agent's root-only JSON-lines socket.
#include "rescuevm/agent/control.h"
#include "rescuevm/sys/files.h"

#include "rescuevm/sys/log.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rescuevm {
namespace {

Result<sockaddr_un> unix_address(const std::string &path)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        return fail("control socket path " + path + " is too long: choose a shorter paths.runtime_dir");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

} // namespace

ControlServer::ControlServer(EventLoop &loop, Handler handler) : loop_(loop), handler_(std::move(handler)) {}

ControlServer::~ControlServer() { close(); }

Result<void> ControlServer::listen(const std::string &path)
{
    close();
    auto addr = RESCUEVM_TRY(unix_address(path));
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd)
        return fail(std::string("control socket: ") + errno_text(errno));
    ::unlink(path.c_str());
    mode_t old = ::umask(0177); // the socket is born 0600: root only
    int rc = ::bind(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr);
    ::umask(old);
    if (rc != 0 || ::listen(fd.get(), 8) != 0)
        return fail("control socket " + path + ": " + errno_text(errno));
    ::chmod(path.c_str(), 0600);
    struct stat st {};
    socket_ino_ = ::lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
    listen_fd_ = std::move(fd);
    path_ = path;
    listen_watch_ = RESCUEVM_TRY(loop_.add_fd(listen_fd_.get(), EPOLLIN, [this](std::uint32_t) { accept_clients(); }));
    return {};
}

void ControlServer::accept_clients()
{
    for (;;) {
        int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        UniqueFd client(fd);
        if (clients_.size() >= kMaxClients) {
            const char busy[] = "{\"ok\":false,\"error\":\"too many control clients\"}\n";
            (void)!::write(client.get(), busy, sizeof busy - 1);
            continue;
        }
        std::uint64_t id = next_client_++;
        auto watch = loop_.add_fd(client.get(), EPOLLIN | EPOLLRDHUP, [this, id](std::uint32_t) { read_client(id); });
        if (!watch)
            continue;
        clients_[id] = Client{std::move(client), *watch, {}, 0, false};
    }
}

void ControlServer::read_client(std::uint64_t id)
{
    auto it = clients_.find(id);
    if (it == clients_.end())
        return;
    char buf[4096];
    bool eof = false;
    for (;;) {
        ssize_t n = ::read(it->second.fd.get(), buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (n < 0) {
            drop(id);
            return;
        }
        if (n == 0) {
            eof = true;
            break;
        }
        it->second.in.append(buf, static_cast<size_t>(n));
        if (it->second.in.size() > kMaxLine) {
            respond(id, control_error("request line too long"));
            drop(id);
            return;
        }
    }
    if (eof && !it->second.in.empty() && it->second.in.back() != '\n')
        it->second.in += '\n'; // a last request without its newline still counts
    size_t nl;
    while ((it = clients_.find(id)) != clients_.end() && (nl = it->second.in.find('\n')) != std::string::npos) {
        std::string line = it->second.in.substr(0, nl);
        it->second.in.erase(0, nl + 1);
        handle_line(id, line);
    }
    if (eof && (it = clients_.find(id)) != clients_.end()) {
        // Half-closed: stop watching (EOF would wake us forever); drop once answered.
        loop_.remove_fd(it->second.watch);
        it->second.watch = 0;
        it->second.at_eof = true;
        if (it->second.awaiting == 0)
            drop(id);
    }
}

void ControlServer::handle_line(std::uint64_t id, const std::string &line)
{
    if (line.find_first_not_of(" \t\r") == std::string::npos)
        return;
    auto json = nlohmann::json::parse(line, nullptr, false);
    auto request = json.is_discarded() ? Result<ControlRequest>(fail("not JSON: send one JSON object per line, e.g. "
                                                                     "{\"command\":\"status\"}"))
                                       : parse_control_request(json);
    clients_[id].awaiting++;
    if (!request) {
        respond(id, control_error(request.error().message));
        return;
    }
    try {
        handler_(id, *request);
    } catch (const std::exception &e) {
        // Nothing a client sends may end the agent: the request fails, the loop goes on.
        log::get("control")->error("control request failed inside the agent: {}, ignoring", e.what());
        respond(id, control_error(std::string("internal error: ") + e.what()));
    }
}

void ControlServer::respond(std::uint64_t client, const nlohmann::json &reply)
{
    auto it = clients_.find(client);
    if (it == clients_.end())
        return; // the client went away; nothing to tell
    std::string line = reply.dump() + "\n";
    if (it->second.awaiting > 0)
        it->second.awaiting--;
    // Replies are small; a client that does not read them is dropped, never waited for.
    ssize_t n = ::send(it->second.fd.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(line.size()) || (it->second.at_eof && it->second.awaiting == 0))
        drop(client);
}

void ControlServer::drop(std::uint64_t id)
{
    auto it = clients_.find(id);
    if (it == clients_.end())
        return;
    if (it->second.watch)
        loop_.remove_fd(it->second.watch);
    clients_.erase(it);
}

bool ControlServer::socket_present() const
{
    struct stat st {};
    return listen_fd_ && ::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == socket_ino_;
}

void ControlServer::close()
{
    while (!clients_.empty())
        drop(clients_.begin()->first);
    if (listen_watch_) {
        loop_.remove_fd(listen_watch_);
        listen_watch_ = 0;
    }
    if (listen_fd_) {
        listen_fd_.reset();
        ::unlink(path_.c_str());
    }
}

Result<nlohmann::json> control_request(const std::string &socket_path, const nlohmann::json &request,
                                       std::chrono::milliseconds timeout)
{
    auto addr = RESCUEVM_TRY(unix_address(socket_path));
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
        return fail("no agent answers on " + socket_path + ": " + errno_text(errno) +
                    " (is `rescuevm run` running? check `systemctl status rescuevm`)");
    std::string line = request.dump() + "\n";
    if (::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
        return fail("control socket " + socket_path + ": " + errno_text(errno));
    std::string in;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (in.find('\n') == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{fd.get(), POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            return fail("the agent did not answer within " + std::to_string(timeout.count() / 1000) + " s");
        char buf[4096];
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n <= 0)
            return fail("the agent closed the control connection without an answer");
        in.append(buf, static_cast<size_t>(n));
        if (in.size() > ControlServer::kMaxLine * 16)
            return fail("the agent's answer is too long");
    }
    auto reply = nlohmann::json::parse(in.substr(0, in.find('\n')), nullptr, false);
    if (reply.is_discarded())
        return fail("the agent's answer is not JSON");
    return reply;
}

} // namespace rescuevm
