// SPDX-License-Identifier: GPL-2.0-or-later
// The control socket's protocol: typed parsing of requests (untrusted), the reply shapes, the status report. Pure.
#include "rescuevm/core/control_protocol.h"

#include <fmt/format.h>

#include <algorithm>

namespace rescuevm {
namespace {

constexpr const char *kVmActions[] = {"start", "stop", "powerdown", "reset", "resume", "screenshot"};

Result<std::string> string_field(const nlohmann::json &request, const char *key, bool required)
{
    auto it = request.find(key);
    if (it == request.end()) {
        if (required)
            return fail(fmt::format("\"{}\" is missing", key));
        return std::string();
    }
    if (!it->is_string())
        return fail(fmt::format("\"{}\" must be a string, not {}", key, it->type_name()));
    std::string value = it->get<std::string>();
    if (value.size() > 4096)
        return fail(fmt::format("\"{}\" is longer than 4096 bytes", key));
    return value;
}

} // namespace

Result<ControlRequest> parse_control_request(const nlohmann::json &request)
{
    if (!request.is_object())
        return fail(fmt::format("a request is one JSON object per line, e.g. {{\"command\":\"status\"}}, not {}",
                                request.type_name()));
    ControlRequest r;
    auto command = string_field(request, "command", true);
    if (!command)
        return fail("bad request: " + command.error().message + ": use {\"command\":\"status\"} or "
                    "{\"command\":\"vm\",\"action\":\"...\"}");
    if (*command == "status")
        return r;
    if (*command != "vm")
        return fail(fmt::format("unknown command \"{}\": use status or vm", *command));
    r.kind = ControlRequest::Kind::vm;
    auto action = string_field(request, "action", true);
    if (!action)
        return fail("bad vm request: " + action.error().message + ": give one of start, stop, powerdown, reset, "
                    "resume, screenshot");
    if (std::find(std::begin(kVmActions), std::end(kVmActions), *action) == std::end(kVmActions))
        return fail(fmt::format("unknown VM action \"{}\": use start, stop, powerdown, reset, resume or screenshot",
                                *action));
    r.action = *action;
    if (r.action != "screenshot")
        return r;
    auto path = string_field(request, "path", true);
    if (!path)
        return fail("bad screenshot request: " + path.error().message + ": give an absolute path for the image");
    if (path->empty() || (*path)[0] != '/' || path->find('\0') != std::string::npos)
        return fail("screenshot needs an absolute PATH for a new file");
    r.path = *path;
    auto format = string_field(request, "format", false);
    if (!format)
        return fail("bad screenshot request: " + format.error().message);
    r.format = format->empty() ? (r.path.ends_with(".png") ? "png" : "ppm") : *format;
    if (r.format != "png" && r.format != "ppm")
        return fail(fmt::format("screenshot format \"{}\": use png or ppm", r.format));
    return r;
}

nlohmann::json control_ok(const std::string &message)
{
    return {{"ok", true}, {"message", message}};
}

nlohmann::json control_error(const std::string &message)
{
    return {{"ok", false}, {"error", message}};
}

nlohmann::json status_json(const StatusReport &s)
{
    nlohmann::json disks = nlohmann::json::array();
    for (const auto &d : s.disks)
        disks.push_back({{"name", d.name}, {"path", d.path}, {"size_bytes", d.size_bytes},
                         {"logical_block_size", d.logical_block_size}, {"serial", d.serial}, {"disk_id", d.disk_id}});
    nlohmann::json net = {{"mode", s.network_mode}};
    if (s.network_mode == "macvtap") {
        net["uplink"] = s.uplink;
        net["mac"] = s.mac;
        net["addresses"] = s.addresses;
        net["handed_to_vm"] = s.handed_to_vm;
    }
    return {{"agent", {{"version", s.version}, {"pid", s.agent_pid}, {"uptime_s", s.uptime_s}}},
            {"vm",
             {{"state", s.vm_state},
              {"qemu_pid", s.qemu_pid},
              {"boots", s.boots},
              {"reboots", s.reboots},
              {"panics", s.panics},
              {"qemu_starts", s.qemu_starts},
              {"qmp_answering", s.qmp_answering},
              {"pause_reason", s.pause_reason},
              {"boot_problem", s.boot_problem},
              {"last_event", s.last_event},
              {"last_event_age_s", s.last_event_age_s}}},
            {"disks", disks},
            {"network", net},
            {"signature_changes", s.signature_changes},
            {"screen", s.screen},
            {"runtime_dir", s.runtime_dir}};
}

} // namespace rescuevm
