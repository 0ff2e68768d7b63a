// SPDX-License-Identifier: GPL-2.0-or-later
// The agent's care of the server's own console: protecting the host from it, and the screen viewer and input devices following QEMU.
#include "rescuevm/agent/agent.h"

#include "agent_deadlines.h"
#include "rescuevm/agent/console_guard.h"
#include "rescuevm/configdrive/config_drive_iso.h"
#include "rescuevm/core/qemu_argv.h"
#include "rescuevm/signatures/disk_signatures.h"
#include "rescuevm/sys/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

namespace rescuevm {
namespace {

namespace sv = supervisor;
using namespace agent_deadlines;

} // namespace

void Agent::protect_console()
{
    ConsoleGuardPaths paths{plan_.paths.console_guard()};
    worker_.run<std::vector<std::string>>(
        "protecting the host from its console", kConsoleDeadline, [paths] { return rescuevm::protect_console(paths); },
        [](Result<std::vector<std::string>> said) {
            auto log = log::get("console");
            if (!said)
                return log->error("{}: a key combination on the server's console may still reboot the host",
                                  said.error().message);
            for (const auto &line : *said) {
                if (line.starts_with("warning: "))
                    log->warn("{}", line.substr(9));
                else
                    log->info("{}", line);
            }
        });
}

void Agent::console_qemu_up()
{
    if (viewer_ && !finishing_)
        viewer_->start();
    if (inputs_)
        inputs_->qemu_ready();
}

void Agent::console_qemu_gone()
{
    if (viewer_)
        viewer_->stop();
    if (inputs_)
        inputs_->qemu_gone();
}

} // namespace rescuevm
