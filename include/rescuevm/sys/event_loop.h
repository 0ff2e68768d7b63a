// SPDX-License-Identifier: GPL-2.0-or-later
// EventLoop: one epoll loop over fds, timers (timerfd) and signals (signalfd); single-threaded.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/sys/unique_fd.h"

#include <sys/epoll.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rescuevm {

// Ids are never reused, so a stale id (or a removed fd's event still in the
// current epoll batch) can never reach a newer registration. 0 means "none".
using WatchId = std::uint64_t;
using TimerId = std::uint64_t;

class EventLoop {
public:
    using FdCallback = std::function<void(std::uint32_t revents)>;
    using TimerCallback = std::function<void()>;
    using SignalCallback = std::function<void(int signo)>;

    static Result<std::unique_ptr<EventLoop>> create();
    ~EventLoop();
    EventLoop(const EventLoop &) = delete;
    EventLoop &operator=(const EventLoop &) = delete;

    // Level-triggered watch of fd (EPOLLIN, EPOLLOUT, ...). The loop does not own
    // fd; call remove_fd before closing it. One watch per fd.
    Result<WatchId> add_fd(int fd, std::uint32_t events, FdCallback callback);
    Result<void> modify_fd(WatchId id, std::uint32_t events);
    // Safe from any callback, including the watch's own; unknown ids are ignored.
    void remove_fd(WatchId id);

    // One-shot timer on CLOCK_MONOTONIC. Timers due at the same time fire in the
    // order they were added. A timer added from a callback never fires in the
    // same dispatch round, so a 0 ms timer cannot starve the loop.
    TimerId add_timer(std::chrono::milliseconds delay, TimerCallback callback);
    // Safe from any callback; a cancelled timer never fires. Unknown ids are ignored.
    void cancel_timer(TimerId id);

    // Blocks the signals (sigprocmask) and delivers them through a signalfd.
    // The destructor unblocks what it blocked (after draining pending ones).
    // Spawned children get an empty mask back (see process.h).
    Result<WatchId> watch_signals(std::initializer_list<int> signals, SignalCallback callback);

    // Dispatches until quit(); returns quit's code. A quit() before run() makes
    // run() return at once. Events left in the batch after quit() stay pending
    // (level-triggered) for a later run().
    int run();
    void quit(int code);

    std::size_t watch_count() const { return watches_.size(); }
    std::size_t timer_count() const { return timer_due_.size(); }

private:
    using Clock = std::chrono::steady_clock; // CLOCK_MONOTONIC, like the timerfd
    struct Watch {
        int fd;
        std::shared_ptr<FdCallback> callback; // shared: a callback may remove itself
    };
    struct SignalWatch {
        UniqueFd fd;
        sigset_t blocked; // signals this watch blocked that were unblocked before
    };

    explicit EventLoop(UniqueFd epoll_fd);
    void dispatch(const epoll_event &ev);
    void fire_due_timers();
    void arm_timerfd();
    void read_signals(SignalWatch &watch, const SignalCallback &callback);

    UniqueFd epoll_fd_;
    UniqueFd timer_fd_;
    WatchId timer_watch_ = 0;
    std::uint64_t next_id_ = 1;
    std::unordered_map<WatchId, Watch> watches_;
    std::map<std::pair<Clock::time_point, TimerId>, TimerCallback> timers_;
    std::unordered_map<TimerId, Clock::time_point> timer_due_;
    std::unordered_map<WatchId, std::unique_ptr<SignalWatch>> signal_watches_;
    std::optional<int> exit_code_;
};

} // namespace rescuevm
