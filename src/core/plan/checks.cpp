// SPDX-License-Identifier: GPL-2.0-or-later
// Every check that gates a start, each with its verdict and its fix: the one place a start is refused. Pure.
#include "checks.h"

#include "rescuevm/core/qemu_argv.h"
#include "rescuevm/core/uplink_rules.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace rescuevm::plan_detail {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;
constexpr std::uint64_t kGiB = 1ULL << 30;
constexpr std::uint64_t kMinHostLeft = 2 * kGiB;  // below this the host itself struggles
constexpr std::uint64_t kMinVmMemory = 128 * kMiB; // QEMU and firmware need this much to boot anything
constexpr unsigned kMaxQ35Cpus = 288;              // QEMU 7.2's q35 machine: max_cpus
constexpr std::size_t kMaxSocketPath = 107;        // sizeof(sockaddr_un::sun_path) - 1
constexpr std::uint64_t kAutoOverlayCap = 8 * kGiB; // auto overlay bound: a RAM disk's share of a >16 GiB host
constexpr std::uint64_t kMinOverlay = 64 * kMiB;    // Windows writes this much just booting (pagefile, logs)

} // namespace

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
    bool kernel = !config.vm.kernel.empty();
    std::string what = kernel ? "guest kernel" : "rescue image";
    if (!img.found)
        return {"image", false,
                img.problem.empty() ? fmt::format("{} {} not found", what, img.path) : img.problem};
    if (!kernel && img.nbd && config.disks.bus == DiskBus::nvme)
        return {"image", false,
                fmt::format("rescue image {} is served over NBD, and QEMU's nvme device cannot pause the VM when the "
                            "image server is unreachable (it has no rerror/werror): Windows would get I/O errors on "
                            "C: and crash; set disks.bus = \"virtio-blk\", \"virtio-scsi\" or \"sata\"",
                            img.path)};
    if (!kernel && img.nbd)
        return {"image", true,
                fmt::format("rescue image {} ({}, {}) read over NBD ({}, answered in {} ms), read-only under a local "
                            "overlay; an outage of the image server pauses the VM",
                            img.path, img.format, format_size(img.virtual_size), img.transport, img.probe_ms)};
    if (!kernel)
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

std::string sata_sector_problem(const DiskInfo &disk, DiskBus bus)
{
    if (bus != DiskBus::sata || disk.logical_block_size == 512)
        return "";
    return fmt::format("disk {} has {}-byte logical sectors, which SATA (ide-hd) cannot present: "
                       "set disks.bus = \"virtio-blk\", \"virtio-scsi\" or \"nvme\"",
                       disk.name, disk.logical_block_size);
}

