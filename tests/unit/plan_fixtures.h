// SPDX-License-Identifier: GPL-2.0-or-later
// Host facts and configs the plan and argv tests start from: plain structs, no I/O.
#pragma once

#include "rescuevm/core/plan.h"

#include <string>

namespace rescuevm::fixtures {

constexpr std::uint64_t kGiB = 1ULL << 30;

inline DiskInfo disk(const std::string &name, std::uint64_t gib, std::uint32_t lbs = 512, std::uint32_t pbs = 512,
                     const std::string &serial = "")
{
    DiskInfo d;
    d.name = name;
    d.path = "/dev/" + name;
    d.size_bytes = gib * kGiB;
    d.logical_block_size = lbs;
    d.physical_block_size = pbs;
    d.serial = serial;
    d.model = "TEST DISK";
    d.source = "sysfs";
    return d;
}

// A 64 GiB, 8-CPU server with KVM, OVMF, a qcow2 rescue image and a /32 uplink.
inline HostFacts server()
{
    HostFacts h;
    h.memory_bytes = 64 * kGiB;
    h.cpus = 8;
    h.kvm_usable = true;
    h.io_uring = true;
    h.vhost_net = true;
    h.firmware = {true, "/usr/share/qemu/firmware/60-edk2-x86_64.json", "/usr/share/OVMF/OVMF_CODE_4M.fd",
                  "/usr/share/OVMF/OVMF_VARS_4M.fd", "raw", false, ""};
    h.image = {true, "/srv/rescuevm/windows-rescue.qcow2", "qcow2", 40 * kGiB, "", "", false, "", 0};
    h.network.found = true;
    h.network.uplink = "eno1";
    h.network.mac = "0c:c4:7a:12:34:56";
    h.network.up = true;
    h.network.macvtap_supported = true;
    h.network.addresses = {{"ipv4", "203.0.113.10", 32, "global"}};
    h.network.gateways = {"203.0.113.1"};
    h.disks = {disk("sdb", 2000, 512, 4096, "WD-WCC4E1234567"), disk("sda", 480, 512, 512, "S3Z8NB0K123456A")};
    h.runtime_dir.free_bytes = 32 * kGiB; // a RAM disk of a 64 GiB host: auto overlay bound 8 GiB
    return h;
}

inline Config config()
{
    Config c;
    return c;
}

} // namespace rescuevm::fixtures
