// SPDX-License-Identifier: GPL-2.0-or-later
// render_qemu_argv(): one small function per concern, each appending its options. Pure.
#include "rescuevm/core/qemu_argv.h"

#include <fmt/format.h>

namespace rescuevm {
namespace {

// Hyper-V enlightenments for Windows on KVM, each with why it is there.
// They fail under TCG, so they are only ever added on KVM.
struct HvFlag {
    const char *flag;
    const char *reason;
};
constexpr HvFlag kHyperVFlags[] = {
    {"hv-relaxed", "no watchdog BSOD (0x101) when the host deschedules a vCPU"},
    {"hv-vapic", "paravirtual APIC: fewer exits on interrupts"},
    {"hv-spinlocks=0x1fff", "spinning vCPUs yield to the host after 8191 tries"},
    {"hv-vpindex", "virtual processor index; needed by synic, tlbflush and ipi"},
    {"hv-runtime", "vCPU run time for the guest scheduler"},
    {"hv-time", "reference TSC page: a stable, cheap clock"},
    {"hv-synic", "synthetic interrupt controller; needed by stimer"},
    {"hv-stimer", "synthetic timers: an idle guest stops burning host CPU"},
    {"hv-tlbflush", "paravirtual TLB flush across vCPUs"},
    {"hv-ipi", "paravirtual inter-processor interrupts"},
    {"hv-frequencies", "TSC/APIC frequencies without calibration at boot"},
    {"hv-crash", "a Windows bugcheck reaches QMP as GUEST_PANICKED with its STOP code"},
};

// Serial number limits of QEMU 7.2 per device model.
constexpr size_t kSerialLimitShort = 20; // virtio-blk, NVMe, IDE
constexpr size_t kSerialLimitScsi = 36;  // scsi-hd
constexpr unsigned kAhciPorts = 6;

using Argv = std::vector<std::string>;

struct Builder {
    Argv argv;
    void add(std::initializer_list<std::string> words) { argv.insert(argv.end(), words); }
};

Result<std::string> esc(const std::string &value, const std::string &what)
{
    return qemu_escape(value, what);
}

const char *format_driver(const std::string &format)
{
    return format == "qcow2" ? "qcow2" : "raw";
}

void add_machine(Builder &b, const Plan &plan, const Session &session, const std::string &name)
{
    const Config &cfg = plan.config;
    std::string machine = "q35";
    bool uefi = cfg.vm.firmware == Firmware::uefi;
    if (uefi)
        machine += ",pflash0=firmware-code,pflash1=firmware-vars";
    if (uefi && plan.host.firmware.secure_boot)
        machine += ",smm=on";
    b.add({"-name", "guest=" + name + ",debug-threads=on", "-uuid", session.uuid, "-machine", machine,
           "-accel", cfg.vm.accel == Accel::kvm ? "kvm" : "tcg", "-nodefaults", "-no-user-config", "-S",
           "-msg", "timestamp=on"});
    // A guest reboot resets in place, a guest poweroff pauses: QEMU never exits on its own.
    b.add({"-action", "reboot=reset,shutdown=pause,panic=pause"});
    b.add({"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"});
}

void add_cpu(Builder &b, const Plan &plan)
{
    if (plan.config.vm.accel == Accel::kvm) {
        std::string cpu = "host";
        for (const auto &hv : kHyperVFlags)
            cpu += std::string(",") + hv.flag;
        b.add({"-cpu", cpu, "-rtc", "base=localtime"}); // Windows keeps its clock in local time
    } else {
        b.add({"-cpu", "max"});
    }
    // One socket: Windows client editions use at most two.
    b.add({"-smp", fmt::format("cpus={0},sockets=1,cores={0},threads=1", plan.vm_cpus)});
}

void add_memory(Builder &b, const Plan &plan)
{
    b.add({"-m", fmt::format("{}M", plan.vm_memory_bytes >> 20)});
}

Result<void> add_firmware(Builder &b, const Plan &plan, const Session &session)
{
    if (plan.config.vm.firmware != Firmware::uefi)
        return {}; // SeaBIOS is QEMU's default
    const FirmwareFacts &fw = plan.host.firmware;
    auto code = RESCUEVM_TRY(esc(fw.code, "UEFI firmware path"));
    auto vars = RESCUEVM_TRY(esc(session.paths.uefi_vars(), "UEFI variable store path"));
    b.add({"-blockdev", fmt::format("driver=file,node-name=firmware-code,filename={},read-only=on", code),
           "-blockdev", fmt::format("driver=file,node-name=firmware-vars,filename={}", vars)});
    if (fw.secure_boot)
        b.add({"-global", "driver=cfi.pflash01,property=secure,value=on"});
    return {};
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

Result<void> add_boot_disk(Builder &b, const Plan &plan, const Session &session)
{
    const Config &cfg = plan.config;
    if (!cfg.vm.kernel.empty()) {
        b.add({"-kernel", RESCUEVM_TRY(esc(cfg.vm.kernel, "vm.kernel"))});
        if (!cfg.vm.initrd.empty())
            b.add({"-initrd", RESCUEVM_TRY(esc(cfg.vm.initrd, "vm.initrd"))});
        if (!cfg.vm.append.empty()) {
            RESCUEVM_TRY(esc(cfg.vm.append, "vm.append")); // refuses newline and NUL
            b.add({"-append", cfg.vm.append});              // not an option list: commas stay
        }
        return {};
    }
    const ImageFacts &img = plan.host.image;
    auto image = RESCUEVM_TRY(esc(img.path, "vm.image"));
    auto overlay = RESCUEVM_TRY(esc(session.paths.overlay(), "overlay path"));
    // The image is opened read-only; every guest write lands in the throwaway overlay.
    b.add({"-blockdev", fmt::format("driver=file,node-name=image-file,filename={},read-only=on", image),
           "-blockdev", fmt::format("driver={},node-name=image,file=image-file,read-only=on", format_driver(img.format)),
           "-blockdev", fmt::format("driver=file,node-name=overlay-file,filename={}", overlay),
           "-blockdev", "driver=qcow2,node-name=overlay,file=overlay-file,backing=image"});
    auto attach = RESCUEVM_TRY(attach_on_bus(cfg.disks.bus, 0, "overlay",
                                             cfg.disks.bus == DiskBus::nvme ? ",serial=rescuevm-image,bootindex=0"
                                                                            : ",bootindex=0"));
    b.argv.insert(b.argv.end(), attach.controller.begin(), attach.controller.end());
    b.add({"-device", attach.device});
    return {};
}

Result<void> add_server_disks(Builder &b, const Plan &plan)
{
    const Config &cfg = plan.config;
    unsigned index = 0;
    for (const DiskInfo *disk : plan.passed()) {
        ++index;
        if (cfg.disks.bus == DiskBus::sata && disk->logical_block_size != 512)
            return fail(fmt::format("disk {}: {}-byte logical sectors cannot be presented on SATA: "
                                    "set disks.bus = \"virtio-blk\"", disk->name, disk->logical_block_size));
        std::string node = fmt::format("disk{}-file", index);
        auto path = RESCUEVM_TRY(esc(disk->path, "disk path"));
        // O_DIRECT so nothing waits in the host page cache; discard ignored so freed blocks stay recoverable.
        b.add({"-blockdev",
               fmt::format("driver=host_device,node-name={},filename={},cache.direct=on,aio={},discard=ignore,"
                           "read-only=off",
                           node, path, plan.host.io_uring ? "io_uring" : "native")});
        std::string props = fmt::format(",logical_block_size={},physical_block_size={}", disk->logical_block_size,
                                        std::max(disk->physical_block_size, disk->logical_block_size));
        std::string serial = guest_serial(*disk, cfg.disks.bus);
        if (!serial.empty())
            props += ",serial=" + RESCUEVM_TRY(esc(serial, fmt::format("serial of disk {}", disk->name)));
        auto attach = RESCUEVM_TRY(attach_on_bus(cfg.disks.bus, index, node, props));
        b.argv.insert(b.argv.end(), attach.controller.begin(), attach.controller.end());
        b.add({"-device", attach.device});
    }
    return {};
}

Result<void> add_config_drive(Builder &b, const Session &session)
{
    if (!session.config_drive)
        return {};
    auto iso = RESCUEVM_TRY(esc(session.paths.config_drive(), "config drive path"));
    // On the built-in AHCI controller: every Windows has its driver.
    b.add({"-blockdev", fmt::format("driver=file,node-name=config-drive,filename={},read-only=on", iso),
           "-device", "ide-cd,id=config-drive,bus=ide.1,drive=config-drive"});
    return {};
}

Result<void> add_network(Builder &b, const Plan &plan, const Session &session)
{
    if (plan.config.network.mode == NetworkMode::none || session.tap_fd < 0)
        return {};
    auto mac = RESCUEVM_TRY(esc(plan.host.network.mac, "uplink MAC"));
    b.add({"-netdev", fmt::format("tap,id=net0,fd={}{}", session.tap_fd, session.vhost_net ? ",vhost=on" : "")});
    // romfile= drops the NIC's boot ROM: the rescue VM never boots from the network.
    const char *model = plan.config.network.model == NicModel::e1000e ? "e1000e" : "virtio-net-pci";
    b.add({"-device", fmt::format("{},id=nic0,netdev=net0,mac={},romfile=", model, mac)});
    return {};
}

Result<void> add_console(Builder &b, const Plan &plan, const Session &session)
{
    auto console = RESCUEVM_TRY(esc(session.paths.guest_console(), "guest console path"));
    b.add({"-chardev", fmt::format("file,id=guest-console,path={},append=on", console), "-device",
           "isa-serial,chardev=guest-console"});
    b.add({"-device", "VGA,id=video0", "-device", "qemu-xhci,id=usb", "-device", "usb-tablet,bus=usb.0"});
    b.add({"-display", "none"});
    if (plan.config.vm.display == Display::vnc) {
        auto vnc = RESCUEVM_TRY(esc(session.paths.vnc_socket(), "VNC socket path"));
        b.add({"-vnc", "unix:" + vnc});
    }
    return {};
}

Result<void> add_monitoring(Builder &b, const Session &session)
{
    auto qmp = RESCUEVM_TRY(esc(session.paths.qmp_socket(), "QMP socket path"));
    b.add({"-chardev", fmt::format("socket,id=qmp,path={},server=on,wait=off", qmp), "-mon",
           "chardev=qmp,mode=control"});
    b.add({"-device", "pvpanic"}); // a crashing guest tells QEMU, which tells QMP
    return {};
}

} // namespace

Result<std::string> qemu_escape(const std::string &value, const std::string &what)
{
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\n' || c == '\r' || c == '\0')
            return fail(fmt::format("{} {:?} holds a line break or NUL, which QEMU's command line cannot carry",
                                    what, value));
        out += c;
        if (c == ',')
            out += ',';
    }
    return out;
}

std::string guest_serial(const DiskInfo &disk, DiskBus bus)
{
    size_t limit = bus == DiskBus::virtio_scsi ? kSerialLimitScsi : kSerialLimitShort;
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

Result<std::vector<std::string>> render_qemu_argv(const Plan &plan, const Session &session)
{
    Builder b;
    b.argv.push_back(plan.config.paths.qemu);
    auto name = RESCUEVM_TRY(esc(plan.config.vm.name, "vm.name"));
    add_machine(b, plan, session, name);
    add_cpu(b, plan);
    add_memory(b, plan);
    RESCUEVM_TRY(add_firmware(b, plan, session));
    RESCUEVM_TRY(add_boot_disk(b, plan, session));
    RESCUEVM_TRY(add_server_disks(b, plan));
    RESCUEVM_TRY(add_config_drive(b, session));
    RESCUEVM_TRY(add_network(b, plan, session));
    RESCUEVM_TRY(add_console(b, plan, session));
    RESCUEVM_TRY(add_monitoring(b, session));
    return b.argv;
}

std::string shell_quote(const std::vector<std::string> &argv)
{
    std::string out;
    for (const auto &word : argv) {
        if (!out.empty())
            out += ' ';
        bool plain = !word.empty();
        for (char c : word)
            plain &= std::isalnum(static_cast<unsigned char>(c)) || std::string_view("@%+=:,./-_").find(c) != std::string_view::npos;
        if (plain) {
            out += word;
            continue;
        }
        out += '\'';
        for (char c : word) {
            if (c == '\'')
                out += "'\\''";
            else
                out += c;
        }
        out += '\'';
    }
    return out;
}

} // namespace rescuevm
