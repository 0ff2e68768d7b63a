// SPDX-License-Identifier: GPL-2.0-or-later
// `rescuevm status` and `rescuevm vm ...`: clients of the agent's control socket.
#include "rescuevm/cli/cli.h"
#include "rescuevm/agent/control.h"
#include "rescuevm/core/qemu_argv.h"

#include <fmt/format.h>

#include <iostream>

namespace rescuevm {
namespace {

using namespace std::chrono_literals;

std::string socket_path(const Config &config)
{
    RuntimePaths paths{config.paths.runtime_dir};
    return paths.control_socket();
}

std::string age_text(std::int64_t age_s)
{
    if (age_s < 0)
        return "never";
    if (age_s < 120)
        return fmt::format("{} s ago", age_s);
    return fmt::format("{} min ago", age_s / 60);
}

// A member, or an empty object when an older or newer agent did not send it.
const nlohmann::json &member(const nlohmann::json &j, const char *key)
{
    static const nlohmann::json empty = nlohmann::json::object();
    auto it = j.is_object() ? j.find(key) : j.end();
    return it != j.end() ? *it : empty;
}

// What the guest says of itself: its guest agent (is Windows up, does it hold the server's
// IP?) and its serial console.
void print_guest(const nlohmann::json &g)
{
    const auto &agent = member(g, "agent");
    std::string state = agent.value("state", "?");
    if (state == "never answered") {
        std::cout << "guest:    guest agent has not answered (not installed or not started yet: see "
                     "docs/rescue-image.md)\n";
    } else {
        const auto &os = member(agent, "os");
        std::string line = os.value("name", "");
        if (!os.value("version", "").empty() && line.find(os.value("version", "")) == std::string::npos)
            line += " " + os.value("version", "");
        std::cout << fmt::format("guest:    guest agent {} (last answer {}): {}, host name {}\n", state,
                                 age_text(agent.value("last_answer_age_s", -1)), line.empty() ? "OS unknown" : line,
                                 agent.value("hostname", "").empty() ? "-" : agent.value("hostname", ""));
        std::vector<std::string> addresses;
        for (const auto &i : member(agent, "interfaces"))
            for (const auto &a : member(i, "addresses"))
                if (a.is_string() && !a.get<std::string>().starts_with("127.") && a.get<std::string>() != "::1/128")
                    addresses.push_back(a.get<std::string>());
        std::string held;
        if (member(agent, "holds_server_address").is_boolean())
            held = member(agent, "holds_server_address").get<bool>()
                       ? fmt::format(" (holds the server's address {})",
                                     fmt::join(agent.value("server_addresses_held", std::vector<std::string>{}), " "))
                       : " (does NOT hold the server's address)";
        std::cout << fmt::format("guest:    addresses {}{}\n", addresses.empty() ? "none" : fmt::format("{}", fmt::join(addresses, " ")),
                                 held);
    }
    const auto &console = member(g, "console");
    std::string writer = console.value("writer", "");
    std::cout << fmt::format("console:  last output {}, {} attached{}; `rescuevm vm console` attaches, log {}\n",
                             age_text(console.value("last_output_age_s", -1)), console.value("clients", 0),
                             writer.empty() ? "" : " (keyboard: " + writer + ")", console.value("log", ""));
    if (g.value("boot_progress_warned", false))
        std::cout << "WARNING:  no sign of life from the guest since its boot (boot-progress.ppm in the runtime "
                     "directory)\n";
    const auto &lines = member(console, "last_lines");
    if (lines.is_array() && !lines.empty() && lines.back().is_string())
        std::cout << "console>  " << lines.back().get<std::string>() << "\n";
}

void print_status(const nlohmann::json &s)
{
    const auto &vm = s["vm"];
    std::cout << fmt::format("agent:    rescuevm {}, pid {}, up {} s\n", s["agent"].value("version", ""),
                             s["agent"].value("pid", 0), s["agent"].value("uptime_s", 0));
    std::cout << fmt::format("VM:       {}, QEMU pid {}, {} boot(s), {} guest reboot(s), {} crash(es)\n",
                             vm.value("state", "?"), vm.value("qemu_pid", 0), vm.value("boots", 0),
                             vm.value("reboots", 0), vm.value("panics", 0));
    for (const char *key : {"pause_reason", "boot_problem"})
        if (vm.contains(key) && vm[key].is_string() && !vm[key].get<std::string>().empty())
            std::cout << fmt::format("problem:  {}\n", vm[key].get<std::string>());
    if (!vm.value("last_event", "").empty())
        std::cout << fmt::format("last:     {} ({} s ago)\n", vm.value("last_event", ""), vm.value("last_event_age_s", 0));
    for (const auto &d : s["disks"])
        std::cout << fmt::format("disk:     {} {} bytes, {}-byte sectors, serial {}\n", d.value("path", ""),
                                 d.value("size_bytes", 0ULL), d.value("logical_block_size", 0),
                                 d.value("serial", "").empty() ? "-" : d.value("serial", ""));
    const auto &net = s["network"];
    if (net.value("mode", "") == "none")
        std::cout << "network:  none\n";
    else
        std::cout << fmt::format("network:  {} {} {}{}\n", net.value("uplink", ""), net.value("mac", ""),
                                 fmt::join(net.value("addresses", std::vector<std::string>{}), " "),
                                 net.value("handed_to_vm", false) ? " (carried by the VM)" : " (the host's)");
    if (s.contains("screen") && s["screen"].is_string())
        std::cout << fmt::format("screen:   {}\n", s["screen"].get<std::string>());
    if (s.contains("input_devices") && s["input_devices"].is_array())
        for (const auto &d : s["input_devices"])
            if (d.is_string())
                std::cout << fmt::format("input:    {}\n", d.get<std::string>());
    for (const auto &c : s["signature_changes"])
        std::cout << "WARNING:  " << c.get<std::string>() << "\n";
    if (s.contains("guest"))
        print_guest(s["guest"]);
}

} // namespace

int cmd_status(const CliOptions &cli, const Config &config)
{
    auto reply = control_request(socket_path(config), {{"command", "status"}}, 10s);
    if (!reply) {
        std::cerr << "rescuevm: " << reply.error().message << "\n";
        return kExitFailure;
    }
    if (!reply->value("ok", false) || !reply->contains("status")) {
        std::cerr << "rescuevm: the agent refused: " << reply->value("error", "?") << "\n";
        return kExitFailure;
    }
    if (cli.json)
        std::cout << (*reply)["status"].dump(2) << "\n";
    else
        print_status((*reply)["status"]);
    return kExitOk;
}

int cmd_vm(const CliOptions &cli, const Config &config)
{
    static const std::vector<std::string> kActions = {"start", "stop", "powerdown", "reset", "resume", "screenshot"};
    if (!cli.args.empty() && cli.args[0] == "console")
        return cmd_console(cli, config);
    if (cli.args.empty() || std::find(kActions.begin(), kActions.end(), cli.args[0]) == kActions.end()) {
        std::cerr << "rescuevm: vm needs one of start, stop, powerdown, reset, resume, screenshot PATH, console\n";
        return kExitUsage;
    }
    nlohmann::json request = {{"command", "vm"}, {"action", cli.args[0]}};
    if (cli.args[0] == "screenshot") {
        if (cli.args.size() != 2 || cli.args[1].empty() || cli.args[1][0] != '/') {
            std::cerr << "rescuevm: vm screenshot needs an absolute PATH for the image (PPM)\n";
            return kExitUsage;
        }
        request["path"] = cli.args[1];
    }
    auto reply = control_request(socket_path(config), request, 60s);
    if (!reply) {
        std::cerr << "rescuevm: " << reply.error().message << "\n";
        return kExitFailure;
    }
    if (!reply->value("ok", false)) {
        std::cerr << "rescuevm: " << reply->value("error", "the agent refused") << "\n";
        return kExitFailure;
    }
    std::cout << reply->value("message", "done") << "\n";
    return kExitOk;
}

} // namespace rescuevm
