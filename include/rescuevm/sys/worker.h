// SPDX-License-Identifier: GPL-2.0-or-later
// Worker: blocking jobs (disk reads, helper programs, netlink hand-overs) off the event loop, with deadlines.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/sys/event_loop.h"

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace rescuevm {

// Each job runs on a thread of its own, so one stuck in the kernel (a read from a
// dying disk, a suspended device-mapper table) blocks nothing else; its outcome is
// delivered in the loop's thread. A job past its deadline is reported as failed at
// once; its thread is left to finish (a stuck read cannot be cancelled) and its
// late result goes to `abandoned` (to undo what it did) or is dropped. Jobs must not
// touch the loop's state: they get copies in, and hand results out.
class Worker {
public:
    static constexpr std::size_t kMaxAbandoned = 8; // stuck threads before new jobs are refused

    explicit Worker(EventLoop &loop);
    ~Worker();
    Worker(const Worker &) = delete;
    Worker &operator=(const Worker &) = delete;

    Result<void> start(); // watches the wake-up eventfd

    template <typename T>
    void run(std::string what, std::chrono::milliseconds deadline, std::function<Result<T>()> job,
             std::function<void(Result<T>)> done, std::function<void(T &&)> abandoned = {})
    {
        auto result = std::make_shared<std::optional<Result<T>>>();
        submit(
            std::move(what), deadline, [job = std::move(job), result] { result->emplace(job()); },
            [done = std::move(done), result] { done(std::move(**result)); },
            [done, result](const Error &e) { done(std::unexpected(e)); },
            [abandoned = std::move(abandoned), result] {
                if (abandoned && *result && **result)
                    abandoned(std::move(***result));
            });
    }

    std::size_t running() const;   // jobs whose thread has not finished
    std::size_t abandoned() const; // of those, the ones past their deadline

private:
    struct Job;
    void submit(std::string what, std::chrono::milliseconds deadline, std::function<void()> work,
                std::function<void()> finished, std::function<void(const Error &)> timed_out,
                std::function<void()> late);
    void drain();

    EventLoop &loop_;
    UniqueFd wake_;
    WatchId watch_ = 0;
    std::uint64_t next_ = 1;
    std::map<std::uint64_t, std::shared_ptr<Job>> jobs_;
    // Finished jobs, handed from their threads to the loop.
    struct Shared {
        std::mutex mutex;
        std::deque<std::uint64_t> done;
        int wake_fd = -1;
    };
    std::shared_ptr<Shared> shared_;
};

} // namespace rescuevm
