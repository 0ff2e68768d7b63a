// SPDX-License-Identifier: GPL-2.0-or-later
// Test driver of the network module: prints facts (and the hand-over core decides), claims and releases the uplink on command.
//
//   net_driver facts   [--uplink NAME] [--addressing auto|dhcp|static] [--resolv-conf PATH]
//   net_driver claim   --runtime-dir DIR [--uplink NAME] [--dev-dir DIR] [--node-dir DIR]
//                      then reads commands on stdin: "release" (release, exit 0),
//                      "abandon" (exit without releasing, like a crashed agent),
//                      "detach" (UplinkClaim::detach(), then a normal exit)
//   net_driver release --runtime-dir DIR   (load the record of an abandoned claim, release it)
//   net_driver qemu    --runtime-dir DIR --qemu-arg ARG...   (claim, run QEMU with the tap fd
//                      as fd 3 until it exits, release)
// Output: one JSON object per line on stdout; logs on stderr.
#include "rescuevm/core/runtime_paths.h"
#include "rescuevm/host/network_facts.h"
#include "rescuevm/core/uplink_rules.h"
#include "rescuevm/net/uplink_claim.h"
#include "rescuevm/host/dhcp_clients.h"
#include "rescuevm/core/report.h"

#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <map>
#include <string>
#include <vector>

using namespace rescuevm;

namespace {

void print(const nlohmann::json &j)
{
    std::cout << j.dump() << std::endl;
}

int usage()
{
    std::cerr << "usage: net_driver facts|claim|release|qemu [options]\n";
    return 2;
}

int run_qemu(int tap_fd, const std::vector<std::string> &args)
{
    pid_t pid = fork();
    if (pid == 0) {
        // QEMU gets the tap as fd 3: "-netdev tap,id=net0,fd=3".
        if (dup2(tap_fd, 3) < 0)
            _exit(126);
        std::vector<char *> argv;
        for (const auto &a : args)
            argv.push_back(const_cast<char *>(a.c_str()));
        argv.push_back(nullptr);
        execvp(argv[0], argv.data());
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    std::string command = argv[1];
    std::map<std::string, std::string> opt;
    std::vector<std::string> qemu_args;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (!a.starts_with("--") || i + 1 >= argc)
            return usage();
        if (a == "--qemu-arg")
            qemu_args.push_back(argv[++i]);
        else
            opt[a.substr(2)] = argv[++i];
    }

    NetworkOptions nopt;
    if (opt.contains("uplink"))
        nopt.uplink = opt["uplink"];
    if (opt.contains("resolv-conf"))
        nopt.resolv_conf = opt["resolv-conf"];
    if (opt["addressing"] == "dhcp")
        nopt.addressing = Addressing::dhcp;
    else if (opt["addressing"] == "static")
        nopt.addressing = Addressing::static_;
    ClaimOptions copt;
    if (opt.contains("runtime-dir"))
        copt.runtime_dir = opt["runtime-dir"];
    if (opt.contains("dev-dir"))
        copt.dev_dir = opt["dev-dir"];
    if (opt.contains("node-dir"))
        copt.node_dir = opt["node-dir"];

    if (command == "facts") {
        auto facts = read_network_facts(nopt);
        if (!facts) {
            print({{"error", facts.error().message}});
            return 1;
        }
        facts->dhcp = uplink_uses_dhcp(*facts, nopt.addressing);
        auto out = network_facts_json(*facts);
        out["problem"] = uplink_problem(*facts); // what plan and claim refuse ("" when nothing)
        UplinkHandover handover = uplink_handover(*facts);
        nlohmann::json steps = nlohmann::json::array();
        for (const auto &step : handover.steps)
            steps.push_back(to_string(step.kind));
        out["handover"] = {{"steps", steps}, {"description", handover.description}};
        print(out);
        return 0;
    }
    if (command == "release") {
        auto loaded = UplinkClaim::load(RuntimePaths{copt.runtime_dir}.network_claim());
        if (!loaded) {
            print({{"error", loaded.error().message}});
            return 1;
        }
        if (!*loaded) {
            print({{"released", false}, {"reason", "no record"}});
            return 0;
        }
        auto r = (*loaded)->release();
        print({{"released", bool(r)}, {"error", r ? "" : r.error().message}});
        return r ? 0 : 1;
    }
    if (command != "claim" && command != "qemu")
        return usage();

    auto facts = read_network_facts(nopt);
    if (!facts) {
        print({{"error", facts.error().message}});
        return 1;
    }
    auto claim = UplinkClaim::claim(*facts, copt);
    if (!claim) {
        print({{"refused", claim.error().message}});
        return 3;
    }
    print({{"claimed", true},
           {"pid", getpid()},
           {"tap_fd", claim->tap_fd()},
           {"tap_path", claim->tap_path()},
           {"macvtap", claim->macvtap()},
           {"macvtap_ifindex", claim->macvtap_ifindex()},
           {"mac", claim->mac()},
           {"record", claim->record_path()}});
    if (command == "qemu") {
        int rc = run_qemu(claim->tap_fd(), qemu_args);
        auto r = claim->release();
        print({{"qemu_exit", rc}, {"released", bool(r)}, {"error", r ? "" : r.error().message}});
        return r ? rc : 1;
    }
    for (std::string line; std::getline(std::cin, line);) {
        if (line == "release") {
            auto r = claim->release();
            print({{"released", bool(r)}, {"error", r ? "" : r.error().message}});
            return r ? 0 : 1;
        }
        if (line == "abandon")
            _exit(0); // no destructor: the record stays, as after a crash
        if (line == "detach") {
            claim->detach(); // an agent leaving its QEMU running for the next one
            print({{"detached", true}});
            return 0;
        }
    }
    return 0; // end of input: the destructor releases
}
