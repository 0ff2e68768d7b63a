// SPDX-License-Identifier: GPL-2.0-or-later
// The control socket's protocol: requests parsed and checked as untrusted input, replies and the status report. Pure.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/guest_agent_protocol.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace rescuevm {

// One request line: {"command":"status"} or {"command":"vm","action":"reset"}
// ({"command":"vm","action":"screenshot","path":"/abs/file.png","format":"png"}).
struct ControlRequest {
    enum class Kind { status, vm };
    Kind kind = Kind::status;
    std::string action; // vm: start, stop, powerdown, reset, resume, screenshot
    std::string path;   // screenshot: absolute path of a new file
    std::string format; // screenshot: "ppm" or "png" (from the path's extension when not given)
};

// Every way a request can be wrong gets a sentence naming what is wrong; never throws.
Result<ControlRequest> parse_control_request(const nlohmann::json &request);

nlohmann::json control_ok(const std::string &message);
nlohmann::json control_error(const std::string &message);

// What `rescuevm status` reports: gathered by the agent, rendered here.
struct StatusDisk {
    std::string name, path, serial, disk_id;
    std::uint64_t size_bytes = 0;
    unsigned logical_block_size = 512;
};
// What the guest says of itself: its guest agent and its serial console.
struct StatusGuest {
    std::string agent = "never answered"; // "answering", "not answering", "never answered"
    std::int64_t agent_answer_age_s = -1; // since its last answer (-1: never)
    GuestFacts facts;                     // from its last answers (kept while it does not answer)
    bool addresses_compared = false;      // network mode macvtap and the guest's addresses known
    std::vector<std::string> holds_server_addresses; // the server's addresses the guest has
    std::int64_t console_output_age_s = -1; // since the guest last wrote to COM1 (-1: never)
    std::uint64_t console_bytes = 0;      // written by the guest since the agent started
    unsigned console_clients = 0;         // `rescuevm vm console` attached
    std::string console_writer;           // who has the keyboard ("pid 123 on /dev/pts/2"), or ""
    std::string console_log;              // guest-console.log's path
    std::vector<std::string> console_last_lines; // printable, last first-to-last
    bool boot_progress_warned = false;    // no sign of life within supervisor.boot_progress_timeout
};

struct StatusReport {
    std::string version;
    int agent_pid = 0;
    std::int64_t uptime_s = 0;
    std::string vm_state;
    int qemu_pid = 0;
    unsigned boots = 0, reboots = 0, panics = 0, qemu_starts = 0;
    bool qmp_answering = true;
    std::string pause_reason;
    std::string boot_problem; // the firmware found nothing to boot
    std::string last_event;
    std::int64_t last_event_age_s = 0;
    std::vector<StatusDisk> disks;
    std::string network_mode;
    std::string uplink, mac;
    std::vector<std::string> addresses;
    bool handed_to_vm = false;
    std::vector<std::string> signature_changes;
    std::string runtime_dir;
    std::string screen;   // where the VM's screen is: "VNC socket /run/rescuevm/vnc.sock", ...
    StatusGuest guest;
    // The host's keyboards, mice and tablets handed to the VM (screen.mode physical):
    // "event3 keyboard (QEMU QEMU USB Keyboard): in the VM".
    std::vector<std::string> input_devices;
};
nlohmann::json status_json(const StatusReport &status);

} // namespace rescuevm
