// SPDX-License-Identifier: GPL-2.0-or-later
// The network contract: which stacks may serve the uplink, and how each lets go of it for the session and takes it back.
#include "rescuevm/core/uplink_rules.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <initializer_list>
#include <string_view>

namespace rescuevm {

namespace {

// dhclient flags (no value) rescuevm knows; the first group is given again on restart.
constexpr std::string_view kDhclientRestartFlags[] = {"-v", "-i", "-I", "-q", "-w", "-N", "-T", "-P", "-S"};
constexpr std::string_view kDhclientDroppedFlags[] = {"-d", "-nw", "-1"}; // foreground, no-wait, once

bool contains(auto &&range, std::string_view value)
{
    return std::find(std::begin(range), std::end(range), value) != std::end(range);
}

// Interface names as the kernel allows them, minus what a shell glob or a path would read.
bool plain_interface_name(const std::string &name)
{
    if (name.empty() || name.size() > 15 || name == "." || name == "..")
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               std::string_view("_-.@").find(c) != std::string_view::npos;
    });
}

// A path where DHCP clients keep pid and lease files: absolute, normalised, printable,
// under a directory only root writes. Read-back records must not point elsewhere.
bool state_path(const std::string &path, std::initializer_list<std::string_view> dirs)
{
    if (path.size() > 200 || path.ends_with("/") || path.find("//") != std::string::npos ||
        path.find("/./") != std::string::npos || path.find("/../") != std::string::npos ||
        path.ends_with("/.."))
        return false;
    for (char c : path)
        if (c <= ' ' || c == 0x7f)
            return false;
    return std::any_of(dirs.begin(), dirs.end(), [&](std::string_view d) {
        return path.size() > d.size() && path.starts_with(d);
    });
}

bool dhcp_state_path(const std::string &path)
{
    return state_path(path, {"/run/", "/var/run/", "/var/lib/dhcp/", "/var/lib/dhclient/", "/var/lib/dhcpcd/"});
}

std::string client_text(const DhcpClientFacts &c)
{
    return fmt::format("{}{} pid {}", c.name, c.manager ? " (manager)" : "", c.pid);
}

std::string family_flag(const std::string &family)
{
    return family == "ipv4" ? "-4" : family == "ipv6" ? "-6" : "";
}

// The step for one DHCP client of `uplink`, or why it cannot be handed over.
std::string client_step(const DhcpClientFacts &c, const std::string &uplink, HandoverStep &step)
{
    step.program = c.name;
    step.pid = c.pid;
    step.start_time = c.start_time;
    step.family = c.family;
    std::string who = client_text(c);
    std::string fix = "or set network.mode = \"none\"";
    if (c.name == "udhcpc" || c.name == "udhcpc6") {
        step.kind = HandoverStep::Kind::udhcpc;
        return "";
    }
    if (c.name == "dhcpcd") {
        if (c.manager) {
            step.kind = HandoverStep::Kind::dhcpcd_manager;
            step.control_socket = c.control_socket;
            if (c.control_socket.empty())
                return fmt::format("network: {} manages every interface but has no control socket in /run/dhcpcd: "
                                   "rescuevm cannot stop it for {} alone, and stopping it would de-configure the others; "
                                   "run dhcpcd for {} only (dhcpcd -b {}) or use systemd-networkd, {}",
                                   who, uplink, uplink, uplink, fix);
            return "";
        }
        step.kind = HandoverStep::Kind::dhcpcd;
        if (c.pid_file.empty() || c.pid_file_pid != c.pid)
            return fmt::format("network: {} serves {} but its pid file {} {}: `dhcpcd -x {}` would not reach it; "
                               "restart it as dhcpcd -b {}, {}",
                               who, uplink, c.pid_file.empty() ? std::string("in /run/dhcpcd") : c.pid_file,
                               c.pid_file_pid ? fmt::format("holds pid {}", c.pid_file_pid) : std::string("is missing"),
                               uplink, uplink, fix);
        return "";
    }
    // dhclient
    step.kind = HandoverStep::Kind::dhclient;
    std::string per_interface = fmt::format("run one dhclient per interface with its own pid file, as ifupdown does "
                                            "(dhclient -pf /run/dhclient.{0}.pid -lf /var/lib/dhcp/dhclient.{0}.leases {0})",
                                            uplink);
    if (c.interfaces.size() != 1)
        return fmt::format("network: {} serves {} in one process: rescuevm could only stop it for {} by stopping it "
                           "for all of them; {}, {}",
                           who, c.interfaces.empty() ? std::string("every interface") : fmt::format("{}", fmt::join(c.interfaces, ", ")),
                           uplink, per_interface, fix);
    if (c.pid_file_pid != c.pid)
        return fmt::format("network: {} serving {} does not own its pid file {} ({}): `dhclient -x` would stop {}; {}, {}",
                           who, uplink, c.pid_file,
                           c.pid_file_pid ? fmt::format("it holds pid {}", c.pid_file_pid) : std::string("missing"),
                           c.pid_file_pid ? "another process" : "nothing", per_interface, fix);
    std::vector<std::string> unknown = c.other_options;
    for (const auto &f : c.flags) {
        if (contains(kDhclientRestartFlags, f))
            step.flags.push_back(f);
        else if (!contains(kDhclientDroppedFlags, f))
            unknown.push_back(f);
    }
    if (!unknown.empty())
        return fmt::format("network: {} serving {} runs with {}, which rescuevm cannot start it again with after the "
                           "session: put that in /etc/dhcp/dhclient.conf instead, {}",
                           who, uplink, fmt::join(unknown, " "), fix);
    step.pid_file = c.pid_file;
    step.lease_file = c.lease_file;
    step.duid_file = c.duid_file;
    step.config_file = c.config_file;
    step.duid_type = c.duid_type;
    return "";
}

