// SPDX-License-Identifier: GPL-2.0-or-later
// `rescuevm vm console`: the caller's terminal attached to the guest's serial console (like `virsh console`), raw, Ctrl-] detaches, the terminal always restored.
#include "rescuevm/cli/cli.h"
#include "rescuevm/core/runtime_paths.h"
#include "rescuevm/sys/files.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <string>

namespace rescuevm {
namespace {

constexpr unsigned char kDefaultEscape = 0x1d; // Ctrl-], as virsh and telnet
constexpr std::size_t kOutMax = 64 * 1024;     // guest bytes waiting for a slow terminal
constexpr std::size_t kWriteChunk = 1024;      // ~90 ms at 115200 baud: the escape key stays quick
constexpr int kHelloTimeoutMs = 10'000;

// The terminal as it was, restored on every way out (also from a fatal signal's handler).
int g_tty_fd = -1;
termios g_saved{};
volatile sig_atomic_t g_raw = 0;

void restore_terminal()
{
    if (g_raw) {
        ::tcsetattr(g_tty_fd, TCSADRAIN, &g_saved);
        g_raw = 0;
    }
}

void fatal_signal(int signo)
{
    restore_terminal();
    ::signal(signo, SIG_DFL);
    ::raise(signo);
}

// Raw input and output, but the line's speed and framing (c_cflag) are left alone: on a
// serial line at 115200 8N1 they stay as the login set them.
bool enter_raw(int fd)
{
    if (::tcgetattr(fd, &g_saved) != 0)
        return false;
    termios raw = g_saved;
    raw.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    raw.c_oflag &= ~OPOST;
    raw.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    g_tty_fd = fd;
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT})
        ::signal(sig, fatal_signal);
    // TCSADRAIN, not TCSAFLUSH: what was typed ahead is kept, not thrown away.
    if (::tcsetattr(fd, TCSADRAIN, &raw) != 0)
        return false;
    g_raw = 1;
    return true;
}

struct TerminalGuard {
    ~TerminalGuard() { restore_terminal(); }
};

// "^]" (a control key), or one character.
bool parse_escape(const std::string &text, unsigned char &out)
{
    if (text.size() == 2 && text[0] == '^' && text[1] >= '@' && text[1] <= '_') {
        out = static_cast<unsigned char>(text[1] - '@');
        return true;
    }
    if (text.size() == 1) {
        out = static_cast<unsigned char>(text[0]);
        return true;
    }
    return false;
}

std::string escape_name(unsigned char c)
{
    return c < 0x20 ? fmt::format("Ctrl-{}", static_cast<char>(c + '@')) : std::string(1, static_cast<char>(c));
}

// Bounded wait for the agent's one-line answer; what follows it stays in `rest`.
Result<nlohmann::json> read_hello_reply(int fd, std::string &rest)
{
    std::string in;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kHelloTimeoutMs);
    while (in.find('\n') == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            return fail("the agent did not answer on its console socket within 10 s");
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0)
            return fail("the agent closed the console connection without an answer");
        in.append(buf, static_cast<std::size_t>(n));
        if (in.size() > 64 * 1024)
            return fail("the agent's answer is too long");
    }
    std::size_t nl = in.find('\n');
    rest = in.substr(nl + 1);
    auto reply = nlohmann::json::parse(in.substr(0, nl), nullptr, false);
    if (!reply.is_object())
        return fail("the agent's answer is not a JSON object");
    return reply;
}

bool write_all(int fd, std::string_view bytes)
{
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

struct ConsoleArgs {
    std::string mode = "rw";
    bool force = false;
    unsigned lines = 50;
    unsigned char escape = kDefaultEscape;
};

Result<ConsoleArgs> parse_console_args(const std::vector<std::string> &args)
{
    ConsoleArgs a;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string &arg = args[i];
        if (arg == "--force") {
            a.force = true;
        } else if (arg == "--read-only") {
            a.mode = "ro";
        } else if (arg == "--last") {
            a.mode = "tail";
            const std::string *n = i + 1 < args.size() ? &args[i + 1] : nullptr;
            if (n && !n->empty() && n->size() <= 4 && n->find_first_not_of("0123456789") == std::string::npos) {
                a.lines = std::min(200U, static_cast<unsigned>(std::stoul(*n)));
                ++i;
            }
        } else if (arg == "--escape") {
            if (i + 1 >= args.size() || !parse_escape(args[i + 1], a.escape))
                return fail("--escape needs a key such as ^] or ^O");
            ++i;
        } else {
            return fail("vm console: unknown option " + arg +
                        "; use --read-only, --force, --last [N] or --escape KEY");
        }
    }
    if (a.force && a.mode != "rw")
        return fail("vm console: --force takes the keyboard; it does not go with --read-only or --last");
    return a;
}

Result<UniqueFd> connect_console(const std::string &path)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        return fail("console socket path " + path + " is too long");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
        return fail("no agent answers on " + path + ": " + errno_text(errno) +
                    " (is `rescuevm run` running? check `systemctl status rescuevm`)");
    return fd;
}

