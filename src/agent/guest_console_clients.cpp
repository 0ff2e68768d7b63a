// SPDX-License-Identifier: GPL-2.0-or-later
// GuestConsole, the clients' side: console.sock, the hello, one keyboard at a time, bounded queues, stalled clients dropped.
#include "rescuevm/agent/guest_console.h"

#include "rescuevm/core/console_tail.h"
#include "rescuevm/core/guest_agent_protocol.h"
#include "rescuevm/sys/files.h"
#include "rescuevm/sys/log.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rescuevm {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMaxHello = 4096;
constexpr auto kHelloDeadline = 5s;
constexpr std::int64_t kReadOnlyNoticeEveryMs = 10'000;
constexpr std::size_t kMaxTailLines = 200;

std::string notice(const std::string &text)
{
    return "\r\n[rescuevm: " + text + "]\r\n";
}

} // namespace

Result<void> GuestConsole::listen()
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string &path = options_.clients_socket;
    if (path.size() >= sizeof addr.sun_path)
        return fail("console socket path " + path + " is too long: choose a shorter paths.runtime_dir");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd)
        return fail("console socket: " + errno_text(errno));
    loop_.remove_fd(std::exchange(listen_watch_, 0));
    listen_fd_.reset();
    ::unlink(path.c_str());
    mode_t old = ::umask(0177); // born 0600: root only
    int rc = ::bind(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr);
    ::umask(old);
    if (rc != 0 || ::listen(fd.get(), 8) != 0)
        return fail("console socket " + path + ": " + errno_text(errno));
    struct stat st {};
    socket_ino_ = ::lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
    listen_fd_ = std::move(fd);
    listen_watch_ = RESCUEVM_TRY(loop_.add_fd(listen_fd_.get(), EPOLLIN, [this](std::uint32_t) { accept_clients(); }));
    return {};
}

bool GuestConsole::socket_present() const
{
    struct stat st {};
    return listen_fd_ && ::lstat(options_.clients_socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
           st.st_ino == socket_ino_;
}

void GuestConsole::close()
{
    while (!clients_.empty())
        drop(clients_.begin()->first, "");
    loop_.remove_fd(std::exchange(listen_watch_, 0));
    if (listen_fd_) {
        listen_fd_.reset();
        ::unlink(options_.clients_socket.c_str());
    }
    socket_ino_ = 0;
    loop_.cancel_timer(std::exchange(connect_timer_, 0));
    loop_.remove_fd(std::exchange(serial_watch_, 0));
    serial_.reset();
    serial_connected_ = false;
    qemu_present_ = false;
}

void GuestConsole::accept_clients()
{
    for (;;) {
        UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!fd)
            return;
        ucred cred{};
        socklen_t len = sizeof cred;
        std::string refusal;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != 0)
            refusal = "the guest console is for root only";
        else if (clients_.size() >= kMaxClients)
            refusal = fmt::format("{} consoles are attached already, the most there may be: detach one first",
                                  kMaxClients);
        if (!refusal.empty()) {
            std::string line = nlohmann::json{{"ok", false}, {"error", refusal}}.dump() + "\n";
            (void)!::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            continue;
        }
        std::uint64_t id = next_client_++;
        auto watch = loop_.add_fd(fd.get(), EPOLLIN | EPOLLRDHUP, [this, id](std::uint32_t ev) { on_client(id, ev); });
        if (!watch)
            continue;
        Client &c = clients_[id];
        c.fd = std::move(fd);
        c.watch = *watch;
        c.pid = cred.pid;
        c.hello_timer = loop_.add_timer(kHelloDeadline, [this, id] {
            if (auto it = clients_.find(id); it != clients_.end()) {
                it->second.hello_timer = 0;
                drop(id, "it sent no hello line");
            }
        });
    }
}