std::string step_text(const HandoverStep &s, const std::string &uplink, const std::string &macvtap)
{
    switch (s.kind) {
    case HandoverStep::Kind::networkd:
        return fmt::format("systemd-networkd ({}) leaves {} and {} alone for the session ({} with Unmanaged=yes, "
                           "networkctl reload), then takes {} back (the file removed, networkctl reload, networkctl "
                           "reconfigure {})",
                           s.admin_state.empty() ? std::string("no state for it yet") : "now " + s.admin_state,
                           uplink, macvtap, s.dropin, uplink, uplink);
    case HandoverStep::Kind::dhclient:
        return fmt::format("dhclient pid {} stops (dhclient -x -pf {}) and starts again after the session "
                           "(dhclient -nw, same pid and lease files)",
                           s.pid, s.pid_file);
    case HandoverStep::Kind::dhcpcd:
        return fmt::format("dhcpcd pid {} serving {} alone stops (dhcpcd -x {}) and starts again after the session "
                           "(dhcpcd -b {})",
                           s.pid, uplink, uplink, uplink);
    case HandoverStep::Kind::dhcpcd_manager:
        return fmt::format("the dhcpcd manager pid {} lets go of {} and {} (-x through {}) and serves {} again after "
                           "the session (-n); its other interfaces are not touched",
                           s.pid, uplink, macvtap, s.control_socket, uplink);
    case HandoverStep::Kind::udhcpc:
        return fmt::format("{} pid {} releases its lease and idles (SIGUSR2), then asks for a lease again after the "
                           "session (SIGUSR1)",
                           s.program, s.pid);
    }
    return "";
}

} // namespace

const char *to_string(HandoverStep::Kind kind)
{
    switch (kind) {
    case HandoverStep::Kind::networkd: return "networkd";
    case HandoverStep::Kind::dhclient: return "dhclient";
    case HandoverStep::Kind::dhcpcd: return "dhcpcd";
    case HandoverStep::Kind::dhcpcd_manager: return "dhcpcd-manager";
    case HandoverStep::Kind::udhcpc: return "udhcpc";
    }
    return "?";
}

