// SPDX-License-Identifier: GPL-2.0-or-later
// GuestConsole, the guest's side: QEMU's serial socket read at once (a slow reader stalls the guest), the rotated log, the in-memory tail.
#include "rescuevm/agent/guest_console.h"

#include "rescuevm/sys/files.h"
#include "rescuevm/sys/log.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rescuevm {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr auto kMaxRetryDelay = 500ms;
constexpr auto kHousekeeping = 5s;

} // namespace

// ---- ConsoleLog ------------------------------------------------------------------------

ConsoleLog::ConsoleLog(std::string path, std::string previous, std::uint64_t limit)
    : path_(std::move(path)), previous_(std::move(previous)), limit_(std::max<std::uint64_t>(limit, 1))
{
}

bool ConsoleLog::open()
{
    fd_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600));
    struct stat st {};
    if (!fd_ || ::fstat(fd_.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        int err = fd_ ? EINVAL : errno;
        fd_.reset();
        if (!failing_)
            log::get("console")->warn("guest console log {}: {}; the guest's output is not logged until it can be "
                                      "written, ignoring",
                                      path_, err == EINVAL ? "not a regular file" : errno_text(err));
        failing_ = true;
        return false;
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
    return true;
}

void ConsoleLog::rotate()
{
    fd_.reset();
    if (::rename(path_.c_str(), previous_.c_str()) != 0 && errno != ENOENT)
        ::unlink(path_.c_str()); // the log stays bounded even when the rename fails
    rotations_++;
    open();
    size_ = 0;
}

void ConsoleLog::append(std::string_view bytes)
{
    while (!bytes.empty()) {
        ssize_t n = ::write(fd_.get(), bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (!failing_)
                log::get("console")->warn("guest console log {}: {}; dropping the guest's output until it can be "
                                          "written, ignoring",
                                          path_, errno_text(n < 0 ? errno : ENOSPC));
            failing_ = true;
            return;
        }
        size_ += static_cast<std::uint64_t>(n);
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    if (failing_)
        log::get("console")->info("guest console log {} is written again", path_);
    failing_ = false;
}

void ConsoleLog::write(std::string_view bytes)
{
    if (!fd_ && !open())
        return;
    while (!bytes.empty()) {
        if (size_ >= limit_) {
            rotate();
            if (!fd_)
                return;
        }
        std::size_t room = static_cast<std::size_t>(std::min<std::uint64_t>(limit_ - size_, bytes.size()));
        append(bytes.substr(0, room));
        if (failing_)
            return;
        bytes.remove_prefix(room);
    }
}

void ConsoleLog::check_file()
{
    if (!fd_)
        return;
    struct stat ours {}, there {};
    if (::fstat(fd_.get(), &ours) == 0 && ::lstat(path_.c_str(), &there) == 0 && ours.st_dev == there.st_dev &&
        ours.st_ino == there.st_ino)
        return;
    open(); // removed or replaced: a new file at the path
}

// ---- GuestConsole: QEMU's side ---------------------------------------------------------

GuestConsole::GuestConsole(EventLoop &loop, GuestConsoleOptions options, OutputCallback on_output)
    : loop_(loop), options_(std::move(options)), on_output_(std::move(on_output)),
      log_(options_.log_path, options_.log_previous, options_.log_size)
{
    housekeeping_timer_ = loop_.add_timer(kHousekeeping, [this] { housekeeping(); });
}

GuestConsole::~GuestConsole()
{
    close();
    loop_.cancel_timer(housekeeping_timer_);
}

std::int64_t GuestConsole::now_ms() const
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void GuestConsole::connect_qemu(std::chrono::milliseconds deadline)
{
    loop_.cancel_timer(std::exchange(connect_timer_, 0));
    loop_.remove_fd(std::exchange(serial_watch_, 0));
    serial_.reset();
    serial_connected_ = false;
    qemu_present_ = true;
    connect_until_ = std::chrono::steady_clock::now() + deadline;
    retry_delay_ = 10ms;
    connect_timer_ = loop_.add_timer(0ms, [this] { try_connect(); });
}

void GuestConsole::try_connect()
{
    connect_timer_ = 0;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (options_.serial_socket.size() >= sizeof addr.sun_path) {
        log::get("console")->error("guest serial socket path {} is too long for a unix socket: choose a shorter "
                                   "paths.runtime_dir",
                                   options_.serial_socket);
        return;
    }
    std::memcpy(addr.sun_path, options_.serial_socket.c_str(), options_.serial_socket.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd && ::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0) {
        serial_ = std::move(fd);
        serial_connected_ = true;
        auto watch = loop_.add_fd(serial_.get(), EPOLLIN | EPOLLRDHUP, [this](std::uint32_t ev) { on_serial(ev); });
        if (!watch) {
            log::get("console")->error("{}", watch.error().message);
            serial_.reset();
            serial_connected_ = false;
            return;
        }
        serial_watch_ = *watch;
        serial_watching_output_ = false;
        update_serial_watch();
        log::get("console")->debug("connected to the guest's serial port ({})", options_.serial_socket);
        notify_all("connected to the VM's serial port");
        return;
    }
    int err = fd ? errno : EMFILE;
    if (std::chrono::steady_clock::now() + retry_delay_ > connect_until_) {
        log::get("console")->warn("cannot connect to the guest's serial port {}: {}; the guest console is not read "
                                  "(no log, no `vm console`) until QEMU starts again",
                                  options_.serial_socket, errno_text(err));
        return;
    }
    connect_timer_ = loop_.add_timer(retry_delay_, [this] { try_connect(); });
    retry_delay_ = std::min(retry_delay_ * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kMaxRetryDelay));
}

void GuestConsole::on_serial(std::uint32_t revents)
{
    if (revents & EPOLLOUT)
        flush_guest();
    if (serial_ && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
        read_serial();
}

void GuestConsole::read_serial()
{
    // One read per wake-up: the loop stays fair; level-triggered epoll brings us back.
    char buf[kReadChunk];
    ssize_t n = ::read(serial_.get(), buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0)
        return serial_closed(n == 0 ? "QEMU closed it" : errno_text(errno));
    guest_output(std::string_view(buf, static_cast<std::size_t>(n)));
}

void GuestConsole::guest_output(std::string_view bytes)
{
    last_output_ms_ = now_ms();
    log_.write(bytes);
    tail_.feed(bytes);
    std::vector<std::uint64_t> ids;
    for (const auto &[id, c] : clients_)
        if (c.attached && !c.tail)
            ids.push_back(id);
    for (auto id : ids)
        send(id, bytes);
    if (on_output_)
        on_output_(bytes.size());
}

void GuestConsole::flush_guest()
{
    while (serial_ && !to_guest_.empty()) {
        ssize_t n = ::send(serial_.get(), to_guest_.data(), to_guest_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0)
            return serial_closed(errno_text(errno));
        to_guest_.erase(0, static_cast<std::size_t>(n));
    }
    update_serial_watch();
    // Room again: the writer's typed bytes flow again.
    if (to_guest_.size() < kGuestQueue)
        for (auto &[id, c] : clients_)
            if (c.writer && !c.reading) {
                c.reading = true;
                update_client_watch(id);
            }
}

void GuestConsole::update_serial_watch()
{
    bool want = !to_guest_.empty();
    if (!serial_watch_ || want == serial_watching_output_)
        return;
    if (auto r = loop_.modify_fd(serial_watch_, EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u)); !r)
        log::get("console")->error("{}", r.error().message);
    serial_watching_output_ = want;
}

void GuestConsole::serial_closed(const std::string &why)
{
    loop_.remove_fd(std::exchange(serial_watch_, 0));
    serial_.reset();
    serial_connected_ = false;
    to_guest_.clear();
    log::get("console")->debug("the guest's serial port connection ended: {}", why);
    notify_all("the VM's serial port is gone (QEMU ended or restarts); this console stays attached");
    // QEMU may only have dropped the connection: try again for a while (an ended QEMU says so
    // through qemu_gone()).
    if (qemu_present_)
        connect_qemu(10s);
}

void GuestConsole::qemu_gone()
{
    qemu_present_ = false;
    loop_.cancel_timer(std::exchange(connect_timer_, 0));
    if (serial_)
        serial_closed("QEMU ended");
}

void GuestConsole::housekeeping()
{
    housekeeping_timer_ = loop_.add_timer(kHousekeeping, [this] { housekeeping(); });
    log_.check_file();
    std::int64_t now = now_ms();
    std::vector<std::uint64_t> stalled;
    for (const auto &[id, c] : clients_)
        if (c.stalled_since_ms >= 0 && now - c.stalled_since_ms > std::chrono::milliseconds(kStalledClient).count())
            stalled.push_back(id);
    for (auto id : stalled)
        drop(id, fmt::format("it read nothing for {} s", kStalledClient.count()));
}

} // namespace rescuevm
