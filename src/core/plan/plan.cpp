// SPDX-License-Identifier: GPL-2.0-or-later
// plan_vm(): the checks that gate a start, and the VM's size. Pure.
#include "rescuevm/core/plan.h"

#include <fmt/format.h>

#include <algorithm>

namespace rescuevm {
namespace {

constexpr std::uint64_t kGiB = 1ULL << 30;
constexpr std::uint64_t kMinHostLeft = 2 * kGiB;  // below this the host itself struggles
constexpr unsigned kMaxAutoCpus = 64;

Check check_memory(const HostFacts &host, const Config &config)
{
    Check c{"memory", host.memory_bytes > config.host.min_memory, ""};
    if (c.ok)
        c.message = fmt::format("host has {} of RAM, more than the {} required", format_gib(host.memory_bytes),
                                format_gib(config.host.min_memory));
    else
        c.message = fmt::format("host has {} of RAM; a Windows rescue VM needs a host with more than {} "
                                "(host.min_memory): use this rescue mode on a server with more RAM",
                                format_gib(host.memory_bytes), format_gib(config.host.min_memory));
    return c;
}

Check check_kvm(const HostFacts &host, const Config &config)
{
    if (config.vm.accel == Accel::tcg)
        return {"kvm", true, "vm.accel = \"tcg\": KVM not used (software emulation, slow; for tests)"};
    if (host.kvm_usable)
        return {"kvm", true, "/dev/kvm is usable"};
    return {"kvm", false, host.kvm_problem.empty() ? "/dev/kvm cannot be used" : host.kvm_problem};
}

Check check_boot_source(const HostFacts &host, const Config &config)
{
    const ImageFacts &img = host.image;
    std::string what = config.vm.kernel.empty() ? "rescue image" : "guest kernel";
    if (!img.found)
        return {"image", false,
                img.problem.empty() ? fmt::format("{} {} not found", what, img.path) : img.problem};
    if (config.vm.kernel.empty())
        return {"image", true, fmt::format("rescue image {} ({}, {}), opened read-only under a throwaway overlay",
                                           img.path, img.format, format_gib(img.virtual_size))};
    return {"image", true, fmt::format("direct kernel boot from {}", img.path)};
}

Check check_firmware(const HostFacts &host, const Config &config)
{
    if (config.vm.firmware == Firmware::bios)
        return {"firmware", true, "SeaBIOS (vm.firmware = \"bios\")"};
    if (!host.firmware.found)
        return {"firmware", false, host.firmware.problem.empty() ? "no UEFI firmware found" : host.firmware.problem};
    return {"firmware", true,
            fmt::format("UEFI {} with a per-session copy of {}{}", host.firmware.code, host.firmware.vars_template,
                        host.firmware.secure_boot ? " (secure boot)" : "")};
}

Check check_disks(const std::vector<DiskChoice> &disks, const Config &config)
{
    unsigned selected = 0;
    for (const auto &d : disks) {
        if (!d.selected)
            continue;
        ++selected;
        if (config.disks.bus == DiskBus::sata && d.disk.logical_block_size != 512)
            return {"disks", false,
                    fmt::format("disk {} has {}-byte logical sectors, which SATA (ide-hd) cannot present: "
                                "set disks.bus = \"virtio-blk\", \"virtio-scsi\" or \"nvme\"",
                                d.disk.name, d.disk.logical_block_size)};
    }
    if (selected == 0)
        return {"disks", false,
                fmt::format("no disk to pass through ({} seen): check disks.match ({}) and `rescuevm disks`",
                            disks.size(), fmt::join(config.disks.match, ", "))};
    return {"disks", true, fmt::format("{} disk{} passed through on {}", selected, selected == 1 ? "" : "s",
                                       to_string(config.disks.bus))};
}

Check check_network(const HostFacts &host, const Config &config)
{
    if (config.network.mode == NetworkMode::none)
        return {"network", true, "network.mode = \"none\": the VM has no network, the host's is not touched"};
    const NetworkFacts &net = host.network;
    if (!net.found || !net.problem.empty())
        return {"network", false, net.problem.empty() ? "no uplink found" : net.problem};
    return {"network", true,
            fmt::format("uplink {} ({}) handed to the VM through macvtap", net.uplink, net.mac)};
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
    return std::max<std::uint64_t>(4 * kGiB, mem_total / 8);
}

Plan plan_vm(const HostFacts &host, const Config &config)
{
    Plan plan;
    plan.config = config;
    plan.host = host;
    plan.disks = select_disks(host.disks, config.disks.match);

    plan.checks.push_back(check_memory(host, config));
    plan.checks.push_back(check_kvm(host, config));
    plan.checks.push_back(check_boot_source(host, config));
    plan.checks.push_back(check_firmware(host, config));
    plan.checks.push_back(check_disks(plan.disks, config));
    plan.checks.push_back(check_network(host, config));

    // VM memory: auto leaves the host a reserve; an explicit size must leave 2 GiB.
    Check vm_memory{"vm-memory", true, ""};
    if (config.vm.memory) {
        plan.vm_memory_bytes = *config.vm.memory;
        if (host.memory_bytes < kMinHostLeft || plan.vm_memory_bytes > host.memory_bytes - kMinHostLeft) {
            vm_memory.ok = false;
            vm_memory.message = fmt::format("vm.memory = {} leaves the host less than {} of its {}: "
                                            "lower vm.memory or set it to \"auto\"",
                                            format_gib(plan.vm_memory_bytes), format_gib(kMinHostLeft),
                                            format_gib(host.memory_bytes));
        }
    } else {
        std::uint64_t reserve = host_memory_reserve(host.memory_bytes);
        std::uint64_t left = host.memory_bytes > reserve ? host.memory_bytes - reserve : 0;
        plan.vm_memory_bytes = left / kGiB * kGiB;
        if (plan.vm_memory_bytes == 0) {
            vm_memory.ok = false;
            vm_memory.message = fmt::format("host has {}, not enough for a VM after the host reserve of {}: "
                                            "set vm.memory explicitly",
                                            format_gib(host.memory_bytes), format_gib(reserve));
        }
    }
    if (vm_memory.ok)
        vm_memory.message = fmt::format("VM gets {} ({}), the host keeps {}", format_gib(plan.vm_memory_bytes),
                                        config.vm.memory ? "vm.memory" : "auto",
                                        format_gib(host.memory_bytes - plan.vm_memory_bytes));
    plan.checks.push_back(vm_memory);

    // CPUs: auto keeps one core for the host (I/O threads, the agent) when there are more than 2.
    unsigned cpus = host.cpus ? host.cpus : 1;
    plan.vm_cpus = config.vm.cpus ? *config.vm.cpus
                                  : std::min(kMaxAutoCpus, cpus > 2 ? cpus - 1 : cpus);
    return plan;
}

} // namespace rescuevm
