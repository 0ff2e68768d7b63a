// SPDX-License-Identifier: GPL-2.0-or-later
// GuestAgentClient: one request at a time to qemu-ga over QEMU's chardev socket, each after a sync and with a deadline; probes and facts on timers.
#include "rescuevm/agent/guest_agent.h"

#include "rescuevm/sys/files.h"
#include "rescuevm/sys/log.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace rescuevm {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kReadChunk = 64 * 1024;

std::string seconds(std::chrono::milliseconds d)
{
    return d.count() % 1000 == 0 ? fmt::format("{} s", d.count() / 1000) : fmt::format("{} ms", d.count());
}

} // namespace

GuestAgentClient::GuestAgentClient(EventLoop &loop, std::string socket_path, Callbacks callbacks,
                                   GuestAgentTiming timing)
    : loop_(loop), path_(std::move(socket_path)), callbacks_(std::move(callbacks)), timing_(timing)
{
    // Sync ids differ between agent runs, so a reply meant for an earlier agent never matches.
    next_sync_ = static_cast<std::uint64_t>(now_ms()) * 1000 % 1'000'000'000'000ULL;
}

GuestAgentClient::~GuestAgentClient()
{
    *alive_ = false;
    loop_.cancel_timer(job_timer_);
    loop_.cancel_timer(probe_timer_);
    loop_.remove_fd(watch_);
}

std::int64_t GuestAgentClient::now_ms() const
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// ---- probes and facts ------------------------------------------------------------------

void GuestAgentClient::start()
{
    running_ = true;
    schedule_probe(timing_.first_probe);
}

void GuestAgentClient::stop()
{
    running_ = false;
    answering_ = false;
    probing_ = false;
    loop_.cancel_timer(std::exchange(probe_timer_, 0));
    fail_all("QEMU ended");
    disconnect();
}

void GuestAgentClient::guest_reset()
{
    if (!running_)
        return;
    fail_all("the guest restarted");
    disconnect();
    probing_ = false;
    facts_ms_ = addresses_ms_ = -1;
    if (answering_) {
        answering_ = false;
        if (callbacks_.lost)
            callbacks_.lost("the guest restarted");
    }
    schedule_probe(timing_.first_probe);
}

void GuestAgentClient::schedule_probe(std::chrono::milliseconds after)
{
    loop_.cancel_timer(probe_timer_);
    probe_timer_ = loop_.add_timer(after, [this] {
        probe_timer_ = 0;
        probe();
    });
}

void GuestAgentClient::probe()
{
    if (!running_ || probing_)
        return;
    probing_ = true;
    enqueue_sync([this](Result<nlohmann::json> r) {
        if (!r)
            return probe_failed(r.error().message);
        last_answer_ms_ = now_ms();
        bool first = !answering_;
        answering_ = true;
        if (callbacks_.answered)
            callbacks_.answered();
        std::int64_t now = now_ms();
        bool facts_due = first || facts_ms_ < 0 || now - facts_ms_ >= timing_.facts_every.count();
        bool addresses_due = addresses_ms_ < 0 || now - addresses_ms_ >= timing_.addresses_every.count();
        if (facts_due || addresses_due)
            return refresh_facts(first, facts_due);
        probing_ = false;
        schedule_probe(timing_.probe_up);
    });
}

void GuestAgentClient::probe_failed(const std::string &why)
{
    probing_ = false;
    if (answering_) {
        answering_ = false;
        if (callbacks_.lost)
            callbacks_.lost(why);
    }
    if (running_)
        schedule_probe(timing_.probe_down);
}

