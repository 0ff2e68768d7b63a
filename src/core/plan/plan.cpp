// SPDX-License-Identifier: GPL-2.0-or-later
// plan_vm(): every decision of a session, from HostFacts and Config, into the Plan record. Pure.
#include "rescuevm/core/plan.h"

#include "checks.h"

#include "rescuevm/core/uplink_rules.h"

#include <algorithm>

namespace rescuevm {
namespace {

using namespace plan_detail;

constexpr unsigned kMaxAutoCpus = 64;
// An image server outage shorter than this is invisible to the guest (its requests wait); a longer
// one pauses the VM (rerror/werror=stop), and the agent resumes it once the server answers again.
constexpr unsigned kNbdReconnectDelaySeconds = 10;

// The uplink as the guest carries it, with the addressing decided.
NetworkPlan plan_network(const HostFacts &host, const Config &config)
{
    NetworkPlan n;
    n.mode = config.network.mode;
    n.model = config.network.model;
    n.vhost_net = host.vhost_net;
    if (n.mode == NetworkMode::none)
        return n;
    n.uplink = host.network;
    n.uplink.dhcp = uplink_uses_dhcp(host.network, config.network.addressing);
    return n;
}

BootPlan plan_boot(const HostFacts &host, const Config &config)
{
    BootPlan b;
    b.direct_kernel = !config.vm.kernel.empty();
    b.kernel = config.vm.kernel;
    b.initrd = config.vm.initrd;
    b.append = config.vm.append;
    b.image = config.vm.image;
    if (!b.direct_kernel && is_nbd_url(config.vm.image)) {
        if (auto url = parse_nbd_url(config.vm.image)) {
            b.nbd = true;
            b.nbd_url = *url;
            b.tls_dir = config.vm.image_tls;
            if (!b.tls_dir.empty())
                b.tls_hostname = config.vm.image_tls_hostname.empty() ? url->host : config.vm.image_tls_hostname;
            b.reconnect_delay_s = kNbdReconnectDelaySeconds;
        }
    }
    if (!b.direct_kernel) {
        b.image_format = host.image.format;
        b.image_size = host.image.virtual_size;
        b.image_disk_id = host.image.disk_id;
    }
    return b;
}

supervisor::Params plan_supervision(const Config &config)
{
    supervisor::Params p;
    p.restart_on_poweroff = config.supervisor.on_guest_poweroff == OnGuestPoweroff::restart;
    p.network = config.network.mode == NetworkMode::macvtap;
    p.shutdown_timeout = std::chrono::duration_cast<supervisor::Millis>(config.supervisor.shutdown_timeout);
    p.image_over_network = !config.vm.kernel.empty() ? false : is_nbd_url(config.vm.image);
    if (config.supervisor.max_session)
        p.max_session = std::chrono::duration_cast<supervisor::Millis>(*config.supervisor.max_session);
    return p;
}

} // namespace

bool Plan::ready() const
{
    return std::all_of(checks.begin(), checks.end(), [](const Check &c) { return c.ok; });
}

std::vector<const DiskInfo *> Plan::passed() const
{
    std::vector<const DiskInfo *> out;
    for (const auto &d : disks)
        if (d.selected)
            out.push_back(&d.disk);
    return out;
}

std::uint64_t host_memory_reserve(std::uint64_t mem_total)
{
    return std::max<std::uint64_t>(4ULL << 30, mem_total / 8);
}

Plan plan_vm(const HostFacts &host, const Config &config)
{
    Plan plan;
    plan.host = {host.memory_bytes, host.cpus, host.kvm_usable};
    plan.disks = select_disks(host.disks, config.disks.match);

    plan.vm.name = config.vm.name;
    plan.vm.accel = config.vm.accel;
    plan.vm.display = config.vm.display;
    // CPUs: auto keeps one core for the host (I/O threads, the agent) when there are more than 2.
    unsigned cpus = host.cpus ? host.cpus : 1;
    plan.vm.cpus = config.vm.cpus ? *config.vm.cpus : std::min(kMaxAutoCpus, cpus > 2 ? cpus - 1 : cpus);

    plan.firmware.kind = config.vm.firmware;
    if (config.vm.firmware == Firmware::uefi) {
        plan.firmware.code = host.firmware.code;
        plan.firmware.vars_template = host.firmware.vars_template;
        plan.firmware.secure_boot = host.firmware.secure_boot;
    }
    plan.boot = plan_boot(host, config);
    plan.disk_bus = {config.disks.bus, host.io_uring};
    plan.network = plan_network(host, config);
    plan.guest = {config.guest.admin_user, config.guest.admin_password_file, host.admin_password.present};
    plan.supervision = plan_supervision(config);
    plan.restore_signatures = config.supervisor.restore_signatures;
    plan.qemu = config.paths.qemu;
    plan.paths.dir = config.paths.runtime_dir;

    plan.checks.push_back(check_memory(host, config));
    plan.checks.push_back(check_kvm(host, config));
    plan.checks.push_back(check_boot_source(host, config));
    plan.checks.push_back(check_firmware(host, config));
    plan.checks.push_back(check_disks(plan.disks, config));
    plan.checks.push_back(check_network(host, config));
    plan.checks.push_back(check_vm_memory(host, config, plan.vm.memory_bytes));
    plan.checks.push_back(check_vm_cpus(host, config, plan.vm.cpus));
    plan.checks.push_back(check_password(host));
    plan.checks.push_back(check_runtime_dir(host, config));
    plan.checks.push_back(check_overlay(host, config, plan.boot.overlay_max));
    plan.supervision.overlay_max = plan.boot.overlay_max;
    plan.checks.push_back(check_qemu_argv(plan));
    plan.warnings = plan_warnings(plan, host);
    return plan;
}

} // namespace rescuevm
