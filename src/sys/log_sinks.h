// SPDX-License-Identifier: GPL-2.0-or-later
// The agent's own two spdlog sinks: a bounded queue that never blocks the logger, and a hold for a terminal `vm console` has.
#pragma once

#include <spdlog/details/log_msg_buffer.h>
#include <spdlog/sinks/base_sink.h>

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace rescuevm::log::sinks {

// A sink that never blocks the logging thread: lines go into a bounded queue that a
// thread of its own writes out (a 115200-baud console or a stalled journal stream
// must not stall the agent's event loop). When the queue is full, lines are dropped
// and counted; once it has drained, one line says how many were lost.
class QueueSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    QueueSink(int fd, bool owned, std::size_t max_bytes) : shared_(std::make_shared<Shared>())
    {
        shared_->fd = fd;
        shared_->owned = owned;
        shared_->max_bytes = max_bytes;
        std::thread([shared = shared_] { writer(shared); }).detach();
    }
    ~QueueSink() override
    {
        std::unique_lock lock(shared_->mutex);
        shared_->stop = true;
        shared_->wake.notify_all();
        // What is queued gets a moment to reach the console; a stuck one is left behind.
        shared_->idle.wait_for(lock, std::chrono::seconds(2), [this] { return shared_->finished; });
    }

protected:
    void sink_it_(const spdlog::details::log_msg &msg) override
    {
        spdlog::memory_buf_t formatted;
        formatter_->format(msg, formatted);
        std::lock_guard lock(shared_->mutex);
        if (shared_->queued_bytes + formatted.size() > shared_->max_bytes) {
            shared_->dropped++;
            return;
        }
        shared_->queued_bytes += formatted.size();
        shared_->lines.emplace_back(formatted.data(), formatted.size());
        shared_->wake.notify_one();
    }
    void flush_() override
    {
        // Waiting here could block the caller: flushing is the writer's job. Only a
        // process about to exit waits, bounded (see the destructor).
    }

private:
    struct Shared {
        std::mutex mutex;
        std::condition_variable wake, idle;
        std::deque<std::string> lines;
        std::size_t queued_bytes = 0, max_bytes = 0;
        unsigned long dropped = 0;
        int fd = -1;
        bool owned = false, stop = false, finished = false;
    };

    static void write_all(int fd, const std::string &line)
    {
        std::size_t done = 0;
        while (done < line.size()) {
            ssize_t n = ::write(fd, line.data() + done, line.size() - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return; // the console went away: nothing to tell it
            done += static_cast<std::size_t>(n);
        }
    }

    static void writer(std::shared_ptr<Shared> shared)
    {
        std::unique_lock lock(shared->mutex);
        for (;;) {
            shared->wake.wait(lock, [&] { return shared->stop || !shared->lines.empty(); });
            while (!shared->lines.empty()) {
                std::string line = std::move(shared->lines.front());
                shared->lines.pop_front();
                shared->queued_bytes -= line.size();
                lock.unlock();
                write_all(shared->fd, line);
                lock.lock();
            }
            if (shared->dropped > 0) {
                std::string note = "rescuevm: " + std::to_string(shared->dropped) +
                                   " log line(s) dropped: the console could not keep up\n";
                shared->dropped = 0;
                lock.unlock();
                write_all(shared->fd, note);
                lock.lock();
            }
            if (shared->stop && shared->lines.empty()) {
                if (shared->owned)
                    ::close(shared->fd);
                shared->finished = true;
                shared->idle.notify_all();
                return;
            }
        }
    }

    std::shared_ptr<Shared> shared_;
};

constexpr std::size_t kQueueBytes = 256 * 1024;

// A sink whose lines reach a terminal `rescuevm vm console` may be attached to. While held, its
// lines wait (bounded) and come out after the release, behind a line saying so; with a journal
// sink, they go to the journal at once instead and the release only says so.
class HoldSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    HoldSink(spdlog::sink_ptr inner, spdlog::sink_ptr journal) : inner_(std::move(inner)), journal_(std::move(journal))
    {
    }
    void hold()
    {
        std::lock_guard lock(mutex_);
        held_++;
    }
    void release()
    {
        std::lock_guard lock(mutex_);
        if (held_ == 0 || --held_ > 0)
            return;
        auto note = [this](const std::string &text) {
            spdlog::details::log_msg msg("log", spdlog::level::info, text);
            inner_->log(msg);
        };
        if (journaled_ > 0)
            note(fmt::format("{} log line(s) went only to the journal while `rescuevm vm console` had this terminal "
                             "(journalctl -t rescuevm)",
                             journaled_));
        if (!kept_.empty())
            note(fmt::format("{} log line(s) held while `rescuevm vm console` had this terminal:", kept_.size()));
        for (const auto &msg : kept_)
            inner_->log(msg);
        if (dropped_ > 0)
            note(fmt::format("{} more log line(s) of that time were dropped (too many to hold)", dropped_));
        kept_.clear();
        kept_bytes_ = dropped_ = journaled_ = 0;
        inner_->flush();
    }

protected:
    void sink_it_(const spdlog::details::log_msg &msg) override
    {
        if (held_ == 0) {
            inner_->log(msg);
        } else if (journal_) {
            journal_->log(msg);
            journaled_++;
        } else if (kept_bytes_ + msg.payload.size() > kQueueBytes || kept_.size() >= 2000) {
            dropped_++;
        } else {
            kept_bytes_ += msg.payload.size();
            kept_.emplace_back(msg);
        }
    }
    void flush_() override
    {
        if (held_ == 0)
            inner_->flush();
    }
    void set_formatter_(std::unique_ptr<spdlog::formatter> formatter) override
    {
        inner_->set_formatter(formatter->clone());
        formatter_ = std::move(formatter);
    }
    void set_pattern_(const std::string &pattern) override { inner_->set_pattern(pattern); }

private:
    spdlog::sink_ptr inner_, journal_;
    unsigned held_ = 0;
    std::deque<spdlog::details::log_msg_buffer> kept_;
    std::size_t kept_bytes_ = 0;
    unsigned long dropped_ = 0, journaled_ = 0;
};

} // namespace rescuevm::log::sinks
