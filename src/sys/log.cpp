// SPDX-License-Identifier: GPL-2.0-or-later
// The agent's logging: which sinks (journal, console, file) and the line format the serial console shows.
#include "rescuevm/sys/log.h"

#include "log_sinks.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/systemd_sink.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <spdlog/sinks/base_sink.h>

#include <spdlog/details/log_msg_buffer.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

namespace rescuevm::log {
namespace {

// "2026-11-22T19:40:00.123Z WARNING disks: message"; UTC so the serial log of a
// fleet lines up whatever the rescue system's timezone is.
constexpr const char *kPattern = "%Y-%m-%dT%H:%M:%S.%eZ %^%*%$ %n: %v";

// Upper-case level names padded to one width ("WARNING", "INFO   "): easy to grep
// on a serial log, and the same in every locale.
class LevelFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg &msg, const std::tm &, spdlog::memory_buf_t &dest) override
    {
        static const char *kNames[] = {"TRACE  ", "DEBUG  ", "INFO   ", "WARNING", "ERROR  ", "FATAL  ", "       "};
        const char *name = kNames[static_cast<int>(msg.level)];
        dest.append(name, name + 7);
    }
    std::unique_ptr<custom_flag_formatter> clone() const override
    {
        return std::make_unique<LevelFlag>();
    }
};

using sinks::HoldSink;
using sinks::kQueueBytes;
using sinks::QueueSink;

std::mutex g_mutex;
std::vector<spdlog::sink_ptr> g_sinks;
std::vector<std::shared_ptr<HoldSink>> g_held_sinks; // the sinks that reach a terminal
std::vector<unsigned long> g_terminals;              // their terminals' st_rdev
unsigned g_holds = 0;
spdlog::level::level_enum g_level = spdlog::level::info;

// stderr is the stream systemd connected to the journal (JOURNAL_STREAM="dev:inode").
bool stderr_is_journal()
{
    const char *env = std::getenv("JOURNAL_STREAM");
    unsigned long dev = 0, ino = 0;
    struct stat st {};
    return env && std::sscanf(env, "%lu:%lu", &dev, &ino) == 2 && ::fstat(STDERR_FILENO, &st) == 0 &&
           st.st_dev == dev && st.st_ino == ino;
}

std::string first_line_of(const std::string &path)
{
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

// The terminals /dev/console writes to (tty0 is the foreground virtual terminal).
std::vector<unsigned long> system_console_terminals()
{
    std::vector<unsigned long> out;
    std::istringstream names(first_line_of("/sys/class/tty/console/active"));
    std::string name;
    while (names >> name) {
        if (name == "tty0")
            name = first_line_of("/sys/class/tty/tty0/active");
        struct stat st {};
        if (!name.empty() && ::stat(("/dev/" + name).c_str(), &st) == 0 && S_ISCHR(st.st_mode))
            out.push_back(st.st_rdev);
    }
    return out;
}

unsigned long terminal_of(int fd)
{
    struct stat st {};
    return ::isatty(fd) && ::fstat(fd, &st) == 0 ? st.st_rdev : 0;
}

std::unique_ptr<spdlog::formatter> make_formatter()
{
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<LevelFlag>('*').set_pattern(kPattern);
    return f;
}

speed_t baud(unsigned speed)
{
    switch (speed) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 230400: return B230400;
    case 460800: return B460800;
    case 921600: return B921600;
    default: return B115200;
    }
}

