// SPDX-License-Identifier: GPL-2.0-or-later
// The disks on QEMU's command line: the rescue image under its overlay, the server's disks, the config drive. Pure.
#include "qemu_builder.h"

#include "../plan/checks.h"

#include <algorithm>
#include <cctype>

namespace rescuevm::qemu_detail {
namespace {

// Serial number limits of QEMU 7.2 per device model.
constexpr size_t kSerialLimitShort = 20; // virtio-blk, NVMe, IDE
constexpr size_t kSerialLimitScsi = 36;  // scsi-hd
constexpr unsigned kAhciPorts = 6;

const char *format_driver(const std::string &format)
{
    return format == "qcow2" ? "qcow2" : "raw";
}

// How a disk is attached on each bus; `index` 0 is the rescue image.
struct BusAttach {
    Argv controller; // options for a controller, if the disk needs its own
    std::string device;
};

Result<BusAttach> attach_on_bus(DiskBus bus, unsigned index, const std::string &node, const std::string &props)
{
    std::string id = fmt::format("disk{}", index);
    switch (bus) {
    case DiskBus::virtio_blk:
        return BusAttach{{"-object", fmt::format("iothread,id=iothread-{}", id)},
                         fmt::format("virtio-blk-pci,id={},drive={},iothread=iothread-{}{}", id, node, id, props)};
    case DiskBus::virtio_scsi:
        // One controller per disk, so each disk has its own I/O thread.
        return BusAttach{{"-object", fmt::format("iothread,id=iothread-{}", id), "-device",
                          fmt::format("virtio-scsi-pci,id=scsi{},iothread=iothread-{}", index, id)},
                         fmt::format("scsi-hd,id={},bus=scsi{}.0,drive={}{}", id, index, node, props)};
    case DiskBus::nvme:
        return BusAttach{{}, fmt::format("nvme,id={},drive={}{}", id, node, props)};
    case DiskBus::sata: {
        // Built-in AHCI: port 0 the rescue image, port 1 the config drive, 2-5 server disks;
        // further disks get their own AHCI controllers.
        Argv controller;
        std::string port;
        unsigned slot = index == 0 ? 0 : index + 1;
        if (slot < kAhciPorts) {
            port = fmt::format("ide.{}", slot);
        } else {
            unsigned extra = (slot - kAhciPorts) / kAhciPorts + 1;
            unsigned p = (slot - kAhciPorts) % kAhciPorts;
            if (p == 0)
                controller = {"-device", fmt::format("ahci,id=ahci{}", extra)};
            port = fmt::format("ahci{}.{}", extra, p);
        }
        return BusAttach{controller, fmt::format("ide-hd,id={},bus={},drive={}{}", id, port, node, props)};
    }
    }
    return fail("unknown disk bus");
}

// The image server's export as node image-file, read-only, with TLS when configured.
Result<void> add_nbd_image(Builder &b, const BootPlan &boot)
{
    std::string tls;
    if (!boot.tls_dir.empty()) {
        b.add({"-object", fmt::format("tls-creds-x509,id={},dir={},endpoint=client,verify-peer=on", kImageTlsId,
                                      RESCUEVM_TRY(qemu_escape(boot.tls_dir, "vm.image_tls")))});
        tls = fmt::format(",tls-creds={},tls-hostname={}", kImageTlsId,
                          RESCUEVM_TRY(qemu_escape(boot.tls_hostname, "vm.image_tls_hostname")));
    }
    const NbdUrl &url = boot.nbd_url;
    std::string server = url.unix_socket
                             ? fmt::format("server.type=unix,server.path={}", RESCUEVM_TRY(qemu_escape(url.socket, "vm.image socket")))
                             : fmt::format("server.type=inet,server.host={},server.port={}",
                                           RESCUEVM_TRY(qemu_escape(url.host, "vm.image host")), url.port);
    b.add({"-blockdev", fmt::format("driver=nbd,node-name=image-file,{},export={}{},reconnect-delay={},read-only=on",
                                    server, RESCUEVM_TRY(qemu_escape(url.export_name, "vm.image export")), tls,
                                    boot.reconnect_delay_s)});
    return {};
}

} // namespace

Result<void> add_boot_disk(Builder &b, const Plan &plan)
{
        if (plan.boot.direct_kernel) {
        b.add({"-kernel", RESCUEVM_TRY(qemu_escape(plan.boot.kernel, "vm.kernel"))});
        if (!plan.boot.initrd.empty())
            b.add({"-initrd", RESCUEVM_TRY(qemu_escape(plan.boot.initrd, "vm.initrd"))});
        if (!plan.boot.append.empty()) {
            RESCUEVM_TRY(qemu_escape(plan.boot.append, "vm.append")); // refuses newline and NUL
            b.add({"-append", plan.boot.append});              // not an option list: commas stay
        }
        return {};
    }
    auto overlay = RESCUEVM_TRY(qemu_escape(plan.paths.overlay(), "overlay path"));
    // The image is opened read-only; every guest write lands in the throwaway overlay.
    if (plan.boot.nbd)
        RESCUEVM_TRY(add_nbd_image(b, plan.boot));
    else
        b.add({"-blockdev", fmt::format("driver=file,node-name=image-file,filename={},read-only=on",
                                        RESCUEVM_TRY(qemu_escape(plan.boot.image, "vm.image")))});
    b.add({"-blockdev", fmt::format("driver={},node-name=image,file=image-file,read-only=on", format_driver(plan.boot.image_format)),
           "-blockdev", fmt::format("driver=file,node-name=overlay-file,filename={}", overlay),
           "-blockdev", "driver=qcow2,node-name=overlay,file=overlay-file,backing=image"});
    // An error on disk 0 (image server gone, runtime_dir full) pauses the VM: Windows would
    // bugcheck on an I/O error on C:. QEMU's nvme has no such setting (plan refuses NBD on it).
    std::string props = plan.disk_bus.bus == DiskBus::nvme ? ",serial=rescuevm-image,bootindex=0"
                                                           : ",bootindex=0,rerror=stop,werror=stop";
    auto attach = RESCUEVM_TRY(attach_on_bus(plan.disk_bus.bus, 0, "overlay", props));
    b.argv.insert(b.argv.end(), attach.controller.begin(), attach.controller.end());
    b.add({"-device", attach.device});
    return {};
}

Result<void> add_server_disks(Builder &b, const Plan &plan, const Session &session)
{
    unsigned index = 0;
    for (const DiskInfo *disk : plan.passed()) {
        ++index;
        if (std::string problem = plan_detail::sata_sector_problem(*disk, plan.disk_bus.bus); !problem.empty())
            return fail(problem);
        if (index > session.disk_fds.size())
            return fail(fmt::format("disk {}: the session has no fd for it", disk->name));
        std::string node = fmt::format("disk{}-file", index);
        auto path = RESCUEVM_TRY(qemu_escape(disk->path, "disk path"));
        // QEMU gets the disk as the agent's checked O_EXCL fd (fd set N): while QEMU
        // lives nothing on the host can mount it, and no second user can claim it.
        b.add({"-add-fd", fmt::format("fd={},set={},opaque={}", session.disk_fds[index - 1], index, path)});
        // O_DIRECT so nothing waits in the host page cache; discard ignored so freed blocks stay recoverable.
        b.add({"-blockdev",
               fmt::format("driver=host_device,node-name={},filename=/dev/fdset/{},cache.direct=on,aio={},"
                           "discard=ignore,read-only=off",
                           node, index, plan.disk_bus.io_uring ? "io_uring" : "native")});
        std::string props = fmt::format(",logical_block_size={},physical_block_size={}", disk->logical_block_size,
                                        std::max(disk->physical_block_size, disk->logical_block_size));
        std::string serial = guest_serial(*disk, plan.disk_bus.bus);
        if (!serial.empty())
            props += ",serial=" + RESCUEVM_TRY(qemu_escape(serial, fmt::format("serial of disk {}", disk->name)));
        auto attach = RESCUEVM_TRY(attach_on_bus(plan.disk_bus.bus, index, node, props));
        b.argv.insert(b.argv.end(), attach.controller.begin(), attach.controller.end());
        b.add({"-device", attach.device});
    }
    return {};
}

Result<void> add_config_drive(Builder &b, const Plan &plan, const Session &session)
{
    if (!session.config_drive)
        return {};
    auto iso = RESCUEVM_TRY(qemu_escape(plan.paths.config_drive(), "config drive path"));
    // On the built-in AHCI controller: every Windows has its driver.
    b.add({"-blockdev", fmt::format("driver=file,node-name=config-drive,filename={},read-only=on", iso),
           "-device", "ide-cd,id=config-drive,bus=ide.1,drive=config-drive"});
    return {};
}

} // namespace rescuevm::qemu_detail

namespace rescuevm {

std::string guest_serial(const DiskInfo &disk, DiskBus bus)
{
    size_t limit = bus == DiskBus::virtio_scsi ? qemu_detail::kSerialLimitScsi : qemu_detail::kSerialLimitShort;
    std::string serial;
    for (char c : disk.serial)
        if (c >= 0x20 && c < 0x7f)
            serial += c;
    if (serial.empty() && bus == DiskBus::nvme) {
        // NVMe devices refuse to start without one: derive a stable one.
        std::string base = disk.wwn.empty() ? disk.name : disk.wwn;
        for (char c : base)
            if (std::isalnum(static_cast<unsigned char>(c)))
                serial += c;
        if (serial.size() > limit)
            serial = serial.substr(serial.size() - limit); // a WWN's distinctive part is at its end
    }
    if (serial.size() > limit)
        serial.resize(limit);
    return serial;
}

} // namespace rescuevm
