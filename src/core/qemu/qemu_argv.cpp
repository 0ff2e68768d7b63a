// SPDX-License-Identifier: GPL-2.0-or-later
// render_qemu_argv(): the machine, CPUs, memory and firmware here; disks and devices by concern beside it. Pure.
#include "qemu_builder.h"

namespace rescuevm {
namespace qemu_detail {
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

void add_machine(Builder &b, const Plan &plan, const Session &session, const std::string &name)
{
        std::string machine = "q35";
    bool uefi = plan.firmware.kind == Firmware::uefi;
    if (uefi)
        machine += ",pflash0=firmware-code,pflash1=firmware-vars";
    if (uefi && plan.firmware.secure_boot)
        machine += ",smm=on";
    b.add({"-name", "guest=" + name + ",debug-threads=on", "-uuid", session.uuid, "-machine", machine,
           "-accel", plan.vm.accel == Accel::kvm ? "kvm" : "tcg", "-nodefaults", "-no-user-config", "-S",
           "-msg", "timestamp=on"});
    // A guest reboot resets in place, a guest poweroff pauses: QEMU never exits on its own.
    b.add({"-action", "reboot=reset,shutdown=pause,panic=pause"});
    b.add({"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"});
}

void add_cpu(Builder &b, const Plan &plan)
{
    if (plan.vm.accel == Accel::kvm) {
        std::string cpu = "host";
        for (const auto &hv : kHyperVFlags)
            cpu += std::string(",") + hv.flag;
        b.add({"-cpu", cpu, "-rtc", "base=localtime"}); // Windows keeps its clock in local time
    } else {
        b.add({"-cpu", "max"});
    }
    // One socket: Windows client editions use at most two.
    b.add({"-smp", fmt::format("cpus={0},sockets=1,cores={0},threads=1", plan.vm.cpus)});
}

void add_memory(Builder &b, const Plan &plan)
{
    b.add({"-m", fmt::format("{}M", plan.vm.memory_bytes >> 20)});
}

Result<void> add_firmware(Builder &b, const Plan &plan)
{
    if (plan.firmware.kind != Firmware::uefi)
        return {}; // SeaBIOS is QEMU's default
    const FirmwarePlan &fw = plan.firmware;
    auto code = RESCUEVM_TRY(qemu_escape(fw.code, "UEFI firmware path"));
    auto vars = RESCUEVM_TRY(qemu_escape(plan.paths.uefi_vars(), "UEFI variable store path"));
    b.add({"-blockdev", fmt::format("driver=file,node-name=firmware-code,filename={},read-only=on", code),
           "-blockdev", fmt::format("driver=file,node-name=firmware-vars,filename={}", vars)});
    if (fw.secure_boot)
        b.add({"-global", "driver=cfi.pflash01,property=secure,value=on"});
    return {};
}

// The firmware's debug port (0x402) into a file: SeaBIOS says there when nothing boots,
// which the agent reads (boot_verdict.h); it is not on the screen a serial reader sees.
Result<void> add_firmware_log(Builder &b, const Plan &plan)
{
    auto log = RESCUEVM_TRY(qemu_escape(plan.paths.firmware_log(), "firmware log path"));
    b.add({"-chardev", fmt::format("file,id=firmware-log,path={},append=on", log), "-device",
           "isa-debugcon,iobase=0x402,chardev=firmware-log"});
    return {};
}

} // namespace
} // namespace qemu_detail

using namespace qemu_detail;

Session session_for(const Plan &plan, std::string uuid)
{
    Session session;
    session.uuid = std::move(uuid);
    session.tap_fd = plan.network.mode == NetworkMode::macvtap ? kTapFdInQemu : -1;
    session.config_drive = true;
    for (std::size_t i = 0; i < plan.passed().size(); ++i)
        session.disk_fds.push_back(kFirstDiskFdInQemu + static_cast<int>(i));
    return session;
}

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

Result<std::vector<std::string>> render_qemu_argv(const Plan &plan, const Session &session)
{
    Builder b;
    b.argv.push_back(plan.qemu);
    auto name = RESCUEVM_TRY(qemu_escape(plan.vm.name, "vm.name"));
    add_machine(b, plan, session, name);
    add_cpu(b, plan);
    add_memory(b, plan);
    RESCUEVM_TRY(add_firmware(b, plan));
    RESCUEVM_TRY(add_firmware_log(b, plan));
    RESCUEVM_TRY(add_boot_disk(b, plan));
    RESCUEVM_TRY(add_server_disks(b, plan, session));
    RESCUEVM_TRY(add_config_drive(b, plan, session));
    RESCUEVM_TRY(add_network(b, plan, session));
    RESCUEVM_TRY(add_console(b, plan));
    RESCUEVM_TRY(add_monitoring(b, plan));
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