void GuestAgentClient::refresh_facts(bool first, bool all)
{
    // Each answer is kept as it comes; a command the guest's qemu-ga does not know leaves its
    // facts empty. The round ends with the addresses, whatever happened before.
    auto took = std::make_shared<bool>(false);
    auto command = [this, took](const char *name, void (*parse)(const nlohmann::json &, GuestFacts &)) {
        enqueue(Job{name, qga_request(name), std::nullopt, false, timing_.command_deadline,
                    [this, took, parse, name](Result<nlohmann::json> r) {
                        if (r) {
                            parse(*r, facts_);
                            *took = true;
                        } else {
                            log::get("guest-agent")->debug("{}: {}", name, r.error().message);
                        }
                    }});
    };
    if (all) {
        command("guest-info", qga_parse_info);
        command("guest-get-osinfo", qga_parse_osinfo);
        command("guest-get-host-name", qga_parse_host_name);
    }
    enqueue(Job{"guest-network-get-interfaces", qga_request("guest-network-get-interfaces"), std::nullopt, false,
                timing_.command_deadline, [this, took, first, all](Result<nlohmann::json> r) {
                    std::int64_t now = now_ms();
                    if (r) {
                        qga_parse_interfaces(*r, facts_);
                        *took = true;
                    }
                    if (*took) {
                        addresses_ms_ = now;
                        if (all)
                            facts_ms_ = now;
                    }
                    probing_ = false;
                    if (*took && callbacks_.facts)
                        callbacks_.facts(first);
                    if (running_)
                        schedule_probe(r ? timing_.probe_up : timing_.probe_down);
                }});
}

void GuestAgentClient::shutdown(ShutdownCallback done)
{
    auto finish = [done](Result<nlohmann::json> r) { done(r.has_value(), r ? "" : r.error().message); };
    if (!running_) {
        loop_.add_timer(0ms, [finish] { finish(fail("QEMU is not running")); });
        return;
    }
    enqueue_sync([this, finish](Result<nlohmann::json> r) {
        if (!r)
            return finish(fail("the guest agent does not answer: " + r.error().message));
        enqueue(Job{"guest-shutdown", qga_request("guest-shutdown", {{"mode", "powerdown"}}), std::nullopt, true,
                    timing_.shutdown_quiet, finish});
    });
}

// ---- one request at a time -------------------------------------------------------------

void GuestAgentClient::enqueue_sync(std::function<void(Result<nlohmann::json>)> done)
{
    std::uint64_t id = ++next_sync_;
    enqueue(Job{"guest-sync-delimited", qga_sync_request(id), id, false, timing_.sync_deadline, std::move(done)});
}

void GuestAgentClient::enqueue(Job job)
{
    if (queue_.size() >= 16) { // probes and stops are few: more means something is stuck
        auto done = std::move(job.done);
        loop_.add_timer(0ms, [done] { done(fail("too many guest agent requests waiting")); });
        return;
    }
    queue_.push_back(std::move(job));
    if (!current_)
        loop_.add_timer(0ms, [this, alive = alive_] {
            if (*alive)
                next_job();
        });
}

void GuestAgentClient::next_job()
{
    if (current_ || queue_.empty())
        return;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    std::string why;
    if (!ensure_connected(why))
        return finish_job(fail("cannot reach the guest agent's channel: " + why));
    if (current_->sync_id)
        reader_.reset();
    out_ = current_->bytes;
    sent_ = false;
    auto deadline = current_->deadline;
    bool silent_ok = current_->silent_ok;
    std::string name = current_->name;
    job_timer_ = loop_.add_timer(deadline, [this, deadline, silent_ok, name] {
        job_timer_ = 0;
        if (silent_ok)
            return finish_job(nlohmann::json(nullptr));
        // A late answer must never be taken for the next request's: start afresh.
        disconnect();
        finish_job(fail(fmt::format("{}: no answer within {}", name, seconds(deadline))));
    });
    flush_output();
}

bool GuestAgentClient::ensure_connected(std::string &why)
{
    if (fd_)
        return true;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof addr.sun_path) {
        why = "socket path " + path_ + " is too long";
        return false;
    }
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
        why = path_ + ": " + errno_text(errno);
        return false;
    }
    auto watch = loop_.add_fd(fd.get(), 0, [this](std::uint32_t ev) { on_socket(ev); });
    if (!watch) {
        why = watch.error().message;
        return false;
    }
    fd_ = std::move(fd);
    watch_ = *watch;
    watch_events_ = 0;
    reader_.reset();
    return true;
}

