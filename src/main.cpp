// SPDX-License-Identifier: GPL-2.0-or-later
// rescuevm command line: global options, subcommand dispatch, exit statuses.
#include "rescuevm/cli/cli.h"
#include "rescuevm/sys/log.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <tuple>
#include <iostream>
#include <map>

namespace {

using namespace rescuevm;

constexpr const char *kUsage = R"(usage: rescuevm [options] COMMAND [--json] [args]

Boots a Windows rescue VM over this server's disks and supervises it.

commands:
  plan [--json]          discover, check and show the VM that would start; changes nothing
  disks [--json]         every block device seen, passed through or not, and why
  run                    the agent: plan, start the VM, supervise it until SIGTERM
  status [--json]        ask the running agent
  vm start|stop|powerdown|reset|resume|screenshot PATH
                         control the VM through the agent (stop: the guest agent's
                         shutdown first, then the ACPI button; powerdown: the button only)
  vm console [--read-only|--force|--last [N]] [--escape ^X]
                         the guest's serial console (EMS/SAC) on this terminal;
                         Ctrl-] detaches. One console has the keyboard: a second one
                         is read-only (--force takes the keyboard); --last prints the
                         last lines and exits
  signatures [--json]    recorded and current identity of each passed disk
  signatures restore [DISK...]
                         write the recorded identity back (VM must be off)
  screen --vnc SOCKET --drm DEV [--fbdev DEV]
                         the console viewer the agent runs: the VM on this server's screen

options:
  --config PATH          config file (default /etc/rescuevm/rescuevm.toml)
  --kernel-cmdline FILE  read rescuevm.* overrides from FILE instead of /proc/cmdline
  --log-level LEVEL      trace, debug, info, warning, error
  --json                 machine-readable output
  --version, --help
exit status: 0 ok, 1 failure, 2 bad usage or config, 3 a check refuses the start
)";

// The console the agent logs to when no systemd is there to do it: log.console,
// else the last console= of the kernel command line ("ttyS0,115200n8").
std::pair<std::string, unsigned> log_console(const Config &config, const std::string &cmdline_path)
{
    std::string console = config.log.console;
    unsigned speed = config.log.console_speed;
    if (console.empty()) {
        std::ifstream in(cmdline_path);
        std::string word;
        while (in >> word) {
            if (word == "--")
                break;
            if (word.rfind("console=", 0) == 0)
                console = word.substr(8);
        }
        if (auto comma = console.find(','); comma != std::string::npos) {
            unsigned parsed = 0;
            for (char c : console.substr(comma + 1)) {
                if (c < '0' || c > '9')
                    break;
                parsed = parsed * 10 + unsigned(c - '0');
            }
            if (parsed > 0)
                speed = parsed;
            console.resize(comma);
        }
    }
    if (console.empty() || console == "tty0" || console == "tty1")
        return {"", speed}; // the screen: stderr already goes there
    return {console[0] == '/' ? console : "/dev/" + console, speed};
}

int usage_error(const std::string &message)
{
    std::cerr << "rescuevm: " << message << "\n(run `rescuevm --help` for usage)\n";
    return kExitUsage;
}

} // namespace

int main(int argc, char **argv)
{
    CliOptions cli;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&](const char *name) -> const char * {
            if (i + 1 >= argc)
                return nullptr;
            (void)name;
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") {
            std::cout << kUsage;
            return kExitOk;
        } else if (arg == "--version") {
            std::cout << "rescuevm " RESCUEVM_VERSION "\n";
            return kExitOk;
        } else if (arg == "--json") {
            cli.json = true;
        } else if (arg == "--config") {
            const char *v = value("--config");
            if (!v)
                return usage_error("--config needs a path");
            cli.sources.config_path = v;
            cli.sources.config_path_explicit = true;
        } else if (arg == "--kernel-cmdline") {
            const char *v = value("--kernel-cmdline");
            if (!v)
                return usage_error("--kernel-cmdline needs a file");
            cli.sources.kernel_cmdline_path = v;
        } else if (arg == "--log-level") {
            const char *v = value("--log-level");
            spdlog::level::level_enum level;
            if (!v || !log::parse_level(v, level))
                return usage_error("--log-level needs one of trace, debug, info, warning, error");
            cli.log_level = v;
        } else if (arg.size() > 1 && arg[0] == '-' && cli.command != "vm" && cli.command != "screen") {
            return usage_error("unknown option " + arg);
        } else if (cli.command.empty()) {
            cli.command = arg;
        } else {
            cli.args.push_back(arg);
        }
    }
    if (cli.command.empty())
        return usage_error("no command given");
    if (cli.command == "screen")
        return cmd_screen(cli);

    static const std::map<std::string, int (*)(const CliOptions &, const Config &)> kCommands = {
        {"plan", cmd_plan},     {"disks", cmd_disks}, {"run", cmd_run},
        {"status", cmd_status}, {"vm", cmd_vm},       {"signatures", cmd_signatures},
    };
    auto command = kCommands.find(cli.command);
    if (command == kCommands.end())
        return usage_error("unknown command \"" + cli.command + "\"");

    auto config = load_config(cli.sources);
    if (!config) {
        std::cerr << "rescuevm: " << config.error().message << "\n";
        return kExitUsage;
    }
    log::Options log_options;
    log_options.level = cli.log_level.empty() ? config->log.level : cli.log_level;
    // Under systemd, stdout/stderr already reach the journal and the console.
    if (cli.command == "run" && !std::getenv("INVOCATION_ID"))
        std::tie(log_options.console, log_options.console_speed) =
            log_console(*config, cli.sources.kernel_cmdline_path);
    log::setup(log_options);
    try {
        return command->second(cli, *config);
    } catch (const std::exception &e) {
        log::get("main")->error("unexpected failure: {}", e.what());
        return kExitFailure;
    }
}
