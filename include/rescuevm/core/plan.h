// SPDX-License-Identifier: GPL-2.0-or-later
// Plan: the decision record of one rescue session (what plan_vm() decided from HostFacts and Config). Pure.
#pragma once

#include "rescuevm/core/config.h"
#include "rescuevm/core/host_facts.h"
#include "rescuevm/core/image_source.h"
#include "rescuevm/core/runtime_paths.h"
#include "rescuevm/core/supervisor_policy.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rescuevm {

// One verdict that gates a start. Every check is made in src/core/plan/checks.cpp.
struct Check {
    std::string name;    // "memory", "kvm", "image", "firmware", "disks", "network", ...
    bool ok = true;
    std::string message; // in words, with the fix when it fails
};

struct DiskChoice {
    DiskInfo disk;
    bool selected = false;
    std::string reason;  // why it is or is not passed through
};

// What the host is, as `plan --json` shows it under "host".
struct HostSummary {
    std::uint64_t memory_bytes = 0;
    unsigned cpus = 0;
    bool kvm = false;
};

struct VmPlan {
    std::string name = "rescuevm";
    std::uint64_t memory_bytes = 0;
    unsigned cpus = 0;
    Accel accel = Accel::kvm;
    Display display = Display::vnc;
};

struct FirmwarePlan {
    Firmware kind = Firmware::uefi;
    std::string code;            // OVMF_CODE*.fd (uefi)
    std::string vars_template;   // OVMF_VARS*.fd, copied once per session
    bool secure_boot = false;
};

// Disk 0: the rescue image under a throwaway overlay, or a kernel (test guests).
struct BootPlan {
    bool direct_kernel = false;
    std::string kernel, initrd, append;
    std::string image;           // vm.image
    std::string image_format;    // "qcow2" | "raw"
    std::uint64_t image_size = 0;
    std::string image_disk_id;   // the partition-table id of the disk inside the image
    // NBD: the image is read from an image server (read-only), under the local overlay.
    bool nbd = false;
    NbdUrl nbd_url;
    std::string tls_dir;         // "" : unauthenticated (vm.image_unauthenticated)
    std::string tls_hostname;    // the name the server's certificate must carry
    unsigned reconnect_delay_s = 0; // NBD: how long QEMU holds requests while it reconnects
    // The most the overlay file may grow to (vm.overlay_max, or auto from runtime_dir's free space);
    // the agent pauses the VM when it gets there (QMP write threshold on the overlay's file node).
    std::uint64_t overlay_max = 0;
};

struct DiskBusPlan {
    DiskBus bus = DiskBus::virtio_blk;
    bool io_uring = true;        // aio=io_uring, else native
};

// The hand-over of the server's uplink to the VM.
struct NetworkPlan {
    NetworkMode mode = NetworkMode::macvtap;
    NicModel model = NicModel::virtio_net;
    bool vhost_net = false;
    // The uplink as the guest will carry it: MAC, addresses, routes (each route's
    // gateway_outside_prefix decided), DNS; `dhcp` is the addressing decision.
    NetworkFacts uplink;
};

struct GuestPlan {
    std::string admin_user = "Administrator";
    std::string admin_password_file;
    bool admin_password = false; // a password file is there (its content is read at each start)
};

struct Plan {
    HostSummary host;
    std::vector<Check> checks;
    std::vector<std::string> warnings;  // the start is allowed, but an operator should know
    std::vector<DiskChoice> disks;      // every disk seen, natural order by kernel name
    VmPlan vm;
    FirmwarePlan firmware;
    BootPlan boot;
    DiskBusPlan disk_bus;
    NetworkPlan network;
    GuestPlan guest;
    supervisor::Params supervision;
    RestoreSignatures restore_signatures = RestoreSignatures::never;
    std::string qemu = "qemu-system-x86_64";
    RuntimePaths paths;

    bool ready() const;                           // every check ok
    std::vector<const DiskInfo *> passed() const; // selected disks, in guest order
};

// Natural order of kernel names: sda < sdb < sdz < sdaa, nvme0n2 < nvme0n10.
bool natural_less(const std::string &a, const std::string &b);

// fnmatch-style glob on a kernel name ("sd*", "nvme*n*", "loop[0-9]").
bool glob_match(const std::string &pattern, const std::string &name);

// Which disks to pass through, and why each one is or is not. Pure.
std::vector<DiskChoice> select_disks(const std::vector<DiskInfo> &disks,
                                     const std::vector<std::string> &match);

// The host reserve for vm.memory = "auto": max(4 GiB, MemTotal/8).
std::uint64_t host_memory_reserve(std::uint64_t mem_total);

// The runtime-dir check alone: `run` makes it before it creates or locks anything there.
Check runtime_dir_verdict(const RuntimeDirFacts &facts, const std::string &runtime_dir);

// Every decision of a session: which disks, how big a VM, which firmware, how the
// network is handed over, every check with its verdict and fix, every warning.
Plan plan_vm(const HostFacts &host, const Config &config);

} // namespace rescuevm
