// SPDX-License-Identifier: GPL-2.0-or-later
// QmpClient: a non-blocking QEMU Machine Protocol client driven by the EventLoop.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/sys/event_loop.h"
#include "rescuevm/sys/unique_fd.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace rescuevm {

struct QmpEvent {
    std::string name;       // "RESET", "SHUTDOWN", "GUEST_PANICKED", ...
    nlohmann::json data;    // {} when the event has none
    std::int64_t timestamp_us = 0; // QEMU's timestamp (seconds * 1e6 + microseconds)
};

struct QmpLimits {
    // A longer line, or garbage that is not a JSON object, ends the connection.
    // Complete lines are handled as soon as they arrive, so this also bounds the
    // buffered input (plus one read of 64 KiB).
    std::size_t max_line = 1 << 20;
    // Greeting + qmp_capabilities must be done within this after the socket
    // connects (QEMU keeps a second client waiting silently while one is connected).
    std::chrono::milliseconds handshake_timeout{10000};
};

// Lifecycle: connect() or attach_fd() -> greeting -> qmp_capabilities -> on_ready
// -> commands and events -> on_disconnect (once) or close().
//
// Commands issued before on_ready are queued and sent right after negotiation
// (QEMU refuses every command before qmp_capabilities); their deadlines run from
// execute(). Every command callback is called exactly once: with the "return"
// value, an Error for an "error" reply, its deadline, or the connection's end.
// Callbacks run from the EventLoop, never from inside execute(). It is safe to
// destroy the client from any of its callbacks; destruction drops pending
// command callbacks without calling them.
class QmpClient {
public:
    using CommandCallback = std::function<void(Result<nlohmann::json>)>;

    explicit QmpClient(EventLoop &loop, QmpLimits limits = {});
    ~QmpClient();
    QmpClient(const QmpClient &) = delete;
    QmpClient &operator=(const QmpClient &) = delete;

    void on_ready(std::function<void()> callback) { on_ready_ = std::move(callback); }
    void on_event(std::function<void(const QmpEvent &)> callback) { on_event_ = std::move(callback); }
    // Fires once per connection that ends without close(): EOF, socket error,
    // protocol violation, failed negotiation, or connect() giving up.
    void on_disconnect(std::function<void(const Error &)> callback) { on_disconnect_ = std::move(callback); }

    // Connects to QEMU's QMP socket, retrying (ENOENT, ECONNREFUSED: QEMU has not
    // created it yet) on a timer until connect_deadline has passed since the call.
    void connect(const std::string &path, std::chrono::milliseconds connect_deadline);
    // Takes an already-connected stream socket (tests, or a socket from elsewhere).
    void attach_fd(UniqueFd fd);

    // Sends {"execute": name, "arguments": args, "id": "rv-<n>"}; args null or {}
    // means no arguments. Returns the id.
    std::string execute(const std::string &name, const nlohmann::json &args,
                        std::chrono::milliseconds deadline, CommandCallback callback);
    // Same, with fd passed alongside (SCM_RIGHTS) for QMP getfd/add-fd. fd is dup'ed.
    std::string execute_with_fd(const std::string &name, const nlohmann::json &args, int fd,
                                std::chrono::milliseconds deadline, CommandCallback callback);

    // Ends the connection on our side: pending commands fail with "QMP connection
    // closed"; on_disconnect does not fire. The client can connect again afterwards.
    void close();

    bool ready() const { return state_ == State::ready; }
    std::size_t pending_count() const { return pending_.size(); }

private:
    enum class State { idle, connecting, greeting, negotiating, ready };
    struct Pending {
        std::string name;
        TimerId deadline_timer = 0;
        CommandCallback callback;
    };
    struct Outgoing {
        std::string id; // whose bytes; empty for the capabilities command
        std::string bytes;
        UniqueFd fd;    // sent with the first byte
    };

    std::string queue_command(const std::string &name, const nlohmann::json &args, int fd,
                              std::chrono::milliseconds deadline, CommandCallback callback);
    void try_connect();
    void start_session(UniqueFd fd);
    void on_socket(std::uint32_t revents);
    void read_input();
    void handle_line(std::string_view line);
    void handle_greeting();
    void handle_reply(const nlohmann::json &message);
    void flush_output();
    void update_watch();
    void fail_command(const std::string &id, const std::string &message);
    void disconnect(const std::string &reason);
    void teardown(bool notify, const std::string &reason);

    EventLoop &loop_;
    QmpLimits limits_;
    State state_ = State::idle;
    UniqueFd fd_;
    std::uint64_t session_ = 0; // bumped by teardown: stale work stops
    WatchId watch_ = 0;
    bool watching_output_ = false;
    TimerId connect_timer_ = 0;
    TimerId handshake_timer_ = 0;
    std::string path_;
    std::chrono::steady_clock::time_point connect_until_;
    std::chrono::milliseconds retry_delay_{10};
    std::uint64_t next_id_ = 1;
    std::string input_;
    std::deque<Outgoing> output_;
    std::deque<Outgoing> queued_; // before negotiation completes
    std::map<std::string, Pending> pending_;
    std::function<void()> on_ready_;
    std::function<void(const QmpEvent &)> on_event_;
    std::function<void(const Error &)> on_disconnect_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace rescuevm