// Guest bytes to stdout, typed bytes to the guest, until the escape key, an end or a signal.
// Returns the exit status.
int relay(int sock, const ConsoleArgs &args, std::string pending_out, int sigfd)
{
    std::string to_agent;
    bool stdin_open = true, agent_open = true;
    std::string farewell = "detached from the guest console";
    int status = kExitOk;
    while (agent_open) {
        pollfd fds[4] = {{sock, static_cast<short>((pending_out.size() < kOutMax ? POLLIN : 0) |
                                                   (to_agent.empty() ? 0 : POLLOUT)), 0},
                         {stdin_open ? STDIN_FILENO : -1, POLLIN, 0},
                         {pending_out.empty() ? -1 : STDOUT_FILENO, POLLOUT, 0},
                         {sigfd, POLLIN, 0}};
        int ready = ::poll(fds, 4, stdin_open ? -1 : 1000);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            farewell = "poll: " + errno_text(errno);
            status = kExitFailure;
            break;
        }
        if (ready == 0 && !stdin_open && pending_out.empty() && to_agent.empty())
            break; // the input ran dry (a pipe) and the guest has been quiet for a second
        if (fds[3].revents & POLLIN) {
            signalfd_siginfo si{};
            (void)!::read(sigfd, &si, sizeof si);
            farewell = fmt::format("detached from the guest console (signal {})", ::sigabbrev_np(si.ssi_signo));
            break;
        }
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[4096];
            ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
            if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN))) {
                stdin_open = false; // leave once the guest's answer had a moment
            } else if (n > 0) {
                std::string_view typed(buf, static_cast<std::size_t>(n));
                std::size_t esc = typed.find(static_cast<char>(args.escape));
                to_agent.append(typed.substr(0, esc));
                if (esc != std::string_view::npos) {
                    (void)!::send(sock, to_agent.data(), to_agent.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                    break;
                }
            }
        }
        if (fds[0].revents & POLLOUT) {
            ssize_t n = ::send(sock, to_agent.data(), to_agent.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                to_agent.erase(0, static_cast<std::size_t>(n));
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[16384];
            ssize_t n = ::read(sock, buf, sizeof buf);
            if (n > 0) {
                pending_out.append(buf, static_cast<std::size_t>(n));
            } else if (!(n < 0 && (errno == EINTR || errno == EAGAIN))) {
                agent_open = false;
                farewell = "the agent ended the console connection (the agent stopped, or dropped this console)";
                status = kExitFailure;
            }
        }
        if ((fds[2].revents & POLLOUT) || !agent_open) {
            std::size_t chunk = agent_open ? std::min(pending_out.size(), kWriteChunk) : pending_out.size();
            if (!write_all(STDOUT_FILENO, std::string_view(pending_out).substr(0, chunk))) {
                farewell = "cannot write to the terminal: " + errno_text(errno);
                status = kExitFailure;
                break;
            }
            pending_out.erase(0, chunk);
        }
    }
    restore_terminal();
    std::cerr << "\r\nrescuevm: " << farewell << "\n";
    return status;
}

} // namespace

int cmd_console(const CliOptions &cli, const Config &config)
{
    auto args = parse_console_args(cli.args);
    if (!args) {
        std::cerr << "rescuevm: " << args.error().message << "\n";
        return kExitUsage;
    }
    RuntimePaths paths{config.paths.runtime_dir};
    auto sock = connect_console(paths.console_clients_socket());
    if (!sock) {
        std::cerr << "rescuevm: " << sock.error().message << "\n";
        return kExitFailure;
    }
    // The terminal the guest's bytes go to: the agent holds its own log lines while one of
    // its console terminals is attached, so they never land in the middle of the guest's.
    int term = ::isatty(STDOUT_FILENO) ? STDOUT_FILENO : ::isatty(STDIN_FILENO) ? STDIN_FILENO : -1;
    nlohmann::json hello = {{"mode", args->mode}, {"force", args->force}, {"lines", args->lines}};
    struct stat st {};
    if (term >= 0 && ::fstat(term, &st) == 0) {
        char name[256] = {};
        if (::ttyname_r(term, name, sizeof name) == 0)
            hello["tty"] = name;
        hello["tty_dev"] = static_cast<unsigned long>(st.st_rdev);
    }
    std::string line = hello.dump() + "\n";
    if (!write_all(sock->get(), line)) {
        std::cerr << "rescuevm: console socket: " << errno_text(errno) << "\n";
        return kExitFailure;
    }
    std::string rest;
    auto reply = read_hello_reply(sock->get(), rest);
    if (!reply || !reply->value("ok", false)) {
        std::cerr << "rescuevm: " << (reply ? reply->value("error", "the agent refused") : reply.error().message)
                  << "\n";
        return kExitFailure;
    }
    if (args->mode == "tail") {
        write_all(STDOUT_FILENO, rest);
        char buf[16384];
        for (ssize_t n; (n = ::read(sock->get(), buf, sizeof buf)) > 0;)
            write_all(STDOUT_FILENO, std::string_view(buf, static_cast<std::size_t>(n)));
        return kExitOk;
    }

    ::signal(SIGPIPE, SIG_IGN);
    sigset_t signals;
    sigemptyset(&signals);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT})
        sigaddset(&signals, sig);
    ::sigprocmask(SIG_BLOCK, &signals, nullptr);
    UniqueFd sigfd(::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
    int flags = ::fcntl(sock->get(), F_GETFL);
    ::fcntl(sock->get(), F_SETFL, flags | O_NONBLOCK);

    // Raw before the banner: once it says "attached", every key goes to the guest as typed.
    TerminalGuard guard;
    if (::isatty(STDIN_FILENO) && !enter_raw(STDIN_FILENO))
        std::cerr << "rescuevm: cannot put the terminal in raw mode (" << errno_text(errno)
                  << "); keys are sent line by line\r\n";
    std::string mode = reply->value("mode", "rw") == "rw" ? "" : " READ-ONLY";
    std::cerr << fmt::format("rescuevm: attached to the guest's serial console (COM1){}; {} detaches\r\n"
                             "rescuevm: {}\r\n",
                             mode, escape_name(args->escape), reply->value("message", ""));
    return relay(sock->get(), *args, std::move(rest), sigfd.get());
}

} // namespace rescuevm