Check check_disks(const std::vector<DiskChoice> &disks, const Config &config)
{
    unsigned selected = 0;
    for (const auto &d : disks) {
        if (!d.selected)
            continue;
        ++selected;
        if (std::string problem = sata_sector_problem(d.disk, config.disks.bus); !problem.empty())
            return {"disks", false, problem};
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
    if (std::string problem = uplink_problem(net); !problem.empty())
        return {"network", false, problem};
    return {"network", true,
            fmt::format("uplink {} ({}) handed to the VM through macvtap", net.uplink, net.mac)};
}

Check check_vm_memory(const HostFacts &host, const Config &config, std::uint64_t &vm_memory)
{
    Check c{"vm-memory", true, ""};
    if (config.vm.memory) {
        vm_memory = *config.vm.memory;
        if (vm_memory < kMinVmMemory) {
            c.ok = false;
            c.message = fmt::format("vm.memory = {} bytes is too small for QEMU to boot anything: give at least "
                                    "{} (Windows needs 2GiB or more), or \"auto\"",
                                    vm_memory, format_gib(kMinVmMemory));
            return c;
        }
        if (host.memory_bytes < kMinHostLeft || vm_memory > host.memory_bytes - kMinHostLeft) {
            c.ok = false;
            c.message = fmt::format("vm.memory = {} leaves the host less than {} of its {}: "
                                    "lower vm.memory or set it to \"auto\"",
                                    format_gib(vm_memory), format_gib(kMinHostLeft), format_gib(host.memory_bytes));
            return c;
        }
    } else {
        std::uint64_t reserve = host_memory_reserve(host.memory_bytes);
        std::uint64_t left = host.memory_bytes > reserve ? host.memory_bytes - reserve : 0;
        vm_memory = left / kGiB * kGiB;
        if (vm_memory == 0) {
            c.ok = false;
            c.message = fmt::format("host has {}, not enough for a VM after the host reserve of {}: "
                                    "set vm.memory explicitly",
                                    format_gib(host.memory_bytes), format_gib(reserve));
            return c;
        }
    }
    c.message = fmt::format("VM gets {} ({}), the host keeps {}", format_gib(vm_memory),
                            config.vm.memory ? "vm.memory" : "auto", format_gib(host.memory_bytes - vm_memory));
    return c;
}

Check check_vm_cpus(const HostFacts &host, const Config &config, unsigned vm_cpus)
{
    if (vm_cpus > kMaxQ35Cpus)
        return {"vm-cpus", false,
                fmt::format("vm.cpus = {}: QEMU's q35 machine takes at most {} CPUs; set vm.cpus to at most the "
                            "host's {} or \"auto\"",
                            vm_cpus, kMaxQ35Cpus, host.cpus)};
    return {"vm-cpus", true,
            fmt::format("VM gets {} CPU{} ({}) of the host's {}", vm_cpus, vm_cpus == 1 ? "" : "s",
                        config.vm.cpus ? "vm.cpus" : "auto", host.cpus)};
}

Check check_password(const HostFacts &host)
{
    const SecretFileFacts &f = host.admin_password;
    if (!f.problem.empty())
        return {"password", false, f.problem};
    return {"password", true,
            fmt::format("Administrator password {} ({})", f.present ? "set" : "not set", f.path)};
}

Check check_runtime_dir(const HostFacts &host, const Config &config)
{
    return runtime_dir_verdict(host.runtime_dir, config.paths.runtime_dir);
}

Check check_overlay(const HostFacts &host, const Config &config, std::uint64_t &overlay_max)
{
    if (!config.vm.kernel.empty())
        return {"overlay", true, "direct kernel boot: no disk 0, no overlay"};
    const std::string &dir = config.paths.runtime_dir;
    std::uint64_t free = host.runtime_dir.free_bytes;
    if (config.vm.overlay_max) {
        overlay_max = *config.vm.overlay_max;
        if (free < overlay_max)
            return {"overlay", false,
                    fmt::format("the file system of paths.runtime_dir {} has {} free, less than vm.overlay_max = {}: "
                                "the VM could fill it (on a RAM disk: the host's memory); free space there, lower "
                                "vm.overlay_max, or set it to \"auto\"",
                                dir, format_size(free), format_size(overlay_max))};
        return {"overlay", true,
                fmt::format("the VM may write up to {} to its disk 0 (vm.overlay_max; the overlay in {}, {} free "
                            "there); then it is paused",
                            format_size(overlay_max), dir, format_size(free))};
    }
    // Auto: half of what is free leaves room for logs and screenshots; the cap bounds a RAM disk's use.
    overlay_max = std::min(kAutoOverlayCap, free / 2 / kMiB * kMiB);
    if (overlay_max < kMinOverlay)
        return {"overlay", false,
                fmt::format("the file system of paths.runtime_dir {} has only {} free: the VM's writes to its disk 0 "
                            "need at least {} twice over (vm.overlay_max = \"auto\" takes half the free space); free "
                            "space there or put paths.runtime_dir on a bigger file system",
                            dir, format_size(free), format_size(kMinOverlay))};
    return {"overlay", true,
            fmt::format("the VM may write up to {} to its disk 0 (vm.overlay_max = \"auto\": half of the {} free in "
                        "{}, at most {}); then it is paused",
                        format_size(overlay_max), format_size(free), dir, format_gib(kAutoOverlayCap))};
}

} // namespace rescuevm::plan_detail

namespace rescuevm {

Check runtime_dir_verdict(const RuntimeDirFacts &facts, const std::string &dir)
{
    RuntimePaths paths{dir};
    for (const std::string &socket : {paths.control_socket(), paths.qmp_socket(), paths.vnc_socket(),
                                      paths.guest_serial_socket(), paths.guest_agent_socket()})
        if (socket.size() > plan_detail::kMaxSocketPath)
            return {"runtime-dir", false,
                    fmt::format("paths.runtime_dir {}: the socket {} would be {} characters long, more than a unix "
                                "socket path may have ({}): choose a shorter paths.runtime_dir",
                                dir, socket, socket.size(), plan_detail::kMaxSocketPath)};
    for (const PathComponent &c : facts.components) {
        if (!c.exists)
            break; // the agent creates the rest, root-owned and 0700
        if (c.symlink && c.path == dir)
            return {"runtime-dir", false,
                    fmt::format("paths.runtime_dir {} is a symbolic link, which anyone who could write where it "
                                "points could exploit: give the real directory",
                                dir)};
        if (!c.directory)
            return {"runtime-dir", false,
                    fmt::format("paths.runtime_dir: {} is not a directory: choose another paths.runtime_dir", c.path)};
        if (c.uid != 0)
            return {"runtime-dir", false,
                    fmt::format("paths.runtime_dir: {} is owned by uid {}, not root: that user could plant the "
                                "records the agent acts on; use a root-owned directory such as /run/rescuevm",
                                c.path, c.uid)};
        // Writable by others: a root-owned sticky directory (/tmp) only lets them touch their own entries.
        bool sticky = c.mode & 01000;
        bool others_write = c.mode & 022;
        if (others_write && (c.path == dir || !sticky))
            return {"runtime-dir", false,
                    fmt::format("paths.runtime_dir: {} (mode {:04o}) is writable by users other than root, who "
                                "could replace what the agent keeps there: use a directory only root can write, "
                                "such as /run/rescuevm",
                                c.path, c.mode)};
    }
    return {"runtime-dir", true, fmt::format("{} (root-owned, private)", dir)};
}

} // namespace rescuevm

namespace rescuevm::plan_detail {

Check check_qemu_argv(const Plan &plan)
{
    auto argv = render_qemu_argv(plan, session_for(plan, "00000000-0000-4000-8000-000000000000"));
    if (!argv)
        return {"qemu", false, argv.error().message};
    return {"qemu", true, fmt::format("{} with {} arguments", plan.qemu, argv->size() - 1)};
}

} // namespace rescuevm::plan_detail
