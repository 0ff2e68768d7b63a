// SPDX-License-Identifier: GPL-2.0-or-later
// `rescuevm run`: one agent per runtime_dir, take over a live VM or plan a new one, refuse with the reasons or run.
#include "rescuevm/agent/agent.h"
#include "rescuevm/cli/cli.h"
#include "rescuevm/core/report.h"
#include "rescuevm/host/gather.h"
#include "rescuevm/sys/files.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/sys/process.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>

namespace rescuevm {
namespace {

using namespace std::chrono_literals;

// Early in boot the kernel may still be announcing disks: wait, bounded, for udev.
void settle_udev()
{
    if (::access("/run/udev/control", F_OK) != 0)
        return; // no udev daemon (initramfs without udev, containers): nothing to wait for
    SpawnOptions options;
    options.argv = {"udevadm", "settle", "--timeout=30"};
    auto r = run_to_completion(options, 35s);
    if (!r)
        log::get("agent")->warn("udevadm settle: {}, ignoring", r.error().message);
    else if (!r->ok())
        log::get("agent")->warn("udevadm settle did not finish within 30 s ({}): some disks may not be listed yet; "
                                "going on",
                                r->status.describe());
}

// Early in boot /dev/kvm may not exist yet (the kvm module loads with coldplug): a CPU
// with VT-x/AMD-V gets its module loaded and a bounded wait before the kvm check.
void wait_for_kvm(const Config &config)
{
    if (config.vm.accel != Accel::kvm || ::access("/dev/kvm", F_OK) == 0)
        return;
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line, module;
    while (std::getline(cpuinfo, line) && module.empty()) {
        if (!line.starts_with("flags"))
            continue;
        if (line.find(" vmx") != std::string::npos)
            module = "kvm_intel";
        else if (line.find(" svm") != std::string::npos)
            module = "kvm_amd";
        break;
    }
    if (module.empty())
        return; // no virtualisation in the CPU: the kvm check says so
    auto log = log::get("agent");
    log->info("/dev/kvm is not there yet: loading {} and waiting up to 30 s", module);
    SpawnOptions modprobe;
    modprobe.argv = {"modprobe", module};
    if (auto r = run_to_completion(modprobe, 10s); !r || !r->ok())
        log->warn("modprobe {} failed ({}), waiting anyway", module, r ? r->output : r.error().message);
    for (int i = 0; i < 120 && ::access("/dev/kvm", F_OK) != 0; ++i)
        ::usleep(250'000); // before the event loop exists: a bounded wait at start
    if (::access("/dev/kvm", F_OK) != 0)
        log->warn("/dev/kvm did not appear within 30 s");
}

// A QEMU of this runtime_dir found by its command line (its QMP socket), for when
// the record is missing or unreadable: a live VM is taken over, never started twice.
std::optional<QemuRecord> find_qemu_by_cmdline(const RuntimePaths &paths)
{
    std::string needle = "path=" + paths.qmp_socket() + ",";
    DIR *proc = ::opendir("/proc");
    if (!proc)
        return std::nullopt;
    std::optional<QemuRecord> found;
    while (dirent *e = ::readdir(proc)) {
        std::string pid = e->d_name;
        if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos)
            continue;
        std::ifstream in("/proc/" + pid + "/cmdline");
        std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (cmdline.find(needle) == std::string::npos || cmdline.find("mode=control") == std::string::npos)
            continue;
        auto start = read_start_time(std::stoi(pid));
        if (!start)
            continue;
        QemuRecord r;
        r.pid = std::stoi(pid);
        r.start_time = *start;
        for (std::size_t at = 0; at < cmdline.size();) {
            std::size_t end = cmdline.find('\0', at);
            r.argv.push_back(cmdline.substr(at, end - at));
            at = end == std::string::npos ? cmdline.size() : end + 1;
        }
        for (std::size_t i = 0; i + 1 < r.argv.size(); ++i)
            if (r.argv[i] == "-uuid")
                r.session_uuid = r.argv[i + 1];
        found = std::move(r);
        break;
    }
    ::closedir(proc);
    return found;
}

// The VM an earlier agent of this runtime_dir left running, if any.
std::optional<Takeover> live_vm(const RuntimePaths &paths)
{
    auto log = log::get("agent");
    auto record = load_qemu_record(paths);
    if (!record)
        log->error("{}", record.error().message);
    if (record && *record) {
        if (attach((*record)->pid, (*record)->start_time))
            return Takeover{**record};
        log->info("QEMU of an earlier agent (pid {}) is gone", (*record)->pid);
        remove_qemu_record(paths);
    }
    if (auto orphan = find_qemu_by_cmdline(paths)) {
        log->warn("found QEMU pid {} of this runtime directory without a usable record: taking it over", orphan->pid);
        return Takeover{*orphan};
    }
    return std::nullopt;
}

// With no VM to take over, an uplink still claimed by an earlier agent goes back first.
void release_stale_claim(const RuntimePaths &paths)
{
    auto log = log::get("agent");
    auto old = UplinkClaim::load(paths.network_claim());
    if (!old) {
        log->error("{}", old.error().message);
        return;
    }
    if (!*old)
        return;
    log->info("giving the uplink back to the host first (claimed by an earlier agent)");
    if (auto r = (*old)->release(); !r)
        log->error("{}", r.error().message);
}

void log_plan(const Plan &plan)
{
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
}

} // namespace

int cmd_run(const CliOptions &, const Config &config)
{
    auto log = log::get("agent");
    log->info("rescuevm {} starting (config: {})", RESCUEVM_VERSION, config.source);
    RuntimePaths paths{config.paths.runtime_dir};

    // Only a directory nobody but root can write is trusted with the records the agent acts on.
    if (Check dir = runtime_dir_verdict(read_runtime_dir_facts(paths.dir), paths.dir); !dir.ok) {
        log::get("checks")->error("runtime-dir: FAILED: {}", dir.message);
        log->error("refusing to start: fix paths.runtime_dir; nothing was changed");
        return kExitRefused;
    }
    if (auto r = prepare_runtime_dir(paths.dir); !r) {
        log->error("{}", r.error().message);
        return kExitFailure;
    }
    auto lock = lock_instance(paths.agent_lock(), "the agent of " + paths.dir);
    if (!lock) {
        log->error("{}: another `rescuevm run` supervises this session; it is left alone (stop it first: "
                   "systemctl stop rescuevm)",
                   lock.error().message);
        return kExitFailure;
    }

    settle_udev();
    wait_for_kvm(config);
    std::optional<Takeover> takeover = live_vm(paths);
    if (!takeover && config.network.mode == NetworkMode::macvtap)
        release_stale_claim(paths);
    HostFacts facts = gather_host_facts(config);
    if (takeover && config.network.mode == NetworkMode::macvtap) {
        // The VM owns the uplink: the host shows no address or route on it any more.
        if (auto recorded = UplinkClaim::recorded_facts(paths.network_claim()); recorded && *recorded)
            facts.network = std::move(**recorded);
        else if (!recorded)
            log->error("{}", recorded.error().message);
    }
    Plan plan = plan_vm(facts, config);
    log_plan(plan);
    if (!plan.ready() && !takeover) {
        log->error("refusing to start the Windows rescue VM: fix the failed checks above; the host stays in rescue");
        return kExitRefused;
    }
    if (!plan.ready())
        log->warn("some checks fail, but a VM is already running: supervising it as it is");
    log->info("the VM: {} RAM, {} CPUs, {} disk(s) on {}", human_size(plan.vm.memory_bytes), plan.vm.cpus,
              plan.passed().size(), to_string(plan.disk_bus.bus));
    return run_agent(plan, std::move(takeover));
}

} // namespace rescuevm
