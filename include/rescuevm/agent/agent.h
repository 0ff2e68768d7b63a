// SPDX-License-Identifier: GPL-2.0-or-later
// The agent: the executor of the supervisor policy. Events in (QEMU, QMP, signals, timers, the control socket), actions out.
#pragma once

#include "rescuevm/agent/boot_watch.h"
#include "rescuevm/agent/control.h"
#include "rescuevm/agent/qemu_instance.h"
#include "rescuevm/agent/session_files.h"
#include "rescuevm/agent/start_preparation.h"
#include "rescuevm/agent/systemd_notify.h"
#include "rescuevm/core/plan.h"
#include "rescuevm/core/supervisor_policy.h"
#include "rescuevm/net/uplink_claim.h"
#include "rescuevm/sys/event_loop.h"
#include "rescuevm/sys/worker.h"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace rescuevm {

// A QEMU an earlier agent left running, to take over instead of starting one.
struct Takeover {
    QemuRecord record;
};

class Agent final : public QemuListener {
public:
    // The plan must be ready() unless a takeover is given (a live VM is always supervised).
    Agent(const Plan &plan, EventLoop &loop, std::optional<Takeover> takeover);
    ~Agent() override;

    // Runs the session until the policy says to exit; returns the exit status.
    int run();

    // The state the policy holds (for `status` and tests).
    const supervisor::State &state() const { return state_; }

private:
    // Events in, actions out: the only place the VM's state changes.
    void feed(const supervisor::Event &event);
    void execute(const supervisor::Action &action);

    // Actions.
    void prepare_start();
    void spawn_qemu();
    void qmp(const supervisor::Qmp &command);
    void panic_screenshot(unsigned slot);
    void check_signatures(const std::string &when);
    void release_network();
    void finish(int code);
    void finish_now(int code);

    // QemuListener.
    void qemu_exited(const std::string &how) override;
    void qmp_ready() override;
    void qmp_event(const QmpEvent &event) override;
    void qmp_lost() override;
    void qmp_unresponsive(const std::string &detail) override;
    void qmp_status(const std::string &status) override;

    // The control socket (agent_control.cpp).
    void on_control(std::uint64_t client, const ControlRequest &request);
    void screenshot(std::uint64_t client, const ControlRequest &request);
    StatusReport status_report() const;

    void reattach();
    void set_overlay_threshold();
    void housekeeping();
    void watch_signals();
    std::vector<std::string> expected_disk_ids() const;
    std::int64_t now_ms() const;

    const Plan plan_;
    EventLoop &loop_;
    std::optional<Takeover> takeover_;
    supervisor::State state_;
    std::string session_uuid_;
    ControlServer control_;
    SystemdNotifier notifier_;
    Worker worker_;
    BootWatch boot_watch_;
    std::chrono::steady_clock::time_point started_;

    std::unique_ptr<QemuInstance> qemu_;
    std::vector<std::string> qemu_argv_;
    bool qmp_negotiated_once_ = false;      // a later qmp_ready() is a reconnect
    std::optional<UplinkClaim> net_;
    std::map<supervisor::Timer, TimerId> timers_;
    std::vector<DiskSignature> signatures_; // recorded at the first start: the reference
    std::map<std::string, std::string> seen_disk_ids_; // latest partition-table id seen per disk
    std::vector<SignatureChange> changes_;
    std::set<std::string> warned_;
    std::optional<PreparedStart> prepared_; // between PrepareStart and SpawnQemu
    std::optional<std::uint64_t> replying_to_; // the control request being handled
    std::optional<std::uint64_t> start_reply_to_; // a `vm start` waiting for its outcome
    std::optional<int> exit_code_;
    bool finishing_ = false;
    TimerId housekeeping_timer_ = 0;
};

// Builds the agent over a fresh event loop and runs it.
int run_agent(const Plan &plan, std::optional<Takeover> takeover);

} // namespace rescuevm
