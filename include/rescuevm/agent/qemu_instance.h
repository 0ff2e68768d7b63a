// SPDX-License-Identifier: GPL-2.0-or-later
// QemuInstance: one QEMU of the session, started or re-attached the same way, watched by pidfd and spoken to over QMP.
#pragma once

#include "rescuevm/agent/qmp_client.h"
#include "rescuevm/sys/event_loop.h"
#include "rescuevm/sys/process.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace rescuevm {

// What the instance reports, in the loop's thread. A listener may destroy the
// instance only from qemu_exited().
class QemuListener {
public:
    virtual ~QemuListener() = default;
    virtual void qemu_exited(const std::string &how) = 0;
    virtual void qmp_ready() = 0;                                // negotiated: first time and after each reconnect
    virtual void qmp_event(const QmpEvent &event) = 0;
    virtual void qmp_lost() = 0;                                 // the connection dropped, QEMU alive: reconnecting
    virtual void qmp_unresponsive(const std::string &detail) = 0; // the health check got no answer
    virtual void qmp_status(const std::string &status) = 0;      // the health check's run state ("running", ...)
};

struct QemuTiming {
    std::chrono::milliseconds health_period{5000};   // a query-status this often
    std::chrono::milliseconds health_deadline{5000}; // and this long to answer it
    std::chrono::milliseconds connect_deadline{30000};
    std::chrono::milliseconds reconnect_first{1000}, reconnect_max{30000};
};

class QemuInstance {
public:
    using Timing = QemuTiming;

    // Spawns QEMU with `options` (its -S: the guest waits for `cont`).
    static Result<std::unique_ptr<QemuInstance>> spawn(EventLoop &loop, QemuListener &listener,
                                                       const SpawnOptions &options, std::string qmp_socket,
                                                       Timing timing = {});
    // Takes over a QEMU an earlier agent started: the pid must still be that process.
    static Result<std::unique_ptr<QemuInstance>> attach(EventLoop &loop, QemuListener &listener, pid_t pid,
                                                        std::uint64_t start_time, std::string qmp_socket,
                                                        Timing timing = {});
    ~QemuInstance();

    // A QMP command; the callback gets QEMU's answer, its error, or the deadline.
    void command(const std::string &name, const nlohmann::json &args, std::chrono::milliseconds deadline,
                 QmpClient::CommandCallback callback);
    // The connection will end because QEMU quits: that is no lost connection.
    void expect_exit() { quitting_ = true; }
    void kill();      // SIGKILL through the pidfd
    void terminate(); // SIGTERM through the pidfd: QEMU stops the guest at once (no ACPI)

    pid_t pid() const { return process_.pid; }
    std::uint64_t start_time() const { return process_.start_time; }
    bool qmp_ready() const { return qmp_ && qmp_->ready(); }

private:
    QemuInstance(EventLoop &loop, QemuListener &listener, ProcessHandle process, std::string qmp_socket,
                 Timing timing);
    void start();
    void connect_qmp();
    void on_disconnect(const Error &error);
    void on_exit();
    void health_check();

    EventLoop &loop_;
    QemuListener &listener_;
    ProcessHandle process_;
    std::string qmp_socket_;
    Timing timing_;
    std::unique_ptr<QmpClient> qmp_;
    WatchId pidfd_watch_ = 0;
    TimerId health_timer_ = 0, reconnect_timer_ = 0;
    std::chrono::milliseconds reconnect_delay_{0};
    bool quitting_ = false;
    bool exited_ = false;
    bool health_pending_ = false;
};

} // namespace rescuevm
