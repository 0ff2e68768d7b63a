// SPDX-License-Identifier: GPL-2.0-or-later
// The DHCP client steps: dhclient and dhcpcd through their own commands and control socket, busybox udhcpc through its signals.
#include "stack_handover.h"

#include "rescuevm/host/dhcp_clients.h"
#include "rescuevm/sys/files.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/sys/unique_fd.h"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>

namespace rescuevm::net {

namespace {

auto logger() { return log::get("network"); }

std::string who(const HandoverStep &s)
{
    return fmt::format("{}{} pid {}", s.program, s.kind == HandoverStep::Kind::dhcpcd_manager ? " (manager)" : "", s.pid);
}

bool ended(const ProcessHandle &p, std::chrono::milliseconds limit)
{
    pollfd fd{p.pidfd.get(), POLLIN, 0};
    return ::poll(&fd, 1, static_cast<int>(limit.count())) > 0;
}

// The recorded client process, pinned by a pidfd; nullopt once it has ended (also as a
// zombie nobody reaped yet) or its pid belongs to another process now.
std::optional<ProcessHandle> pin(const HandoverStep &s)
{
    auto handle = attach(s.pid, s.start_time);
    if (!handle || ended(*handle, std::chrono::milliseconds(0)))
        return std::nullopt;
    return std::move(*handle);
}

// ---- dhcpcd's control socket ---------------------------------------------------------

Result<void> read_exact(int fd, void *buffer, std::size_t size, const std::string &socket)
{
    auto *p = static_cast<char *>(buffer);
    while (size > 0) {
        ssize_t n = ::read(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail("network: dhcpcd did not answer on " + socket + " (" +
                        (n == 0 ? std::string("it closed the connection")
                         : errno == EAGAIN ? std::string("nothing within 5 s")
                                           : errno_text(errno)) +
                        "); dhcpcd 9.4 answers no more commands after one it sent no reply to (such as "
                        "`dhcpcd -U` of an interface it does not serve) until it is restarted");
        p += n;
        size -= static_cast<std::size_t>(n);
    }
    return {};
}

// Sends `words` ("dhcpcd", "-x", "eth0") as one command. With `dump` (a "-U" command)
// returns how many state blocks dhcpcd sent: 0 when it does not serve the interface.
Result<std::uint64_t> dhcpcd_command(const std::string &socket, const std::vector<std::string> &words, bool dump)
{
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd)
        return fail("network: socket: " + errno_text(errno));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket.size() >= sizeof addr.sun_path)
        return fail("network: dhcpcd control socket path too long: " + socket);
    std::memcpy(addr.sun_path, socket.c_str(), socket.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
        return fail("network: cannot reach dhcpcd on " + socket + ": " + errno_text(errno));
    timeval timeout{5, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    std::string message = dhcpcd_control_message(words);
    if (::send(fd.get(), message.data(), message.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(message.size()))
        return fail("network: cannot send to dhcpcd on " + socket + ": " + errno_text(errno));
    std::uint64_t blocks = 0;
    if (dump) {
        RESCUEVM_TRY(read_exact(fd.get(), &blocks, sizeof blocks, socket));
        if (blocks > 64)
            return fail("network: dhcpcd on " + socket + " sent an implausible reply");
        std::string skip;
        for (std::uint64_t i = 0; i < blocks; ++i) {
            std::uint64_t length = 0;
            RESCUEVM_TRY(read_exact(fd.get(), &length, sizeof length, socket));
            if (length > 1 << 16)
                return fail("network: dhcpcd on " + socket + " sent an implausible reply");
            skip.resize(length);
            RESCUEVM_TRY(read_exact(fd.get(), skip.data(), length, socket));
        }
    }
    // The reply to "--version": dhcpcd has handled the command before it.
    std::uint64_t length = 0;
    RESCUEVM_TRY(read_exact(fd.get(), &length, sizeof length, socket));
    if (length > 256)
        return fail("network: dhcpcd on " + socket + " sent an implausible reply");
    std::string version(length, '\0');
    RESCUEVM_TRY(read_exact(fd.get(), version.data(), length, socket));
    return blocks;
}

// Whether the manager serves `iface` (0 state blocks: it does not); nullopt when it cannot say.
std::optional<bool> dhcpcd_serves(const std::string &socket, const std::string &iface)
{
    auto blocks = dhcpcd_command(socket, {"dhcpcd", "-U", iface}, true);
    if (!blocks)
        return std::nullopt;
    return *blocks > 0;
}

Result<void> manager_let_go(const HandoverStep &s, const HandoverContext &c)
{
    RESCUEVM_TRY(dhcpcd_command(s.control_socket, {"dhcpcd", "-x", c.uplink}, false));
    std::optional<bool> serves;
    if (!wait_until([&] {
            serves = dhcpcd_serves(s.control_socket, c.uplink);
            return serves == false;
        }, std::chrono::seconds(5)))
        return fail(fmt::format("network: {} still serves {} 5 s after -x {} on {}", who(s), c.uplink, c.uplink,
                                s.control_socket));
    logger()->info("{} let go of {} (-x {} on {}); its other interfaces keep their leases", who(s), c.uplink,
                   c.uplink, s.control_socket);
    return {};
}

Result<void> udhcpc_signal(const HandoverStep &s, const HandoverContext &c, int signo)
{
    auto process = pin(s);
    if (!process)
        return fail(fmt::format("network: {} serving {} is gone: start it again by hand (rescuevm never replays a "
                                "command line)",
                                who(s), c.uplink));
    return send_signal(process->pidfd.get(), signo);
}

} // namespace

Result<void> let_go_dhcp_client(const HandoverStep &s, const HandoverContext &c)
{
    switch (s.kind) {
    case HandoverStep::Kind::dhclient:
    case HandoverStep::Kind::dhcpcd: {
        auto process = pin(s);
        if (!process) {
            logger()->info("{} serving {} has already ended", who(s), c.uplink);
            return {};
        }
        RESCUEVM_TRY(run_command(handover_stop_command(s, c.uplink), std::chrono::seconds(20)));
        if (!ended(*process, std::chrono::seconds(5)))
            return fail(fmt::format("network: {} still runs 5 s after `{} -x`: stop it by hand, or set "
                                    "network.mode = \"none\"",
                                    who(s), s.program));
        logger()->info("{} stopped for the session ({} -x)", who(s), s.program);
        return {};
    }
    case HandoverStep::Kind::dhcpcd_manager:
        if (!pin(s)) {
            logger()->info("{} has already ended", who(s));
            return {};
        }
        return manager_let_go(s, c);
    case HandoverStep::Kind::udhcpc:
        RESCUEVM_TRY(udhcpc_signal(s, c, SIGUSR2));
        // Released, it closes its socket (a bound one holds none; one still asking holds one).
        if (!wait_until([&] { return !holds_dhcp_socket(c.proc_root, s.pid); }, std::chrono::seconds(5)))
            return fail(fmt::format("network: {} still holds its DHCP socket 5 s after SIGUSR2: it did not release "
                                    "{}; stop it by hand, or set network.mode = \"none\"",
                                    who(s), c.uplink));
        logger()->info("{} released its lease on {} and idles (SIGUSR2)", who(s), c.uplink);
        return {};
    case HandoverStep::Kind::networkd:
        break;
    }
    return fail("network: not a DHCP client step");
}

Result<void> keep_dhcpcd_off(const HandoverStep &s, const HandoverContext &c)
{
    if (!pin(s))
        return {};
    // The manager adds a new interface when netlink (or udev) announces it: tell it to
    // stop as soon as it serves the macvtap, and check for a while that it stays so.
    bool seen = false;
    std::optional<bool> serves;
    wait_until([&] {
        serves = dhcpcd_serves(s.control_socket, c.macvtap);
        if (serves == true) {
            seen = true;
            (void)dhcpcd_command(s.control_socket, {"dhcpcd", "-x", c.macvtap}, false);
            return false;
        }
        return seen && serves == false;
    }, std::chrono::seconds(2));
    if (serves != false)
        return fail(fmt::format("network: {} serves the macvtap {} and does not let go of it (-x {} on {})", who(s),
                                c.macvtap, c.macvtap, s.control_socket));
    logger()->info("{} {} the macvtap {}", who(s), seen ? "let go of" : "does not serve", c.macvtap);
    return {};
}

Result<void> take_back_dhcp_client(const HandoverStep &s, const HandoverContext &c)
{
    switch (s.kind) {
    case HandoverStep::Kind::dhclient:
    case HandoverStep::Kind::dhcpcd: {
        if (pin(s)) {
            logger()->info("{} still runs: nothing to start", who(s));
            return {};
        }
        StackPaths paths;
        paths.proc_root = c.proc_root;
        for (const auto &client : find_dhcp_clients(paths, c.uplink))
            if (client.name == s.program) {
                logger()->info("{} pid {} serves {} already: nothing to start", client.name, client.pid, c.uplink);
                return {};
            }
        RESCUEVM_TRY(run_command(handover_start_command(s, c.uplink), std::chrono::seconds(30)));
        logger()->info("{} serves {} again ({})", s.program, c.uplink,
                       s.kind == HandoverStep::Kind::dhclient ? "dhclient -nw, same pid and lease files" : "dhcpcd -b");
        return {};
    }
    case HandoverStep::Kind::dhcpcd_manager: {
        if (!pin(s))
            return fail(fmt::format("network: {} is gone: start dhcpcd again by hand", who(s)));
        RESCUEVM_TRY(dhcpcd_command(s.control_socket, {"dhcpcd", "-n", c.uplink}, false));
        // dhcpcd accepted -n (its addresses and routes are already back); whether it
        // shows the uplink again (-U) is only logged: its answer to -U can lag or never
        // come while it rebinds, and the uplink works either way.
        if (!wait_until([&] { return dhcpcd_serves(s.control_socket, c.uplink) == true; }, std::chrono::seconds(5))) {
            logger()->warn("{} accepted -n {} but does not list {} 5 s later: look at `dhcpcd -U {}`", who(s),
                           c.uplink, c.uplink, c.uplink);
            return {};
        }
        logger()->info("{} serves {} again (-n {})", who(s), c.uplink, c.uplink);
        return {};
    }
    case HandoverStep::Kind::udhcpc:
        RESCUEVM_TRY(udhcpc_signal(s, c, SIGUSR1));
        logger()->info("{} asks for a lease on {} again (SIGUSR1)", who(s), c.uplink);
        return {};
    case HandoverStep::Kind::networkd:
        break;
    }
    return fail("network: not a DHCP client step");
}

} // namespace rescuevm::net