// Sets the console's line speed; a pty or file is left alone.
void configure_tty(const std::string &device, unsigned speed)
{
    int fd = ::open(device.c_str(), O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    termios t{};
    if (::tcgetattr(fd, &t) == 0) {
        ::cfsetospeed(&t, baud(speed));
        ::cfsetispeed(&t, baud(speed));
        t.c_oflag |= OPOST | ONLCR; // plain "\n" becomes CRLF on a serial line
        ::tcsetattr(fd, TCSANOW, &t);
    }
    ::close(fd);
}

// True when stderr already writes to that device (the boot script runs the
// agent on the console): a second sink would print every line twice.
bool stderr_is(const std::string &device)
{
    struct stat console {}, err {};
    return ::stat(device.c_str(), &console) == 0 && ::fstat(STDERR_FILENO, &err) == 0 &&
           S_ISCHR(console.st_mode) && S_ISCHR(err.st_mode) && console.st_rdev == err.st_rdev;
}

// log.console must name a terminal: a file or a block device would be written to as root.
std::string console_device_problem(const std::string &device)
{
    struct stat st {};
    if (::lstat(device.c_str(), &st) != 0)
        return std::strerror(errno);
    if (!S_ISCHR(st.st_mode))
        return "not a character device (a terminal such as ttyS0 is expected)";
    int fd = ::open(device.c_str(), O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return std::strerror(errno);
    bool tty = ::isatty(fd);
    ::close(fd);
    return tty ? "" : "not a terminal";
}

void apply_sinks_to_all()
{
    spdlog::apply_all([](const std::shared_ptr<spdlog::logger> &logger) {
        logger->sinks() = g_sinks;
        logger->set_level(g_level);
        logger->set_formatter(make_formatter());
    });
}

void ensure_default_sinks()
{
    if (!g_sinks.empty())
        return;
    auto sink = std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>(spdlog::color_mode::automatic);
    g_sinks.push_back(sink);
}

} // namespace

bool parse_level(const std::string &name, spdlog::level::level_enum &out)
{
    static const std::pair<const char *, spdlog::level::level_enum> kLevels[] = {
        {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
        {"info", spdlog::level::info},   {"warning", spdlog::level::warn},
        {"warn", spdlog::level::warn},   {"error", spdlog::level::err},
    };
    for (const auto &[n, l] : kLevels) {
        if (name == n) {
            out = l;
            return true;
        }
    }
    return false;
}

void setup(const Options &options)
{
    std::lock_guard lock(g_mutex);
    g_sinks.clear();
    g_held_sinks.clear();
    g_terminals.clear();
    // A sink that reaches terminals gets a HoldSink around it (see hold_console()).
    auto add_terminal_sink = [](spdlog::sink_ptr sink, std::vector<unsigned long> terminals,
                                spdlog::sink_ptr journal) {
        terminals.erase(std::remove(terminals.begin(), terminals.end(), 0UL), terminals.end());
        if (terminals.empty()) {
            g_sinks.push_back(std::move(sink));
            return;
        }
        auto held = std::make_shared<HoldSink>(std::move(sink), std::move(journal));
        for (unsigned i = 0; i < g_holds; ++i)
            held->hold();
        g_held_sinks.push_back(held);
        g_sinks.push_back(held);
        g_terminals.insert(g_terminals.end(), terminals.begin(), terminals.end());
    };
    if (!options.journal || ::isatty(STDERR_FILENO)) {
        spdlog::sink_ptr err;
        if (options.nonblocking && !::isatty(STDERR_FILENO))
            err = std::make_shared<QueueSink>(STDERR_FILENO, false, kQueueBytes);
        else
            err = std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>(spdlog::color_mode::automatic);
        if (::isatty(STDERR_FILENO))
            add_terminal_sink(err, {terminal_of(STDERR_FILENO)}, nullptr);
        else if (stderr_is_journal()) // journal+console: journald writes each line to /dev/console
            add_terminal_sink(err, system_console_terminals(),
                              std::make_shared<spdlog::sinks::systemd_sink_mt>("rescuevm", false));
        else
            g_sinks.push_back(err);
    }
    if (options.journal)
        g_sinks.push_back(std::make_shared<spdlog::sinks::systemd_sink_mt>("rescuevm", true));
    std::string console_problem;
    if (!options.console.empty() && !stderr_is(options.console)) {
        if (std::string problem = console_device_problem(options.console); !problem.empty()) {
            console_problem = problem;
        } else {
            configure_tty(options.console, options.console_speed);
            int fd = ::open(options.console.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
            if (fd < 0)
                console_problem = std::strerror(errno);
            else // the console is only the agent's: always through the queue
                add_terminal_sink(std::make_shared<QueueSink>(fd, true, kQueueBytes), {terminal_of(fd)}, nullptr);
        }
    }
    spdlog::level::level_enum level = spdlog::level::info;
    parse_level(options.level, level);
    g_level = level;
    apply_sinks_to_all();
    if (!console_problem.empty()) {
        if (auto logger = spdlog::get("log"))
            logger->warn("cannot write the log to console {}: {}; logging to stderr only, ignoring",
                         options.console, console_problem);
        else
            spdlog::warn("cannot write the log to console {}: {}; logging to stderr only, ignoring",
                         options.console, console_problem);
    }
}

std::vector<unsigned long> console_terminals()
{
    std::lock_guard lock(g_mutex);
    return g_terminals;
}

void hold_console()
{
    std::lock_guard lock(g_mutex);
    g_holds++;
    for (auto &sink : g_held_sinks)
        sink->hold();
}

void release_console()
{
    std::lock_guard lock(g_mutex);
    if (g_holds == 0)
        return;
    g_holds--;
    for (auto &sink : g_held_sinks)
        sink->release();
}

std::shared_ptr<spdlog::logger> get(const std::string &subsystem)
{
    std::lock_guard lock(g_mutex);
    if (auto existing = spdlog::get(subsystem))
        return existing;
    ensure_default_sinks();
    auto logger = std::make_shared<spdlog::logger>(subsystem, g_sinks.begin(), g_sinks.end());
    logger->set_level(g_level);
    logger->set_formatter(make_formatter());
    logger->flush_on(spdlog::level::trace); // a serial console reader sees every line at once
    spdlog::register_logger(logger);
    return logger;
}

} // namespace rescuevm::log
