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
    auto console = RESCUEVM_TRY(qemu_escape(plan.paths.guest_console(), "guest console path"));
    b.add({"-chardev", fmt::format("file,id=guest-console,path={},append=on", console), "-device",
           "isa-serial,chardev=guest-console"});
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