void GuestConsole::on_client(std::uint64_t id, std::uint32_t revents)
{
    if (revents & EPOLLOUT)
        flush_client(id);
    if (clients_.count(id) && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
        read_client(id);
}

void GuestConsole::read_client(std::uint64_t id)
{
    auto it = clients_.find(id);
    if (it == clients_.end())
        return;
    Client &c = it->second;
    char buf[4096];
    ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0)
        return drop(id, ""); // detached (or gone): nothing to say
    std::string_view bytes(buf, static_cast<std::size_t>(n));
    if (c.attached)
        return typed(id, bytes);
    std::size_t nl = bytes.find('\n');
    c.in.append(bytes.substr(0, nl));
    if (c.in.size() > kMaxHello)
        return drop(id, "its hello line is too long");
    if (nl != std::string_view::npos) {
        std::string line;
        line.swap(c.in);
        hello(id, line, std::string(bytes.substr(nl + 1)));
    }
}

void GuestConsole::hello(std::uint64_t id, const std::string &line, std::string rest)
{
    Client &c = clients_.at(id);
    loop_.cancel_timer(std::exchange(c.hello_timer, 0));
    auto request = nlohmann::json::parse(line, nullptr, false);
    auto refuse = [&](const std::string &why) {
        std::string reply = nlohmann::json{{"ok", false}, {"error", why}}.dump() + "\n";
        (void)!::send(c.fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        drop(id, "");
    };
    if (!request.is_object())
        return refuse("the first line must be a JSON object such as {\"mode\":\"rw\"}");
    auto text = [&](const char *key) {
        auto f = request.find(key);
        return f != request.end() && f->is_string() ? f->get<std::string>().substr(0, 256) : std::string();
    };
    std::string mode = text("mode");
    if (mode != "rw" && mode != "ro" && mode != "tail")
        return refuse("mode must be rw, ro or tail");
    auto force_field = request.find("force"); // untrusted: no value() that throws on a wrong type
    bool force = force_field != request.end() && force_field->is_boolean() && force_field->get<bool>();
    c.tty = guest_text(text("tty"), 64);
    auto dev = request.find("tty_dev");
    unsigned long tty_dev = dev != request.end() && dev->is_number_unsigned() ? dev->get<unsigned long>() : 0;

    nlohmann::json reply = {{"ok", true}, {"mode", mode}};
    if (mode == "tail") {
        auto asked = request.find("lines");
        std::size_t lines = asked != request.end() && asked->is_number_unsigned()
                                ? static_cast<std::size_t>(std::min<std::uint64_t>(asked->get<std::uint64_t>(),
                                                                                   kMaxTailLines))
                                : 50;
        c.tail = true;
        c.attached = true;
        std::string out = reply.dump() + "\n";
        for (const auto &l : tail_.last(lines))
            out += l + "\n";
        send(id, out, true);
        if (clients_.count(id) && clients_.at(id).out.empty())
            drop(id, "");
        return;
    }
    std::string message;
    auto holder = std::find_if(clients_.begin(), clients_.end(), [](const auto &kv) { return kv.second.writer; });
    if (mode == "rw" && holder != clients_.end() && !force) {
        mode = "ro";
        message = fmt::format("another console ({}) has the keyboard: this one is READ-ONLY. `rescuevm vm console "
                              "--force` takes the keyboard over",
                              describe(holder->second));
    } else if (mode == "rw" && holder != clients_.end()) {
        holder->second.writer = false;
        std::uint64_t former = holder->first;
        send(former, notice(fmt::format("{} took the keyboard over (--force): this console is now READ-ONLY",
                                        describe(c))),
             true);
        if (clients_.count(former) && !clients_.at(former).reading) {
            clients_.at(former).reading = true;
            update_client_watch(former);
        }
        message = "you have the keyboard (taken over from the console that had it)";
    } else if (mode == "rw") {
        message = "you have the keyboard";
    } else {
        message = "read-only: what you type goes nowhere";
    }
    c.writer = mode == "rw";
    c.attached = true;
    std::vector<unsigned long> terminals = log::console_terminals();
    if (tty_dev != 0 && std::find(terminals.begin(), terminals.end(), tty_dev) != terminals.end()) {
        c.holds_log = true;
        log::hold_console(); // the agent's log lines would land between the guest's bytes
        message += "; the agent's log lines on this terminal wait until you detach";
    }
    reply["mode"] = mode;
    reply["message"] = message;
    if (!serial_connected_)
        reply["message"] = message + "; the VM's serial port is not connected now (no QEMU running?)";
    log::get("console")->info("{} attached to the guest console ({})", describe(c),
                              c.writer ? "with the keyboard" : "read-only");
    send(id, reply.dump() + "\n", true);
    if (clients_.count(id) && !rest.empty())
        typed(id, rest);
}

void GuestConsole::typed(std::uint64_t id, std::string_view bytes)
{
    Client &c = clients_.at(id);
    if (!c.writer) {
        std::int64_t now = now_ms();
        if (now - c.readonly_notice_ms >= kReadOnlyNoticeEveryMs) {
            c.readonly_notice_ms = now;
            send(id, notice("read-only console: what you type goes nowhere (another console has the keyboard; "
                            "--force takes it)"),
                 true);
        }
        return;
    }
    if (!serial_connected_)
        return; // no guest to type to: dropped, as on an unplugged serial line
    to_guest_.append(bytes);
    flush_guest();
    if (to_guest_.size() >= kGuestQueue && clients_.count(id)) {
        // The guest does not read: stop reading this client (its own buffers fill up).
        clients_.at(id).reading = false;
        update_client_watch(id);
    }
}

void GuestConsole::send(std::uint64_t id, std::string_view bytes, bool is_notice)
{
    auto it = clients_.find(id);
    if (it == clients_.end())
        return;
    Client &c = it->second;
    if (!is_notice && c.out.size() + bytes.size() > kClientQueue) {
        c.skipped += bytes.size(); // this terminal is slower than the guest: skip, never wait
        return;
    }
    if (!is_notice && c.skipped > 0 && c.out.size() < kClientQueue / 2) {
        c.out += notice(fmt::format("{} bytes of guest output skipped: this terminal is slower than the guest",
                                    c.skipped));
        c.skipped = 0;
    }
    c.out.append(bytes);
    flush_client(id);
}

void GuestConsole::flush_client(std::uint64_t id)
{
    auto it = clients_.find(id);
    if (it == clients_.end())
        return;
    Client &c = it->second;
    std::size_t before = c.out.size();
    while (!c.out.empty()) {
        ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0)
            return drop(id, "");
        c.out.erase(0, static_cast<std::size_t>(n));
    }
    if (c.out.empty())
        c.stalled_since_ms = -1;
    else if (c.out.size() < before || c.stalled_since_ms < 0)
        c.stalled_since_ms = now_ms(); // progress (or the first wait) restarts the clock
    if (c.tail && c.out.empty())
        return drop(id, "");
    update_client_watch(id);
}

