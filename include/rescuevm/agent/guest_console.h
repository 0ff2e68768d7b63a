// SPDX-License-Identifier: GPL-2.0-or-later
// GuestConsole: the guest's COM1 (EMS/SAC) as the agent owns it: read from QEMU's socket, kept in a bounded rotated log and in memory, served to `rescuevm vm console` clients.
#pragma once

#include "rescuevm/core/console_tail.h"
#include "rescuevm/core/error.h"
#include "rescuevm/sys/event_loop.h"
#include "rescuevm/sys/unique_fd.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace rescuevm {

struct GuestConsoleOptions {
    std::string serial_socket;  // QEMU's chardev (server=on): the agent connects to it
    std::string log_path;       // guest-console.log
    std::string log_previous;   // guest-console.log.1: the log before the last rotation
    std::uint64_t log_size = 4ULL << 20;
    std::string clients_socket; // where `rescuevm vm console` connects
};

// The guest console log: appended as the guest writes; when the next bytes would take it past
// `limit`, the file becomes the ".1" file (replacing the one before) and a new one starts, so
// at most 2 x limit bytes are kept. A write error is reported once and the bytes are dropped
// (the guest is never stalled by a full RAM disk).
class ConsoleLog {
public:
    ConsoleLog(std::string path, std::string previous, std::uint64_t limit);
    void write(std::string_view bytes);
    // The path is still our file (a removed or replaced log is opened again).
    void check_file();
    std::uint64_t rotations() const { return rotations_; }

private:
    bool open();
    void rotate();
    void append(std::string_view bytes);

    std::string path_, previous_;
    std::uint64_t limit_;
    UniqueFd fd_;
    std::uint64_t size_ = 0;
    std::uint64_t rotations_ = 0;
    bool failing_ = false;
};

// Client protocol (console.sock, root only): the client sends one JSON line
//   {"mode":"rw"|"ro"|"tail", "force":bool, "lines":N, "tty":"/dev/pts/3", "tty_dev":N}
// and gets one JSON line {"ok":true,"mode":"rw"|"ro"|"tail","message":...} (or
// {"ok":false,"error":...} and the end). Then the guest's bytes follow raw; a "rw" client's
// bytes go to the guest. One client at a time has the keyboard: a second "rw" client is made
// read-only and told so, unless it asks with "force" (the former one is then read-only and
// told). "tail" gets the last lines, made printable, and the end. Notices from the agent come
// in the stream as "\r\n[rescuevm: ...]\r\n". A client whose terminal is where the agent logs
// (log::console_terminals()) holds the agent's console log lines while it is attached.
class GuestConsole {
public:
    using OutputCallback = std::function<void(std::size_t bytes)>;

    static constexpr std::size_t kMaxClients = 8;
    static constexpr std::size_t kClientQueue = 256 * 1024; // past it, output is skipped for that client
    static constexpr std::size_t kGuestQueue = 64 * 1024;   // typed bytes waiting for the guest
    static constexpr std::chrono::seconds kStalledClient{30};

    GuestConsole(EventLoop &loop, GuestConsoleOptions options, OutputCallback on_output);
    ~GuestConsole();
    GuestConsole(const GuestConsole &) = delete;
    GuestConsole &operator=(const GuestConsole &) = delete;

    // The clients socket (0600; a stale one is replaced).
    Result<void> listen();
    bool socket_present() const;
    // It listened, and its socket file is gone (runtime_dir removed?): listen() again.
    bool socket_lost() const { return socket_ino_ != 0 && !socket_present(); }
    // QEMU started (or was re-attached): connect to its serial socket, retrying until
    // `deadline` (QEMU makes the socket as it starts).
    void connect_qemu(std::chrono::milliseconds deadline);
    // QEMU ended: its socket is gone; attached clients stay and are told.
    void qemu_gone();
    // Everything closed, the clients socket removed.
    void close();

    // For `status`.
    bool connected() const { return serial_ && serial_connected_; }
    std::int64_t last_output_ms() const { return last_output_ms_; } // steady clock; -1: never
    std::uint64_t bytes() const { return tail_.bytes_seen(); }
    unsigned clients() const;
    std::string writer() const;
    std::vector<std::string> last_lines(std::size_t count) const { return tail_.last(count); }
    std::uint64_t log_rotations() const { return log_.rotations(); }

private:
    struct Client {
        UniqueFd fd;
        WatchId watch = 0;
        bool attached = false;  // said hello, got its answer
        bool writer = false;
        bool tail = false;      // "tail": closes once its output is written
        bool holds_log = false; // its terminal is where the agent logs
        bool reading = true;    // EPOLLIN on (off while its typed bytes wait for the guest)
        int pid = 0;
        std::string tty;
        std::string in;         // the hello line
        std::string out;        // to the client, at most kClientQueue (+ notices)
        std::uint64_t skipped = 0;
        std::int64_t stalled_since_ms = -1;
        std::int64_t readonly_notice_ms = -1'000'000;
        TimerId hello_timer = 0;
    };

    void accept_clients();
    void on_client(std::uint64_t id, std::uint32_t revents);
    void read_client(std::uint64_t id);
    void hello(std::uint64_t id, const std::string &line, std::string rest);
    void typed(std::uint64_t id, std::string_view bytes);
    void send(std::uint64_t id, std::string_view bytes, bool notice = false);
    void flush_client(std::uint64_t id);
    void update_client_watch(std::uint64_t id);
    void drop(std::uint64_t id, const std::string &why);
    std::string describe(const Client &c) const;

    void try_connect();
    void on_serial(std::uint32_t revents);
    void read_serial();
    void flush_guest();
    void update_serial_watch();
    void serial_closed(const std::string &why);
    void guest_output(std::string_view bytes);
    void notify_all(const std::string &text);
    void housekeeping();
    std::int64_t now_ms() const;

    EventLoop &loop_;
    GuestConsoleOptions options_;
    OutputCallback on_output_;
    ConsoleLog log_;
    ConsoleTail tail_;

    UniqueFd listen_fd_;
    WatchId listen_watch_ = 0;
    unsigned long socket_ino_ = 0;
    std::uint64_t next_client_ = 1;
    std::map<std::uint64_t, Client> clients_;

    UniqueFd serial_;
    WatchId serial_watch_ = 0;
    bool serial_connected_ = false;
    bool serial_watching_output_ = false;
    bool qemu_present_ = false;
    TimerId connect_timer_ = 0, housekeeping_timer_ = 0;
    std::chrono::steady_clock::time_point connect_until_;
    std::chrono::milliseconds retry_delay_{10};
    std::string to_guest_;
    std::int64_t last_output_ms_ = -1;
};

} // namespace rescuevm
