// SPDX-License-Identifier: GPL-2.0-or-later
// QemuInstance: pidfd watch, QMP connection kept up (reconnect with backoff), and a periodic query-status as a health check.
#include "rescuevm/agent/qemu_instance.h"

#include "rescuevm/sys/log.h"

#include <poll.h>

#include <csignal>

namespace rescuevm {

using namespace std::chrono_literals;

Result<std::unique_ptr<QemuInstance>> QemuInstance::spawn(EventLoop &loop, QemuListener &listener,
                                                          const SpawnOptions &options, std::string qmp_socket,
                                                          Timing timing)
{
    auto process = RESCUEVM_TRY(rescuevm::spawn(options));
    std::unique_ptr<QemuInstance> q(
        new QemuInstance(loop, listener, std::move(process), std::move(qmp_socket), timing));
    q->start();
    return q;
}

Result<std::unique_ptr<QemuInstance>> QemuInstance::attach(EventLoop &loop, QemuListener &listener, pid_t pid,
                                                           std::uint64_t start_time, std::string qmp_socket,
                                                           Timing timing)
{
    auto process = RESCUEVM_TRY(rescuevm::attach(pid, start_time));
    std::unique_ptr<QemuInstance> q(
        new QemuInstance(loop, listener, std::move(process), std::move(qmp_socket), timing));
    q->start();
    return q;
}

QemuInstance::QemuInstance(EventLoop &loop, QemuListener &listener, ProcessHandle process, std::string qmp_socket,
                           Timing timing)
    : loop_(loop), listener_(listener), process_(std::move(process)), qmp_socket_(std::move(qmp_socket)),
      timing_(timing)
{
}

QemuInstance::~QemuInstance()
{
    loop_.remove_fd(pidfd_watch_);
    loop_.cancel_timer(health_timer_);
    loop_.cancel_timer(reconnect_timer_);
}

void QemuInstance::start()
{
    if (auto w = loop_.add_fd(process_.pidfd.get(), EPOLLIN, [this](std::uint32_t) { on_exit(); }))
        pidfd_watch_ = *w;
    else
        log::get("qemu")->error("{}", w.error().message);
    connect_qmp();
    health_timer_ = loop_.add_timer(timing_.health_period, [this] { health_check(); });
}

void QemuInstance::connect_qmp()
{
    reconnect_timer_ = 0;
    qmp_ = std::make_unique<QmpClient>(loop_);
    qmp_->on_event([this](const QmpEvent &e) { listener_.qmp_event(e); });
    qmp_->on_ready([this] {
        reconnect_delay_ = 0ms;
        log::get("qmp")->debug("QMP negotiated");
        listener_.qmp_ready();
    });
    qmp_->on_disconnect([this](const Error &e) { on_disconnect(e); });
    qmp_->connect(qmp_socket_, timing_.connect_deadline);
}

void QemuInstance::on_disconnect(const Error &error)
{
    log::get("qmp")->debug("QMP connection ended: {}", error.message);
    // QEMU's exit is reported by its pidfd (polled here, never reaped: on_exit() logs the status).
    pollfd ended{process_.pidfd.get(), POLLIN, 0};
    if (exited_ || quitting_ || ::poll(&ended, 1, 0) != 0)
        return;
    listener_.qmp_lost();
    reconnect_delay_ = reconnect_delay_ == 0ms ? timing_.reconnect_first
                                               : std::min(reconnect_delay_ * 2, timing_.reconnect_max);
    reconnect_timer_ = loop_.add_timer(reconnect_delay_, [this] { connect_qmp(); });
}

void QemuInstance::on_exit()
{
    if (exited_)
        return;
    auto status = try_reap(process_.pidfd.get());
    if (status && !*status)
        return; // spurious: still running
    exited_ = true;
    std::string how = status && *status ? (*status)->describe() : "ended";
    loop_.remove_fd(pidfd_watch_);
    pidfd_watch_ = 0;
    loop_.cancel_timer(health_timer_);
    loop_.cancel_timer(reconnect_timer_);
    if (qmp_)
        qmp_->close();
    log::get("qemu")->info("QEMU {}", how);
    listener_.qemu_exited(how); // may destroy this
}

void QemuInstance::health_check()
{
    health_timer_ = loop_.add_timer(timing_.health_period, [this] { health_check(); });
    if (!qmp_ || !qmp_->ready() || health_pending_)
        return; // connecting: the reconnect logic reports; a probe in flight: wait for it
    health_pending_ = true;
    qmp_->execute("query-status", nlohmann::json::object(), timing_.health_deadline,
                  [this](Result<nlohmann::json> reply) {
                      health_pending_ = false;
                      if (!reply) {
                          listener_.qmp_unresponsive(reply.error().message);
                          return;
                      }
                      if (reply->is_object() && reply->contains("status") && (*reply)["status"].is_string())
                          listener_.qmp_status((*reply)["status"].get<std::string>());
                  });
}

void QemuInstance::command(const std::string &name, const nlohmann::json &args, std::chrono::milliseconds deadline,
                           QmpClient::CommandCallback callback)
{
    if (!qmp_) {
        loop_.add_timer(0ms, [callback, name] { callback(fail("QMP is not connected; " + name + " was not sent")); });
        return;
    }
    qmp_->execute(name, args, deadline, std::move(callback));
}

void QemuInstance::kill()
{
    if (!exited_)
        (void)send_signal(process_.pidfd.get(), SIGKILL);
}

void QemuInstance::terminate()
{
    if (!exited_)
        (void)send_signal(process_.pidfd.get(), SIGTERM);
}

} // namespace rescuevm
