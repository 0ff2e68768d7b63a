// SPDX-License-Identifier: GPL-2.0-or-later
// `rescuevm run`: plan, refuse with the reasons or hand over to the agent.
#include "rescuevm/agent/agent.h"
#include "rescuevm/cli/cli.h"
#include "rescuevm/host/gather.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/sys/process.h"
#include "rescuevm/core/report.h"
#include "rescuevm/agent/session_files.h"

#include <sys/wait.h>
#include <unistd.h>

namespace rescuevm {
namespace {

// Early in boot the kernel may still be announcing disks: wait, bounded, for udev.
void settle_udev()
{
    if (::access("/run/udev/control", F_OK) != 0)
        return; // no udev daemon (initramfs without udev, containers): nothing to wait for
    SpawnOptions options;
    options.argv = {"udevadm", "settle", "--timeout=30"};
    options.new_session = false;
    auto child = spawn(options);
    if (!child)
        return;
    siginfo_t info{};
    ::waitid(P_PIDFD, static_cast<id_t>(child->pidfd.get()), &info, WEXITED);
}

} // namespace

int cmd_run(const CliOptions &, const Config &config)
{
    auto log = log::get("agent");
    log->info("rescuevm {} starting (config: {})", RESCUEVM_VERSION, config.source);
    settle_udev();
    Plan plan = make_plan(config);
    for (const auto &d : plan.disks)
        log::get("disks")->info("{} {} {}/{}: {}{}", d.disk.name, human_size(d.disk.size_bytes),
                                d.disk.logical_block_size, d.disk.physical_block_size,
                                d.selected ? "passed to the VM" : "not passed: ", d.selected ? "" : d.reason);
    for (const auto &c : plan.checks) {
        if (c.ok)
            log::get("checks")->info("{}: ok: {}", c.name, c.message);
        else
            log::get("checks")->error("{}: FAILED: {}", c.name, c.message);
    }
    for (const auto &w : plan.warnings)
        log::get("checks")->warn("{}", w);
    if (!plan.ready()) {
        log->error("refusing to start the Windows rescue VM: fix the failed checks above; the host stays in rescue");
        return kExitRefused;
    }
    if (auto r = prepare_runtime_dir(config.paths.runtime_dir); !r) {
        log->error("{}", r.error().message);
        return kExitFailure;
    }
    log->info("starting the VM: {} RAM, {} CPUs, {} disk(s) on {}", human_size(plan.vm_memory_bytes), plan.vm_cpus,
              plan.passed().size(), to_string(config.disks.bus));
    return run_agent(plan);
}

} // namespace rescuevm
