// SPDX-License-Identifier: GPL-2.0-or-later
// The control socket's protocol: requests parsed and checked as untrusted input, replies and the status report. Pure.
#pragma once

#include "rescuevm/core/error.h"

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
};
nlohmann::json status_json(const StatusReport &status);

} // namespace rescuevm
