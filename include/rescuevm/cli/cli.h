// SPDX-License-Identifier: GPL-2.0-or-later
// The rescuevm subcommands, as functions main() dispatches to; each returns the exit status.
#pragma once

#include "rescuevm/host/config_file.h"

#include <string>
#include <vector>

namespace rescuevm {

// Exit statuses of the contract (design.md).
enum ExitCode : int {
    kExitOk = 0,
    kExitFailure = 1,   // also: status with no agent answering
    kExitUsage = 2,     // bad usage or config
    kExitRefused = 3,   // a check refuses the start
};

struct CliOptions {
    ConfigSources sources;
    std::string log_level;  // "" = from config
    bool json = false;
    std::string command;
    std::vector<std::string> args;
};

int cmd_plan(const CliOptions &cli, const Config &config);
int cmd_disks(const CliOptions &cli, const Config &config);
int cmd_run(const CliOptions &cli, const Config &config);
int cmd_status(const CliOptions &cli, const Config &config);
int cmd_vm(const CliOptions &cli, const Config &config);
int cmd_console(const CliOptions &cli, const Config &config); // `vm console`
int cmd_signatures(const CliOptions &cli, const Config &config);
// The console viewer: reads no config (the agent gives it everything on its command line).
int cmd_screen(const CliOptions &cli);

} // namespace rescuevm
