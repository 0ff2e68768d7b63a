// SPDX-License-Identifier: GPL-2.0-or-later
// `rescuevm signatures [restore DISK...]`: recorded vs current disk identities, and writing them back.
#include "rescuevm/cli/cli.h"
#include "rescuevm/agent/disk_guard.h"
#include "rescuevm/core/disk_identity.h"
#include "rescuevm/signatures/disk_signatures.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/sys/process.h"
#include "rescuevm/core/qemu_argv.h"
#include "rescuevm/agent/session_files.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>

namespace rescuevm {
namespace {

// The VM is running when the QEMU recorded in runtime_dir is alive.
bool vm_running(const RuntimePaths &paths)
{
    auto record = load_qemu_record(paths);
    return record && *record && attach((*record)->pid, (*record)->start_time).has_value();
}

int show(const CliOptions &cli, const std::vector<DiskSignature> &recorded)
{
    nlohmann::json out = nlohmann::json::array();
    for (const auto &r : recorded) {
        auto current = read_disk_signature(r.path);
        auto changes = current ? compare(r, *current) : std::vector<SignatureChange>{};
        nlohmann::json entry = {{"name", r.name}, {"path", r.path}, {"recorded", r}};
        entry["current"] = current ? nlohmann::json(*current) : nlohmann::json(nullptr);
        if (!current)
            entry["error"] = current.error().message;
        entry["changed"] = !current || !changes.empty();
        entry["changes"] = changes;
        out.push_back(entry);
        if (cli.json)
            continue;
        if (!current) {
            std::cout << fmt::format("{:<10} recorded {} {}; now unreadable: {}\n", r.name, r.table, r.disk_id,
                                     current.error().message);
        } else if (changes.empty()) {
            std::cout << fmt::format("{:<10} {} {}: unchanged\n", r.name, r.table, r.disk_id.empty() ? "-" : r.disk_id);
        } else {
            for (const auto &c : changes)
                std::cout << fmt::format("{:<10} CHANGED: {}\n", r.name, describe_change(c));
        }
    }
    if (cli.json)
        std::cout << nlohmann::json{{"disks", out}}.dump(2) << "\n";
    return kExitOk;
}

int restore(const CliOptions &cli, const RuntimePaths &paths, const std::vector<DiskSignature> &recorded)
{
    auto log = log::get("signatures");
    if (vm_running(paths)) {
        log->error("refusing to write disk identities while the VM runs (Windows has the disks open): "
                   "stop it with `rescuevm vm stop`, then run `rescuevm signatures restore` again");
        return kExitFailure;
    }
    std::vector<std::string> wanted(cli.args.begin() + 1, cli.args.end());
    for (const auto &w : wanted) {
        if (std::none_of(recorded.begin(), recorded.end(),
                         [&](const DiskSignature &d) { return d.name == w || d.path == w; })) {
            log->error("disk {} has no recorded identity: see `rescuevm signatures` for the disks of this session", w);
            return kExitUsage;
        }
    }
    int rc = kExitOk;
    for (const auto &r : recorded) {
        if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), r.name) == wanted.end() &&
            std::find(wanted.begin(), wanted.end(), r.path) == wanted.end())
            continue;
        // The same disk as recorded, and nobody else using it (a VM whose record is lost included).
        auto now = read_disks(HostRoots{});
        if (!now) {
            log->error("{}: cannot read the disks: {}", r.name, now.error().message);
            rc = kExitFailure;
            continue;
        }
        const DiskInfo *found = nullptr;
        for (const auto &d : *now)
            if (d.path == r.path)
                found = &d;
        if (r.identity.major != 0) {
            DiskInfo recorded_disk = r.identity;
            std::string problem = disk_identity_problem(recorded_disk, found, found ? found->disk_id : "");
            if (!problem.empty()) {
                log->error("{}: not restored: {}", r.name, problem);
                rc = kExitFailure;
                continue;
            }
        }
        // A VM whose record is lost still has the disk open: name who does (the write
        // below opens it exclusively and would only say "busy").
        if (std::string who = found ? block_device_holders(*found) : ""; !who.empty()) {
            log->error("{}: not restored: {} is open in {} (a running VM?): stop it first", r.name, r.path, who);
            rc = kExitFailure;
            continue;
        }
        auto report = restore_signature(r);
        if (!report) {
            log->error("{}: {}", r.name, report.error().message);
            rc = kExitFailure;
        } else if (!report->written) {
            std::cout << fmt::format("{}: already as recorded, nothing written\n", r.name);
        } else {
            std::cout << fmt::format("{}: restored: {}\n", r.name, fmt::join(report->actions, "; "));
        }
    }
    return rc;
}

} // namespace

int cmd_signatures(const CliOptions &cli, const Config &config)
{
    RuntimePaths paths{config.paths.runtime_dir};
    if (!cli.args.empty() && cli.args[0] != "restore") {
        std::cerr << "rescuevm: signatures takes no argument, or `restore [DISK...]`\n";
        return kExitUsage;
    }
    auto recorded = load_signatures(paths.signatures());
    if (!recorded) {
        log::get("signatures")->error("{}", recorded.error().message);
        return kExitFailure;
    }
    return cli.args.empty() ? show(cli, *recorded) : restore(cli, paths, *recorded);
}

} // namespace rescuevm