UplinkHandover uplink_handover(const NetworkFacts &facts, const std::string &macvtap)
{
    UplinkHandover h;
    const std::string &uplink = facts.uplink;
    if (!facts.other_managers.empty()) {
        h.problem = fmt::format("network: {} runs here, and rescuevm cannot take uplink {} from it for the session: a "
                                "rescue image for rescuevm configures the uplink with systemd-networkd, a static ip= "
                                "configuration, or dhclient/dhcpcd/udhcpc per interface; stop it before rescuevm "
                                "starts, or set network.mode = \"none\"",
                                fmt::join(facts.other_managers, ", "), uplink);
        return h;
    }
    const NetworkdFacts &nd = facts.networkd;
    bool networkd_manages = nd.running && !nd.admin_state.empty() && nd.admin_state != "unmanaged";
    if (networkd_manages && !facts.dhcp_clients.empty()) {
        h.problem = fmt::format("network: uplink {} is served by both systemd-networkd ({}) and {}: two stacks fight "
                                "over it; configure it with one of them, or set network.mode = \"none\"",
                                uplink, nd.network_file.empty() ? nd.admin_state : nd.network_file,
                                client_text(facts.dhcp_clients.front()));
        return h;
    }
    // A running networkd gets the drop-in even for an unmanaged uplink: a catch-all
    // .network would otherwise configure the macvtap the moment it appears.
    if (nd.running) {
        if (!plain_interface_name(uplink) || !plain_interface_name(macvtap)) {
            h.problem = fmt::format("network: systemd-networkd runs, and the names {} and {} cannot be matched exactly "
                                    "by a .network file's Name=: rename the uplink, or set network.mode = \"none\"",
                                    uplink, macvtap);
            return h;
        }
        HandoverStep s;
        s.kind = HandoverStep::Kind::networkd;
        s.program = "systemd-networkd";
        s.dropin = networkd_dropin_path(uplink);
        s.admin_state = nd.admin_state;
        h.steps.push_back(s);
    }
    for (const auto &client : facts.dhcp_clients) {
        HandoverStep s;
        if (std::string problem = client_step(client, uplink, s); !problem.empty()) {
            h.problem = problem;
            return h;
        }
        if (std::string problem = handover_step_problem(s, uplink); !problem.empty()) {
            h.problem = fmt::format("network: {} serving {} cannot be handed over: {}; {}", client_text(client),
                                    uplink, problem, "set network.mode = \"none\" or change how the image starts it");
            return h;
        }
        h.steps.push_back(s);
    }

    std::vector<std::string> parts;
    bool daemon = networkd_manages || !facts.dhcp_clients.empty();
    if (!daemon)
        parts.push_back(fmt::format("no daemon serves {} (a static or ip= configuration)", uplink));
    for (const auto &s : h.steps)
        parts.push_back(step_text(s, uplink, macvtap));
    parts.push_back("its addresses and routes are recorded, removed and put back after the session");
    h.description = fmt::format("{}", fmt::join(parts, "; "));
    return h;
}

std::string handover_step_problem(const HandoverStep &s, const std::string &uplink)
{
    if (!plain_interface_name(uplink))
        return "uplink \"" + uplink + "\" is not a plain interface name";
    if (s.family != "" && s.family != "ipv4" && s.family != "ipv6")
        return "family \"" + s.family + "\" is not ipv4 or ipv6";
    if (s.kind != HandoverStep::Kind::networkd && s.pid <= 1)
        return "pid " + std::to_string(s.pid) + " is not a client's";
    switch (s.kind) {
    case HandoverStep::Kind::networkd:
        if (s.dropin != networkd_dropin_path(uplink))
            return "drop-in \"" + s.dropin + "\" is not " + networkd_dropin_path(uplink);
        if (s.admin_state.size() > 20 || !std::all_of(s.admin_state.begin(), s.admin_state.end(),
                                                       [](char c) { return c >= 'a' && c <= 'z'; }))
            return "networkd state \"" + s.admin_state + "\" is not a state";
        return "";
    case HandoverStep::Kind::dhclient:
        if (s.program != "dhclient")
            return "program \"" + s.program + "\" is not dhclient";
        if (!dhcp_state_path(s.pid_file))
            return "pid file \"" + s.pid_file + "\" is not under /run or /var/lib/dhcp";
        if (!dhcp_state_path(s.lease_file))
            return "lease file \"" + s.lease_file + "\" is not under /var/lib/dhcp or /run";
        if (!s.duid_file.empty() && !dhcp_state_path(s.duid_file))
            return "DUID lease file \"" + s.duid_file + "\" is not under /var/lib/dhcp or /run";
        if (!s.config_file.empty() && !state_path(s.config_file, {"/etc/"}))
            return "config file \"" + s.config_file + "\" is not under /etc";
        if (s.duid_type != "" && s.duid_type != "LL" && s.duid_type != "LLT")
            return "DUID type \"" + s.duid_type + "\" is not LL or LLT";
        for (const auto &f : s.flags)
            if (!contains(kDhclientRestartFlags, f))
                return "flag \"" + f + "\" is not one rescuevm starts dhclient with";
        return "";
    case HandoverStep::Kind::dhcpcd:
        return s.program == "dhcpcd" ? "" : "program \"" + s.program + "\" is not dhcpcd";
    case HandoverStep::Kind::dhcpcd_manager:
        if (s.program != "dhcpcd")
            return "program \"" + s.program + "\" is not dhcpcd";
        if (!state_path(s.control_socket, {"/run/dhcpcd/", "/var/run/dhcpcd/"}) || !s.control_socket.ends_with("sock"))
            return "control socket \"" + s.control_socket + "\" is not dhcpcd's in /run/dhcpcd";
        return "";
    case HandoverStep::Kind::udhcpc:
        return s.program == "udhcpc" || s.program == "udhcpc6" ? "" : "program \"" + s.program + "\" is not udhcpc";
    }
    return "unknown step";
}

