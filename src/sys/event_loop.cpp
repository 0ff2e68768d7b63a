// SPDX-License-Identifier: GPL-2.0-or-later
// EventLoop implementation: epoll, one timerfd for all timers, one signalfd per watch_signals().
#include "rescuevm/sys/event_loop.h"

#include "rescuevm/sys/files.h"
#include "rescuevm/sys/log.h"

#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>

namespace rescuevm {

Result<std::unique_ptr<EventLoop>> EventLoop::create()
{
    UniqueFd epoll_fd(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_fd)
        return fail("event loop: epoll_create1 failed: " + errno_text(errno));
    std::unique_ptr<EventLoop> loop(new EventLoop(std::move(epoll_fd)));

    loop->timer_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!loop->timer_fd_)
        return fail("event loop: timerfd_create failed: " + errno_text(errno));
    EventLoop *self = loop.get();
    loop->timer_watch_ = RESCUEVM_TRY(loop->add_fd(loop->timer_fd_.get(), EPOLLIN,
                                                   [self](std::uint32_t) { self->fire_due_timers(); }));
    return loop;
}

EventLoop::EventLoop(UniqueFd epoll_fd) : epoll_fd_(std::move(epoll_fd)) {}

EventLoop::~EventLoop()
{
    // Drain before unblocking: a pending SIGTERM would otherwise kill us on the way out.
    for (auto &[id, watch] : signal_watches_) {
        signalfd_siginfo info;
        while (::read(watch->fd.get(), &info, sizeof info) == sizeof info) {
        }
        ::sigprocmask(SIG_UNBLOCK, &watch->blocked, nullptr);
    }
}

Result<WatchId> EventLoop::add_fd(int fd, std::uint32_t events, FdCallback callback)
{
    WatchId id = next_id_++;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = id;
    if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
        return fail("event loop: cannot watch fd " + std::to_string(fd) + ": " + errno_text(errno));
    watches_.emplace(id, Watch{fd, std::make_shared<FdCallback>(std::move(callback))});
    return id;
}

Result<void> EventLoop::modify_fd(WatchId id, std::uint32_t events)
{
    auto it = watches_.find(id);
    if (it == watches_.end())
        return fail("event loop: modify_fd: no watch with id " + std::to_string(id));
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = id;
    if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, it->second.fd, &ev) < 0)
        return fail("event loop: cannot change events of fd " + std::to_string(it->second.fd) + ": " +
                    errno_text(errno));
    return {};
}

void EventLoop::remove_fd(WatchId id)
{
    auto it = watches_.find(id);
    if (it == watches_.end())
        return;
    // EBADF/ENOENT mean the fd was closed first, which already removed it from epoll.
    ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
    watches_.erase(it);
}

TimerId EventLoop::add_timer(std::chrono::milliseconds delay, TimerCallback callback)
{
    TimerId id = next_id_++;
    Clock::time_point due = Clock::now() + std::max(delay, std::chrono::milliseconds(0));
    bool earliest = timers_.empty() || due < timers_.begin()->first.first;
    timers_.emplace(std::make_pair(due, id), std::move(callback));
    timer_due_.emplace(id, due);
    if (earliest)
        arm_timerfd();
    return id;
}

void EventLoop::cancel_timer(TimerId id)
{
    auto it = timer_due_.find(id);
    if (it == timer_due_.end())
        return;
    timers_.erase(std::make_pair(it->second, id));
    timer_due_.erase(it);
    // Leaving the timerfd armed for a cancelled earliest timer only costs one spurious wake-up.
}

void EventLoop::arm_timerfd()
{
    itimerspec spec{};
    if (!timers_.empty()) {
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      timers_.begin()->first.first.time_since_epoch())
                      .count();
        if (ns <= 0)
            ns = 1; // a zero it_value would disarm the timerfd
        spec.it_value.tv_sec = ns / 1000000000;
        spec.it_value.tv_nsec = ns % 1000000000;
    }
    if (::timerfd_settime(timer_fd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) < 0)
        log::get("loop")->error("cannot arm the timer fd: {}; timers will not fire", errno_text(errno));
}

void EventLoop::fire_due_timers()
{
    std::uint64_t expirations;
    while (::read(timer_fd_.get(), &expirations, sizeof expirations) > 0) {
    }
    // Collect first: timers added by these callbacks wait for the next round.
    Clock::time_point now = Clock::now();
    std::vector<TimerId> due;
    for (auto it = timers_.begin(); it != timers_.end() && it->first.first <= now; ++it)
        due.push_back(it->first.second);
    for (TimerId id : due) {
        auto when = timer_due_.find(id);
        if (when == timer_due_.end())
            continue; // cancelled by an earlier callback of this round
        auto node = timers_.extract(std::make_pair(when->second, id));
        timer_due_.erase(when);
        node.mapped()();
        if (exit_code_)
            break;
    }
    arm_timerfd();
}

Result<WatchId> EventLoop::watch_signals(std::initializer_list<int> signals, SignalCallback callback)
{
    auto watch = std::make_unique<SignalWatch>();
    sigset_t mask, old;
    sigemptyset(&mask);
    sigemptyset(&watch->blocked);
    for (int sig : signals)
        sigaddset(&mask, sig);
    if (::sigprocmask(SIG_BLOCK, &mask, &old) < 0)
        return fail("event loop: cannot block signals: " + errno_text(errno));
    for (int sig : signals)
        if (!sigismember(&old, sig))
            sigaddset(&watch->blocked, sig);
    watch->fd.reset(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!watch->fd) {
        int err = errno;
        ::sigprocmask(SIG_UNBLOCK, &watch->blocked, nullptr);
        return fail("event loop: signalfd failed: " + errno_text(err));
    }
    SignalWatch *raw = watch.get();
    auto cb = std::make_shared<SignalCallback>(std::move(callback));
    auto id = add_fd(raw->fd.get(), EPOLLIN, [this, raw, cb](std::uint32_t) { read_signals(*raw, *cb); });
    if (!id) {
        ::sigprocmask(SIG_UNBLOCK, &watch->blocked, nullptr);
        return std::unexpected(id.error());
    }
    signal_watches_.emplace(*id, std::move(watch));
    return *id;
}

void EventLoop::read_signals(SignalWatch &watch, const SignalCallback &callback)
{
    signalfd_siginfo info;
    while (::read(watch.fd.get(), &info, sizeof info) == sizeof info) {
        callback(static_cast<int>(info.ssi_signo));
        if (exit_code_)
            return; // the rest stays pending in the signalfd
    }
}

void EventLoop::dispatch(const epoll_event &ev)
{
    auto it = watches_.find(ev.data.u64);
    if (it == watches_.end())
        return; // removed earlier in this batch
    std::shared_ptr<FdCallback> callback = it->second.callback;
    (*callback)(ev.events);
}

int EventLoop::run()
{
    std::array<epoll_event, 32> events;
    while (!exit_code_) {
        int n = ::epoll_wait(epoll_fd_.get(), events.data(), static_cast<int>(events.size()), -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log::get("loop")->critical("epoll_wait failed: {}; the event loop stops", errno_text(errno));
            return 1;
        }
        for (int i = 0; i < n && !exit_code_; ++i)
            dispatch(events[static_cast<std::size_t>(i)]);
    }
    int code = *exit_code_;
    exit_code_.reset();
    return code;
}

void EventLoop::quit(int code)
{
    exit_code_ = code;
}

} // namespace rescuevm
