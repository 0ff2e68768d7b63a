// SPDX-License-Identifier: GPL-2.0-or-later
// The control socket: JSON lines between `rescuevm status|vm` and the running agent.
#pragma once

#include "rescuevm/core/control_protocol.h"
#include "rescuevm/core/error.h"
#include "rescuevm/sys/event_loop.h"
#include "rescuevm/sys/unique_fd.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>

namespace rescuevm {

// Server side, in the agent's loop. Each request line gets exactly one reply line,
// possibly later (respond() with the client id the handler was given). Requests are
// parsed and checked here (parse_control_request): a malformed one is answered with
// {"ok":false,"error":...} and never reaches the handler. A client that sends its
// request and closes its side at once (half-close) still gets its answer.
class ControlServer {
public:
    using Handler = std::function<void(std::uint64_t client, const ControlRequest &request)>;

    ControlServer(EventLoop &loop, Handler handler);
    ~ControlServer();
    // Binds a 0600 socket at path (replacing a stale one).
    Result<void> listen(const std::string &path);
    // The socket file is still ours (someone may have removed runtime_dir).
    bool socket_present() const;
    void respond(std::uint64_t client, const nlohmann::json &reply);
    void close();

    static constexpr std::size_t kMaxLine = 64 * 1024;
    static constexpr std::size_t kMaxClients = 16;

private:
    struct Client {
        UniqueFd fd;
        WatchId watch = 0;
        std::string in;
        unsigned awaiting = 0;   // requests handed on, not yet answered
        bool at_eof = false;     // the client closed its side: answer, then drop
    };
    void accept_clients();
    void read_client(std::uint64_t id);
    void handle_line(std::uint64_t id, const std::string &line);
    void drop(std::uint64_t id);

    EventLoop &loop_;
    Handler handler_;
    UniqueFd listen_fd_;
    WatchId listen_watch_ = 0;
    std::string path_;
    unsigned long socket_ino_ = 0;
    std::uint64_t next_client_ = 1;
    std::map<std::uint64_t, Client> clients_;
};

// Client side: one request, one reply, bounded wait.
Result<nlohmann::json> control_request(const std::string &socket_path, const nlohmann::json &request,
                                       std::chrono::milliseconds timeout);

} // namespace rescuevm
