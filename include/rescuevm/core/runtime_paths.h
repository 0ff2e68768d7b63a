// SPDX-License-Identifier: GPL-2.0-or-later
// RuntimePaths: every file rescuevm keeps in paths.runtime_dir, named in this one place.
#pragma once

#include <string>

namespace rescuevm {

struct RuntimePaths {
    std::string dir;
    // The agent's single-instance lock, held for its whole life (flock).
    std::string agent_lock() const { return dir + "/agent.lock"; }
    std::string control_socket() const { return dir + "/control.sock"; }
    std::string qmp_socket() const { return dir + "/qmp.sock"; }
    std::string vnc_socket() const { return dir + "/vnc.sock"; }
    // The guest's COM1: QEMU's socket the agent reads, and the bounded log of what it wrote
    // (rotated: the current file and the one before it).
    std::string guest_serial_socket() const { return dir + "/guest-serial.sock"; }
    std::string guest_console() const { return dir + "/guest-console.log"; }
    std::string guest_console_previous() const { return dir + "/guest-console.log.1"; }
    // Where `rescuevm vm console` attaches: the agent's own socket, root only.
    std::string console_clients_socket() const { return dir + "/console.sock"; }
    // QEMU's end of the guest agent's virtio-serial channel (org.qemu.guest_agent.0).
    std::string guest_agent_socket() const { return dir + "/guest-agent.sock"; }
    // The screen when the guest showed no sign of life in time (supervisor.boot_progress_timeout).
    std::string boot_progress_screenshot() const { return dir + "/boot-progress.ppm"; }
    std::string qemu_log() const { return dir + "/qemu.log"; }
    // The firmware's debug port 0x402 (SeaBIOS writes its boot messages there).
    std::string firmware_log() const { return dir + "/firmware.log"; }
    std::string overlay() const { return dir + "/overlay.qcow2"; }
    std::string uefi_vars() const { return dir + "/uefi-vars.fd"; }
    std::string config_drive() const { return dir + "/config-2.iso"; }
    // Which QEMU this agent runs (pid, start time, session), for a restarted agent.
    std::string qemu_record() const { return dir + "/qemu.json"; }
    // The disk signatures recorded before the VM first started.
    std::string signatures() const { return dir + "/disk-signatures.json"; }
    // What the uplink hand-over changed on the host, to give it back exactly.
    std::string network_claim() const { return dir + "/network-claim.json"; }
    // What the console protection changed on the host (sysrq, ctrl-alt-del), to give it back.
    std::string console_guard() const { return dir + "/console-guard.json"; }
};

} // namespace rescuevm
