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
    for (const auto &c : s["signature_changes"])
        std::cout << "WARNING:  " << c.get<std::string>() << "\n";
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
    if (cli.args.empty() || std::find(kActions.begin(), kActions.end(), cli.args[0]) == kActions.end()) {
        std::cerr << "rescuevm: vm needs one of start, stop, powerdown, reset, resume, screenshot PATH\n";
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
