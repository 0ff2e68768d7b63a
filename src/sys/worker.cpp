// SPDX-License-Identifier: GPL-2.0-or-later
// Worker: a thread per blocking job, finished jobs handed back to the event loop through an eventfd.
#include "rescuevm/sys/worker.h"

#include "rescuevm/sys/files.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <thread>

namespace rescuevm {

struct Worker::Job {
    std::string what;
    std::function<void()> work;
    std::function<void()> finished;
    std::function<void(const Error &)> timed_out;
    std::function<void()> late;
    TimerId deadline = 0;
    bool abandoned = false;
};

Worker::Worker(EventLoop &loop) : loop_(loop), shared_(std::make_shared<Shared>()) {}

Worker::~Worker()
{
    if (watch_)
        loop_.remove_fd(watch_);
    for (auto &[id, job] : jobs_)
        loop_.cancel_timer(job->deadline);
    // Threads still running hold `shared_` (not `this`): they finish into nothing.
}

Result<void> Worker::start()
{
    wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_)
        return fail("worker: eventfd failed: " + errno_text(errno));
    shared_->wake_fd = wake_.get();
    watch_ = RESCUEVM_TRY(loop_.add_fd(wake_.get(), EPOLLIN, [this](std::uint32_t) { drain(); }));
    return {};
}

void Worker::submit(std::string what, std::chrono::milliseconds deadline, std::function<void()> work,
                    std::function<void()> finished, std::function<void(const Error &)> timed_out,
                    std::function<void()> late)
{
    if (abandoned() >= kMaxAbandoned) {
        timed_out(Error{fmt::format("{}: not started: {} earlier jobs are stuck (a disk that does not answer?)",
                                    what, abandoned())});
        return;
    }
    std::uint64_t id = next_++;
    auto job = std::make_shared<Job>(Job{std::move(what), std::move(work), std::move(finished),
                                         std::move(timed_out), std::move(late), 0, false});
    jobs_[id] = job;
    job->deadline = loop_.add_timer(deadline, [this, id, deadline] {
        auto it = jobs_.find(id);
        if (it == jobs_.end() || it->second->abandoned)
            return;
        it->second->abandoned = true;
        it->second->timed_out(Error{fmt::format("{} did not finish within {} s", it->second->what,
                                                deadline.count() / 1000.0)});
    });
    auto shared = shared_;
    try {
        std::thread([job, id, shared] {
            job->work();
            std::lock_guard lock(shared->mutex);
            shared->done.push_back(id);
            std::uint64_t one = 1;
            if (shared->wake_fd >= 0)
                [[maybe_unused]] auto n = ::write(shared->wake_fd, &one, sizeof one);
        }).detach();
    } catch (const std::system_error &e) {
        loop_.cancel_timer(job->deadline);
        jobs_.erase(id);
        job->timed_out(Error{fmt::format("{}: cannot start a thread: {}", job->what, e.what())});
    }
}

void Worker::drain()
{
    std::uint64_t count;
    while (::read(wake_.get(), &count, sizeof count) > 0) {
    }
    std::deque<std::uint64_t> done;
    {
        std::lock_guard lock(shared_->mutex);
        done.swap(shared_->done);
    }
    for (std::uint64_t id : done) {
        auto it = jobs_.find(id);
        if (it == jobs_.end())
            continue;
        auto job = it->second;
        jobs_.erase(it);
        loop_.cancel_timer(job->deadline);
        if (job->abandoned)
            job->late();
        else
            job->finished();
    }
}

std::size_t Worker::running() const
{
    return jobs_.size();
}

std::size_t Worker::abandoned() const
{
    std::size_t n = 0;
    for (const auto &[id, job] : jobs_)
        n += job->abandoned;
    return n;
}

} // namespace rescuevm