void GuestConsole::update_client_watch(std::uint64_t id)
{
    Client &c = clients_.at(id);
    std::uint32_t events = EPOLLRDHUP | (c.reading ? EPOLLIN : 0u) | (c.out.empty() ? 0u : EPOLLOUT);
    if (auto r = loop_.modify_fd(c.watch, events); !r)
        log::get("console")->error("{}", r.error().message);
}

void GuestConsole::drop(std::uint64_t id, const std::string &why)
{
    auto it = clients_.find(id);
    if (it == clients_.end())
        return;
    Client &c = it->second;
    if (c.attached && !c.tail)
        log::get("console")->info("{} detached from the guest console{}", describe(c),
                                  why.empty() ? "" : " (dropped: " + why + ")");
    else if (!why.empty())
        log::get("console")->warn("guest console client dropped: {}", why);
    loop_.remove_fd(c.watch);
    loop_.cancel_timer(c.hello_timer);
    bool held = c.holds_log;
    clients_.erase(it);
    if (held)
        log::release_console();
}

void GuestConsole::notify_all(const std::string &text)
{
    std::vector<std::uint64_t> ids;
    for (const auto &[id, c] : clients_)
        if (c.attached && !c.tail)
            ids.push_back(id);
    for (auto id : ids)
        send(id, notice(text), true);
}

std::string GuestConsole::describe(const Client &c) const
{
    std::string who = c.pid > 0 ? fmt::format("pid {}", c.pid) : "a client";
    return c.tty.empty() ? who : who + " on " + c.tty;
}

unsigned GuestConsole::clients() const
{
    return static_cast<unsigned>(std::count_if(clients_.begin(), clients_.end(),
                                                [](const auto &kv) { return kv.second.attached && !kv.second.tail; }));
}

std::string GuestConsole::writer() const
{
    for (const auto &[id, c] : clients_)
        if (c.writer)
            return describe(c);
    return {};
}

} // namespace rescuevm
