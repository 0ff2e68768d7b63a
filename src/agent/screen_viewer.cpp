// SPDX-License-Identifier: GPL-2.0-or-later
// The console viewer as the agent's child: spawned with its output piped into the agent's log, watched by pidfd, restarted with a backoff, stopped with SIGTERM.
#include "rescuevm/agent/screen_viewer.h"

#include "rescuevm/core/console.h"
#include "rescuevm/sys/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <csignal>

namespace rescuevm {
namespace {

constexpr std::size_t kMaxLine = 1024;     // a longer line from the viewer is cut
constexpr std::size_t kMaxPerRead = 65536; // bounded work per wake-up

} // namespace

ScreenViewer::ScreenViewer(EventLoop &loop, ScreenPlan plan, std::string program)
    : loop_(loop), plan_(std::move(plan)), program_(std::move(program))
{
}

ScreenViewer::~ScreenViewer()
{
    stop();
    loop_.remove_fd(pid_watch_);
    loop_.remove_fd(out_watch_);
}

void ScreenViewer::start()
{
    wanted_ = true;
    if (process_ || restart_timer_)
        return;
    failures_ = 0;
    spawn();
}

void ScreenViewer::stop()
{
    wanted_ = false;
    loop_.cancel_timer(restart_timer_);
    restart_timer_ = 0;
    if (process_)
        (void)send_signal(process_->pidfd.get(), SIGTERM);
}

std::string ScreenViewer::where() const
{
    if (process_ && !drawing_.empty())
        return "server's console: " + drawing_;
    if (process_)
        return "server's console: the viewer is starting";
    if (wanted_)
        return fmt::format("server's console: the viewer is not running ({}); starting it again",
                           last_problem_.empty() ? "it ended" : last_problem_);
    return "server's console: the viewer runs while QEMU does";
}

void ScreenViewer::spawn()
{
    restart_timer_ = 0;
    SpawnOptions o;
    o.argv = {program_, "screen", "--vnc", plan_.vnc_socket};
    if (plan_.output == "drm") {
        o.argv.insert(o.argv.end(), {"--drm", plan_.device});
        if (!plan_.fallback.empty())
            o.argv.insert(o.argv.end(), {"--fbdev", plan_.fallback});
    } else {
        o.argv.insert(o.argv.end(), {"--fbdev", plan_.device});
    }
    o.capture_output = true;
    auto log = log::get("screen");
    auto handle = rescuevm::spawn(o);
    if (!handle) {
        last_problem_ = handle.error().message;
        log->error("cannot start the console viewer: {}", last_problem_);
        exited();
        return;
    }
    process_ = std::move(*handle);
    started_ = std::chrono::steady_clock::now();
    drawing_.clear();
    partial_.clear();
    last_said_.clear();
    ::fcntl(process_->output.get(), F_SETFL, ::fcntl(process_->output.get(), F_GETFL) | O_NONBLOCK);
    auto out = loop_.add_fd(process_->output.get(), EPOLLIN, [this](std::uint32_t) { read_output(); });
    out_watch_ = out ? *out : 0;
    auto pid = loop_.add_fd(process_->pidfd.get(), EPOLLIN, [this](std::uint32_t) {
        auto status = try_reap(process_->pidfd.get());
        if (!status || *status) {
            read_output(); // its last words first
            last_problem_ = status ? (*status)->describe() : status.error().message;
            if (!last_said_.empty())
                last_problem_ += ": " + last_said_;
            exited();
        }
    });
    pid_watch_ = pid ? *pid : 0;
    log->info("console viewer started, pid {}: {} {} on the active VT", process_->pid, plan_.device,
              plan_.driver);
}

void ScreenViewer::read_output()
{
    if (!process_ || !process_->output)
        return;
    char buf[4096];
    std::size_t total = 0;
    while (total < kMaxPerRead) {
        ssize_t n = ::read(process_->output.get(), buf, sizeof buf);
        if (n <= 0)
            break;
        total += std::size_t(n);
        partial_.append(buf, std::size_t(n));
        std::size_t nl;
        while ((nl = partial_.find('\n')) != std::string::npos) {
            relay(partial_.substr(0, nl));
            partial_.erase(0, nl + 1);
        }
        if (partial_.size() > kMaxLine) {
            relay(partial_.substr(0, kMaxLine));
            partial_.clear();
        }
    }
}

void ScreenViewer::relay(std::string line)
{
    for (char &c : line)
        if (static_cast<unsigned char>(c) < 0x20)
            c = ' ';
    auto log = log::get("screen");
    auto strip = [&](std::string_view prefix) {
        if (!line.starts_with(prefix))
            return false;
        line.erase(0, prefix.size());
        return true;
    };
    if (strip("error: ")) {
        last_said_ = line;
        log->error("{}", line);
    } else if (strip("warning: ")) {
        log->warn("{}", line);
    } else {
        strip("info: ");
        if (line.starts_with("drawing the VM's screen on "))
            drawing_ = line.substr(27);
        log->info("{}", line);
    }
}

void ScreenViewer::exited()
{
    auto log = log::get("screen");
    bool ran = process_.has_value();
    if (process_) {
        loop_.remove_fd(pid_watch_);
        loop_.remove_fd(out_watch_);
        pid_watch_ = out_watch_ = 0;
        process_.reset();
    }
    drawing_.clear();
    if (!wanted_) {
        if (ran)
            log->info("console viewer ended ({}); the console is the host's again", last_problem_);
        return;
    }
    if (ran && std::chrono::steady_clock::now() - started_ >= kViewerStableAfter)
        failures_ = 0;
    auto delay = viewer_restart_delay(++failures_);
    log->warn("console viewer ended ({}); starting it again in {} ms", last_problem_, delay.count());
    restart_timer_ = loop_.add_timer(delay, [this] { spawn(); });
}

} // namespace rescuevm
