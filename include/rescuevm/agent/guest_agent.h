// SPDX-License-Identifier: GPL-2.0-or-later
// GuestAgentClient: the agent's client of qemu-ga on the virtio-serial channel org.qemu.guest_agent.0: probes, facts, guest-shutdown; bounded, with deadlines, never trusted.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/guest_agent_protocol.h"
#include "rescuevm/sys/event_loop.h"
#include "rescuevm/sys/unique_fd.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace rescuevm {

struct GuestAgentTiming {
    std::chrono::milliseconds first_probe{2000};      // after QEMU starts (or the guest resets)
    std::chrono::milliseconds probe_down{10000};      // while it does not answer
    std::chrono::milliseconds probe_up{30000};        // while it answers
    std::chrono::milliseconds facts_every{300000};    // OS, hostname: again after this
    std::chrono::milliseconds addresses_every{60000}; // the guest's addresses: again after this
    std::chrono::milliseconds sync_deadline{3000};
    std::chrono::milliseconds command_deadline{5000};
    std::chrono::milliseconds shutdown_quiet{2000};   // guest-shutdown answers only when it fails
};

// What the guest sends is untrusted: a reply is only taken after our own sync
// (guest-sync-delimited with a fresh id: 0xFF, then {"return": id}); input is read only while a
// request waits for its answer, through a bounded reader (QgaReader); a request without its
// answer in time ends the connection, so a late answer or a stale request never matches a
// later one. Everything keeps working when nothing answers (no qemu-ga in the guest).
class GuestAgentClient {
public:
    struct Callbacks {
        std::function<void()> answered;                    // after every good probe
        std::function<void(const std::string &)> lost;     // answered before, not now
        std::function<void(bool first)> facts;             // facts() was refreshed
    };
    using ShutdownCallback = std::function<void(bool ok, const std::string &detail)>;

    GuestAgentClient(EventLoop &loop, std::string socket_path, Callbacks callbacks, GuestAgentTiming timing = {});
    ~GuestAgentClient();
    GuestAgentClient(const GuestAgentClient &) = delete;
    GuestAgentClient &operator=(const GuestAgentClient &) = delete;

    void start();       // QEMU runs: probe from now on
    void stop();        // QEMU ended
    void guest_reset(); // the guest rebooted: what answered before is gone
    // guest-shutdown mode=powerdown, after a sync. ok: taken (qemu-ga answers it only when it
    // fails); not ok: why not. Called once, from the loop.
    void shutdown(ShutdownCallback done);

    bool answering() const { return answering_; }
    bool ever_answered() const { return last_answer_ms_ >= 0; }
    std::int64_t last_answer_ms() const { return last_answer_ms_; } // steady clock; -1: never
    const GuestFacts &facts() const { return facts_; }

private:
    struct Job {
        std::string name;
        std::string bytes;
        std::optional<std::uint64_t> sync_id; // a sync: its reply carries this id
        bool silent_ok = false;               // guest-shutdown: no answer within the time is success
        std::chrono::milliseconds deadline;
        std::function<void(Result<nlohmann::json>)> done;
    };

    void enqueue(Job job);
    void enqueue_sync(std::function<void(Result<nlohmann::json>)> done);
    void next_job();
    bool ensure_connected(std::string &why);
    void on_socket(std::uint32_t revents);
    void read_input();
    void flush_output();
    void update_watch();
    void finish_job(Result<nlohmann::json> result);
    void disconnect();
    void fail_all(const std::string &why);

    void schedule_probe(std::chrono::milliseconds after);
    void probe();
    void probe_failed(const std::string &why);
    void refresh_facts(bool first, bool all);
    std::int64_t now_ms() const;

    EventLoop &loop_;
    std::string path_;
    Callbacks callbacks_;
    GuestAgentTiming timing_;
    UniqueFd fd_;
    WatchId watch_ = 0;
    std::uint32_t watch_events_ = 0;
    QgaReader reader_;
    std::string out_;
    bool sent_ = false; // all of the current request went out
    std::deque<Job> queue_;
    std::optional<Job> current_;
    TimerId job_timer_ = 0, probe_timer_ = 0;
    std::uint64_t next_sync_ = 0;
    bool running_ = false;
    bool answering_ = false;
    bool probing_ = false;
    std::int64_t last_answer_ms_ = -1;
    std::int64_t facts_ms_ = -1, addresses_ms_ = -1;
    GuestFacts facts_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace rescuevm
