// SPDX-License-Identifier: GPL-2.0-or-later
// The devices on QEMU's command line besides disks: the NIC, console and screen, QMP and pvpanic. Pure.
#include "qemu_builder.h"

namespace rescuevm::qemu_detail {

Result<void> add_network(Builder &b, const Plan &plan, const Session &session)
{
    if (plan.network.mode == NetworkMode::none || session.tap_fd < 0)
        return {};
    auto mac = RESCUEVM_TRY(qemu_escape(plan.network.uplink.mac, "uplink MAC"));
    b.add({"-netdev", fmt::format("tap,id=net0,fd={}{}", session.tap_fd, plan.network.vhost_net ? ",vhost=on" : "")});
    // romfile= drops the NIC's boot ROM: the rescue VM never boots from the network.
    const char *model = plan.network.model == NicModel::e1000e ? "e1000e" : "virtio-net-pci";
    b.add({"-device", fmt::format("{},id=nic0,netdev=net0,mac={},romfile=", model, mac)});
    return {};
}

Result<void> add_console(Builder &b, const Plan &plan)
{
    // COM1 (EMS/SAC) and the guest agent's channel are sockets QEMU listens on and the agent
    // connects to: a restarted agent connects again; without a client QEMU drops the guest's
    // output instead of stalling it. No logfile=: it would grow without bound (the agent keeps
    // the rotated guest-console.log).
    auto serial = RESCUEVM_TRY(qemu_escape(plan.paths.guest_serial_socket(), "guest serial socket path"));
    b.add({"-chardev", fmt::format("socket,id=guest-console,path={},server=on,wait=off", serial), "-device",
           "isa-serial,chardev=guest-console"});
    auto agent = RESCUEVM_TRY(qemu_escape(plan.paths.guest_agent_socket(), "guest agent socket path"));
    b.add({"-chardev", fmt::format("socket,id=guest-agent,path={},server=on,wait=off", agent), "-device",
           "virtio-serial-pci,id=guest-serial", "-device",
           "virtserialport,bus=guest-serial.0,chardev=guest-agent,name=org.qemu.guest_agent.0"});
    b.add({"-device", "VGA,id=video0", "-device", "qemu-xhci,id=usb", "-device", "usb-tablet,bus=usb.0"});
    b.add({"-display", "none"});
    if (plan.vm.display == Display::vnc) {
        auto vnc = RESCUEVM_TRY(qemu_escape(plan.paths.vnc_socket(), "VNC socket path"));
        b.add({"-vnc", "unix:" + vnc});
    }
    return {};
}

Result<void> add_monitoring(Builder &b, const Plan &plan)
{
    auto qmp = RESCUEVM_TRY(qemu_escape(plan.paths.qmp_socket(), "QMP socket path"));
    b.add({"-chardev", fmt::format("socket,id=qmp,path={},server=on,wait=off", qmp), "-mon",
           "chardev=qmp,mode=control"});
    b.add({"-device", "pvpanic"}); // a crashing guest tells QEMU, which tells QMP
    return {};
}

} // namespace rescuevm::qemu_detail
