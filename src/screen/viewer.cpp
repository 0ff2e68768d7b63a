// SPDX-License-Identifier: GPL-2.0-or-later
// The viewer's loop: VNC updates in, scaled rectangles out to the console's buffer, statistics, signals; the console given back whatever happens.
#include "rescuevm/screen/viewer.h"

#include "rescuevm/screen/output.h"
#include "rescuevm/screen/vnc_source.h"
#include "rescuevm/screen/vt_console.h"
#include "rescuevm/sys/files.h"
#include "rescuevm/sys/unique_fd.h"

#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <memory>

namespace rescuevm::screen {
namespace {

constexpr int kExitConnection = 1; // the VNC connection ended: start again
constexpr int kExitNoOutput = 3;   // nothing to draw on: starting again does not help

template <typename... Args>
void say(const char *level, fmt::format_string<Args...> format, Args &&...args)
{
    std::string line = fmt::format("{}: {}\n", level, fmt::format(format, std::forward<Args>(args)...));
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

// A fatal signal still gives the VT back (text mode, keyboard on), then dies as it would have.
void on_fatal(int signo)
{
    VtConsole::restore_from_signal_handler();
    std::signal(signo, SIG_DFL);
    std::raise(signo);
}

double cpu_seconds()
{
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long peak_rss_kib()
{
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

struct Stats {
    std::uint64_t frames = 0;
    std::uint64_t pixels = 0; // screen pixels written
    double cpu_at_first = 0;  // CPU time once connected and drawing (set-up excluded)
};

std::unique_ptr<Output> open_output(const ViewerOptions &o, std::string &errors)
{
    if (o.memory.w && o.memory.h)
        return memory_output(o.memory);
    if (!o.drm.empty()) {
        auto drm = open_drm_output(o.drm);
        if (drm)
            return std::move(*drm);
        errors = drm.error().message;
        if (!o.fbdev.empty())
            say("warning", "{}; falling back to {}", errors, o.fbdev);
    }
    if (!o.fbdev.empty()) {
        auto fb = open_fbdev_output(o.fbdev);
        if (fb)
            return std::move(*fb);
        errors += (errors.empty() ? "" : "; ") + fb.error().message;
    }
    if (errors.empty())
        errors = "no DRM device and no framebuffer given";
    return nullptr;
}

} // namespace

int run_viewer(const ViewerOptions &o)
{
    // The agent's child: when the agent dies, the console goes back (the next agent starts another).
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT})
        std::signal(sig, on_fatal);
    sigset_t stop;
    sigemptyset(&stop);
    for (int sig : {SIGTERM, SIGINT, SIGHUP})
        sigaddset(&stop, sig);
    ::sigprocmask(SIG_BLOCK, &stop, nullptr);
    UniqueFd sigfd(::signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sigfd) {
        say("error", "signalfd: {}", errno_text(errno));
        return kExitNoOutput;
    }
    double cpu_start = cpu_seconds();

    auto source = VncSource::connect(o.vnc_socket);
    if (!source) {
        say("error", "{}", source.error().message);
        return kExitConnection;
    }
    // The VT before the output, so it is given back after the output is (members die in reverse).
    std::unique_ptr<VtConsole> vt;
    if (o.take_vt && !(o.memory.w && o.memory.h)) {
        auto taken = VtConsole::take(o.vt);
        if (!taken) {
            say("error", "{}", taken.error().message);
            return kExitNoOutput;
        }
        vt = std::move(*taken);
    }
    std::string errors;
    std::unique_ptr<Output> out = open_output(o, errors);
    if (!out) {
        say("error", "nothing to draw the VM's screen on: {}", errors);
        return kExitNoOutput;
    }
    say("info", "drawing the VM's screen on {}{}", out->describe(),
        vt ? fmt::format(" (VT {}, its keyboard off)", vt->number()) : std::string());

    VncSource &src = **source;
    Scaler scaler;
    Stats stats;
    auto started = std::chrono::steady_clock::now();
    int code = 0;
    bool running = true;
    while (running) {
        if (!src.buffered()) {
            pollfd fds[2] = {{src.fd(), POLLIN, 0}, {sigfd.get(), POLLIN, 0}};
            int n = ::poll(fds, 2, 1000);
            if (n < 0 && errno != EINTR) {
                say("error", "poll: {}", errno_text(errno));
                code = kExitConnection;
                break;
            }
            if (fds[1].revents & POLLIN) {
                signalfd_siginfo info{};
                (void)!::read(sigfd.get(), &info, sizeof(info));
                say("info", "stopping on signal {}", int(info.ssi_signo));
                break;
            }
            if (o.max_time.count() && std::chrono::steady_clock::now() - started >= o.max_time)
                break;
            if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
        }
        if (auto r = src.receive(); !r) {
            say("warning", "{}", r.error().message);
            code = kExitConnection;
            break;
        }
        if (!src.frame_ready())
            continue;
        if (src.take_resized() || !(scaler.source() == src.size())) {
            scaler = Scaler(src.size(), out->size());
            scaler.clear_borders(out->pixels(), out->stride(), out->format());
            out->flush({0, 0, out->size().w, out->size().h});
            Rect p = scaler.placement();
            say("info", "the VM's screen is {}x{}: shown as {}x{} at {},{} of {}x{}", src.size().w, src.size().h,
                p.w, p.h, p.x, p.y, out->size().w, out->size().h);
        }
        Rect damage = src.take_damage();
        Rect covered = scaler.covered(damage);
        if (covered.empty())
            continue;
        scaler.draw(src.pixels(), src.stride(), damage, out->pixels(), out->stride(), out->format());
        out->flush(covered);
        if (stats.frames++ == 0)
            stats.cpu_at_first = cpu_seconds();
        stats.pixels += std::uint64_t(covered.w) * covered.h;
        if (o.max_frames && stats.frames >= o.max_frames)
            running = false;
    }
    double cpu = cpu_seconds();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    say("info",
        "stats: {} frames in {:.1f} s, {:.1f} Mpixel drawn, CPU {:.3f} s ({:.0f} us per frame after the first; "
        "set-up {:.3f} s), peak RSS {} KiB",
        stats.frames, seconds, double(stats.pixels) / 1e6, cpu - cpu_start,
        stats.frames > 1 ? (cpu - stats.cpu_at_first) * 1e6 / double(stats.frames - 1) : 0.0,
        (stats.frames ? stats.cpu_at_first : cpu) - cpu_start, peak_rss_kib());
    return code;
}

} // namespace rescuevm::screen
