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
    Plan plan = plan_vm(gather_host_facts(config), config);
    // The same Session builder `run` uses: only the uuid is fresh each time.
    Session session = session_for(plan, fresh_instance_uuid().value_or("00000000-0000-4000-8000-000000000000"));
    std::vector<std::string> argv = render_qemu_argv(plan, session).value_or(std::vector<std::string>{});
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
