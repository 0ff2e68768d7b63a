// SPDX-License-Identifier: GPL-2.0-or-later
// Test driver: prepares a golden case's session files with the agent's own code (golden_argv_qemu.sh boots them).
//
// Usage: session_driver prepare NAME RUNDIR IMAGE [KERNEL INITRD]
//   NAME    a case of tests/unit/golden_cases.h (tests/unit/golden/NAME.argv)
//   RUNDIR  stands for /run/rescuevm (paths.runtime_dir)
//   IMAGE   stands for /srv/rescuevm/windows-rescue.qcow2 (vm.image)
//   KERNEL INITRD   stand for the direct-kernel case's files
// Runs plan_vm() on the case with those paths, then prepare_session_files(): the overlay over
// IMAGE, the per-session UEFI vars copy, a fresh config drive -- what `rescuevm run` makes
// before every QEMU start. Prints the argv the agent would run with these paths, one word per
// line. Exit 0 on success, 1 with the error on stderr.
#include "../unit/golden_cases.h"

#include "rescuevm/agent/session_files.h"
#include "rescuevm/core/qemu_argv.h"

#include <iostream>

using namespace rescuevm;

int main(int argc, char **argv)
{
    if (argc < 5 || std::string(argv[1]) != "prepare") {
        std::cerr << "usage: session_driver prepare NAME RUNDIR IMAGE [KERNEL INITRD]\n";
        return 2;
    }
    std::string name = argv[2], rundir = argv[3], image = argv[4];
    for (auto &g : fixtures::golden_cases()) {
        if (g.name != name)
            continue;
        g.config.paths.runtime_dir = rundir;
        g.config.guest.admin_password_file = rundir + "/no-password";
        g.config.vm.image = image;
        g.host.image.path = image;
        if (!g.config.vm.kernel.empty() && argc >= 7) {
            g.config.vm.kernel = argv[5];
            g.config.vm.initrd = argv[6];
        }
        Plan plan = plan_vm(g.host, g.config);
        if (!plan.ready()) {
            for (const auto &c : plan.checks)
                if (!c.ok)
                    std::cerr << "session_driver: " << name << ": check " << c.name << ": " << c.message << "\n";
            return 1;
        }
        if (auto r = prepare_runtime_dir(rundir); !r) {
            std::cerr << "session_driver: " << r.error().message << "\n";
            return 1;
        }
        if (auto r = prepare_session_files(plan); !r) {
            std::cerr << "session_driver: " << name << ": " << r.error().message << "\n";
            return 1;
        }
        auto words = render_qemu_argv(plan, session_for(plan, "3b1c9a52-7f0e-4d2b-9c61-2a5e8f4d7b10"));
        if (!words) {
            std::cerr << "session_driver: " << words.error().message << "\n";
            return 1;
        }
        for (const auto &w : *words)
            std::cout << w << "\n";
        return 0;
    }
    std::cerr << "session_driver: no golden case named " << name << "\n";
    return 2;
}
