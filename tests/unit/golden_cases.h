// SPDX-License-Identifier: GPL-2.0-or-later
// The golden argv cases: a fixture host and a config each; the unit test renders them, tests/integration/session_driver prepares and boots them.
#pragma once

#include "plan_fixtures.h"

#include <string>
#include <vector>

namespace rescuevm::fixtures {

struct GoldenCase {
    std::string name; // tests/unit/golden/<name>.argv
    HostFacts host;
    Config config;
};

inline std::vector<GoldenCase> golden_cases()
{
    std::vector<GoldenCase> cases;
    {
        // UEFI, KVM, two virtio-blk disks, macvtap, config drive.
        cases.push_back({"uefi_kvm_virtio_2disks", server(), config()});
    }
    {
        // SeaBIOS, KVM, NVMe with a serial derived from the WWN.
        Config c = config();
        c.vm.firmware = Firmware::bios;
        c.disks.bus = DiskBus::nvme;
        c.network.mode = NetworkMode::none;
        HostFacts h = server();
        h.disks = {disk("nvme0n1", 1000, 512, 512, ""),
                   disk("nvme1n1", 1000, 512, 512, "S4EWNX0R123456-VERY-LONG-SERIAL")};
        h.disks[0].wwn = "eui.0025388b71b2c3d4e5f60718293a4b5c";
        cases.push_back({"bios_kvm_nvme", h, c});
    }
    {
        // TCG, 4Kn disk on virtio-blk, no hv flags, direct kernel boot.
        Config c = config();
        c.vm.accel = Accel::tcg;
        c.vm.firmware = Firmware::bios;
        c.vm.kernel = "/boot/vmlinuz-test";
        c.vm.initrd = "/var/lib/rescuevm/initramfs.cpio.gz";
        c.vm.append = "console=ttyS0 quiet rvtest.reboots=1,2";
        c.vm.display = Display::none;
        c.network.mode = NetworkMode::none;
        HostFacts h = server();
        h.kvm_usable = false;
        h.io_uring = false;
        h.disks = {disk("sda", 100, 4096, 4096, "4KN-DISK-0001")};
        cases.push_back({"tcg_4kn_kernel", h, c});
    }
    {
        // virtio-scsi with a 36-byte serial limit and e1000e NIC.
        Config c = config();
        c.disks.bus = DiskBus::virtio_scsi;
        c.network.model = NicModel::e1000e;
        HostFacts h = server();
        h.disks = {disk("sda", 100, 512, 4096, "SEAGATE-ST4000NM0035-1V4107-ZC1ABCDEFGHIJ")};
        cases.push_back({"uefi_kvm_virtio_scsi", h, c});
    }
    {
        // SATA with 512e disks, a serial with a comma.
        Config c = config();
        c.disks.bus = DiskBus::sata;
        c.network.mode = NetworkMode::none;
        HostFacts h = server();
        h.disks = {disk("sda", 100, 512, 4096, "WD,COMMA")};
        for (int i = 0; i < 5; ++i)
            h.disks.push_back(disk(std::string("sd") + char('b' + i), 10, 512, 512, "S" + std::to_string(i)));
        cases.push_back({"uefi_kvm_sata_comma", h, c});
    }
    return cases;
}

} // namespace rescuevm::fixtures