void GuestAgentClient::update_watch()
{
    if (!watch_)
        return;
    // Input is read only while a request waits: an idle guest cannot make us do any work.
    std::uint32_t events = (current_ ? EPOLLIN : 0u) | (out_.empty() ? 0u : EPOLLOUT);
    if (events == watch_events_)
        return;
    if (auto r = loop_.modify_fd(watch_, events); !r)
        log::get("guest-agent")->error("{}", r.error().message);
    watch_events_ = events;
}

void GuestAgentClient::on_socket(std::uint32_t revents)
{
    auto alive = alive_;
    if (revents & EPOLLOUT)
        flush_output();
    if (*alive && fd_ && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        read_input();
}

void GuestAgentClient::flush_output()
{
    while (fd_ && !out_.empty()) {
        ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break; // QEMU does not take it (the guest has not opened the port): the deadline decides
        if (n <= 0) {
            std::string why = errno_text(errno);
            disconnect();
            return finish_job(fail("the guest agent's channel closed: " + why));
        }
        out_.erase(0, static_cast<std::size_t>(n));
        sent_ = out_.empty();
    }
    update_watch();
}

void GuestAgentClient::read_input()
{
    char buf[kReadChunk];
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        std::string why = n == 0 ? "QEMU closed it" : errno_text(errno);
        disconnect();
        if (current_)
            finish_job(fail("the guest agent's channel closed: " + why));
        return;
    }
    reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    auto alive = alive_;
    while (*alive && current_) {
        auto message = reader_.next();
        if (!message)
            break;
        if (current_->sync_id) {
            if (reader_.saw_delimiter() && qga_is_sync_reply(*message, *current_->sync_id))
                finish_job(*message);
            continue; // anything else before our sync's answer is stale or noise
        }
        auto reply = qga_reply(*message);
        if (!reply)
            continue;
        if (reply->ok)
            finish_job(reply->value);
        else
            finish_job(fail(current_->name + " failed in the guest: " + reply->error));
    }
}

void GuestAgentClient::finish_job(Result<nlohmann::json> result)
{
    if (!current_)
        return;
    // guest-shutdown answers only when it fails: once sent, the channel or QEMU going away
    // is the guest doing what it was asked.
    if (!result && current_->silent_ok && out_.empty() && sent_)
        result = nlohmann::json(nullptr);
    loop_.cancel_timer(std::exchange(job_timer_, 0));
    Job job = std::move(*current_);
    current_.reset();
    if (result)
        log::get("guest-agent")->trace("{} answered", job.name);
    update_watch();
    auto alive = alive_;
    job.done(std::move(result));
    if (*alive && !current_ && !queue_.empty())
        next_job();
}

void GuestAgentClient::disconnect()
{
    loop_.remove_fd(std::exchange(watch_, 0));
    watch_events_ = 0;
    fd_.reset();
    if (!out_.empty())
        sent_ = false; // cut off before all of it went
    out_.clear();
    reader_.reset();
}

void GuestAgentClient::fail_all(const std::string &why)
{
    loop_.cancel_timer(std::exchange(job_timer_, 0));
    std::deque<Job> jobs;
    bool sent_silent = current_ && current_->silent_ok && sent_;
    if (current_)
        jobs.push_back(std::move(*current_));
    current_.reset();
    for (auto &j : queue_)
        jobs.push_back(std::move(j));
    queue_.clear();
    update_watch();
    auto alive = alive_;
    for (auto &j : jobs) {
        // A guest-shutdown already sent is not undone by the guest (or QEMU) going away.
        bool taken = sent_silent && &j == &jobs.front();
        j.done(taken ? Result<nlohmann::json>(nlohmann::json(nullptr)) : Result<nlohmann::json>(fail(why)));
        if (!*alive)
            return;
    }
}

} // namespace rescuevm