std::string networkd_dropin_path(const std::string &uplink)
{
    return "/run/systemd/network/0-rescuevm-" + uplink + ".network";
}

std::string networkd_dropin_text(const std::string &uplink, const std::string &mac, const std::string &macvtap)
{
    // Matched by name only: the passthru macvtap carries the uplink's MAC, so a
    // MACAddress= match would also catch VLANs on the uplink.
    return fmt::format("# Written by rescuevm while its VM carries {0} ({1}) through the macvtap {2}:\n"
                       "# systemd-networkd leaves both alone until rescuevm removes this file.\n"
                       "[Match]\n"
                       "Name={0} {2}\n"
                       "\n"
                       "[Link]\n"
                       "Unmanaged=yes\n",
                       uplink, mac, macvtap);
}

std::vector<std::string> handover_stop_command(const HandoverStep &s, const std::string &uplink)
{
    std::vector<std::string> argv{s.program};
    if (std::string f = family_flag(s.family); !f.empty())
        argv.push_back(f);
    argv.push_back("-x");
    if (s.kind == HandoverStep::Kind::dhclient) {
        argv.insert(argv.end(), {"-pf", s.pid_file, "-lf", s.lease_file});
        if (!s.config_file.empty())
            argv.insert(argv.end(), {"-cf", s.config_file});
    }
    argv.push_back(uplink);
    return argv;
}

std::vector<std::string> handover_start_command(const HandoverStep &s, const std::string &uplink)
{
    std::vector<std::string> argv{s.program};
    if (std::string f = family_flag(s.family); !f.empty())
        argv.push_back(f);
    if (s.kind == HandoverStep::Kind::dhcpcd) {
        argv.insert(argv.end(), {"-b", uplink});
        return argv;
    }
    argv.insert(argv.end(), s.flags.begin(), s.flags.end());
    argv.insert(argv.end(), {"-nw", "-pf", s.pid_file, "-lf", s.lease_file});
    if (!s.duid_file.empty())
        argv.insert(argv.end(), {"-df", s.duid_file});
    if (!s.config_file.empty())
        argv.insert(argv.end(), {"-cf", s.config_file});
    if (!s.duid_type.empty())
        argv.insert(argv.end(), {"-D", s.duid_type});
    argv.push_back(uplink);
    return argv;
}

std::string dhcpcd_control_message(const std::vector<std::string> &words)
{
    std::string message;
    for (std::size_t i = 0; i < words.size(); ++i) {
        message += words[i];
        if (i + 1 == words.size())
            message += '\n'; // ends the command: dhcpcd reads several per message
        message += '\0';
    }
    message += "--version";
    message += '\0';
    return message;
}

} // namespace rescuevm
