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
    // The guest's COM1: the agent's socket, and the bounded log of what it wrote.
    std::string guest_serial_socket() const { return dir + "/guest-serial.sock"; }
    std::string guest_console() const { return dir + "/guest-console.log"; }
    std::string guest_agent_socket() const { return dir + "/guest-agent.sock"; }
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
};

} // namespace rescuevm
