// SPDX-License-Identifier: GPL-2.0-or-later
// `rescuevm plan` and `rescuevm disks`: discover, check, show; change nothing.
#include "rescuevm/cli/cli.h"
#include "rescuevm/host/gather.h"

#include "rescuevm/configdrive/config_drive_iso.h"
#include "rescuevm/core/signatures.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/core/qemu_argv.h"
#include "rescuevm/core/report.h"

#include <cstdio>
#include <iostream>

namespace rescuevm {

int cmd_plan(const CliOptions &cli, const Config &config)
{
    Plan plan = make_plan(config);
    const HostFacts &facts = plan.host;
    Session session;
    session.uuid = fresh_instance_uuid().value_or("");
    session.paths.dir = config.paths.runtime_dir;
    session.tap_fd = config.network.mode == NetworkMode::macvtap ? kTapFdInQemu : -1;
    session.vhost_net = facts.vhost_net;
    session.config_drive = true;
    std::vector<std::string> argv;
    if (auto rendered = render_qemu_argv(plan, session)) {
        argv = std::move(*rendered);
    } else {
        plan.checks.push_back({"qemu", false, rendered.error().message});
    }
    if (cli.json)
        std::cout << plan_json(plan, argv).dump(2) << "\n";
    else
        std::cout << plan_text(plan, argv);
    return plan.ready() ? kExitOk : kExitRefused;
}

int cmd_disks(const CliOptions &cli, const Config &config)
{
    auto disks = read_disks(HostRoots{});
    if (!disks) {
        log::get("disks")->error("{}", disks.error().message);
        return kExitFailure;
    }
    auto choices = select_disks(*disks, config.disks.match);
    auto warnings = bitlocker_notices(*disks);
    if (cli.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto &c : choices)
            out.push_back(disk_json(c));
        std::cout << nlohmann::json{{"disks", out}, {"warnings", warnings}}.dump(2) << "\n";
    } else {
        std::cout << disks_table(choices);
        for (const auto &w : warnings)
            std::cout << "WARNING: " << w << "\n";
    }
    return kExitOk;
}

} // namespace rescuevm
