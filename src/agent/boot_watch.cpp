// SPDX-License-Identifier: GPL-2.0-or-later
// BootWatch: tails guest-console.log and firmware.log after each boot, asks firmware_boot_failure(), reports once.
#include "rescuevm/agent/boot_watch.h"

#include "rescuevm/core/boot_verdict.h"
#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rescuevm {

using namespace std::chrono_literals;

namespace {

std::uint64_t size_of(const std::string &path)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

} // namespace

BootWatch::BootWatch(EventLoop &loop, RuntimePaths paths, Firmware firmware, std::string image, Failed failed)
    : loop_(loop), paths_(std::move(paths)), firmware_(firmware), image_(std::move(image)), failed_(std::move(failed))
{
    console_.path = paths_.guest_console();
    firmware_log_.path = paths_.firmware_log();
}

BootWatch::~BootWatch()
{
    loop_.cancel_timer(timer_);
}

void BootWatch::boot_started()
{
    stop();
    console_.offset = size_of(console_.path);
    firmware_log_.offset = size_of(firmware_log_.path);
    output_.clear();
    until_ = std::chrono::steady_clock::now() + kWatchFor;
    timer_ = loop_.add_timer(1s, [this] { poll(); });
}

void BootWatch::stop()
{
    loop_.cancel_timer(timer_);
    timer_ = 0;
}

void BootWatch::read_new(Tail &tail)
{
    UniqueFd fd(::open(tail.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd)
        return;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        return;
    if (static_cast<std::uint64_t>(st.st_size) < tail.offset)
        tail.offset = 0; // rotated or truncated: read the new file from its start
    char buf[16384];
    for (int reads = 0; reads < 4; ++reads) { // bounded per poll: a chatty guest waits for the next one
        ssize_t n = ::pread(fd.get(), buf, sizeof buf, static_cast<off_t>(tail.offset));
        if (n <= 0)
            return;
        tail.offset += static_cast<std::uint64_t>(n);
        output_.append(buf, static_cast<std::size_t>(n));
        if (output_.size() > kWindow)
            output_.erase(0, output_.size() - kWindow);
    }
}

void BootWatch::poll()
{
    timer_ = 0;
    read_new(console_);
    read_new(firmware_log_);
    if (std::string verdict = firmware_boot_failure(output_, firmware_, image_); !verdict.empty()) {
        failed_(verdict); // may destroy or restart this watch
        return;
    }
    if (std::chrono::steady_clock::now() < until_)
        timer_ = loop_.add_timer(1s, [this] { poll(); });
}

} // namespace rescuevm
