// SPDX-License-Identifier: GPL-2.0-or-later
// rescuevm command line: subcommands, exit codes.
#include "rescuevm/log.h"

int main()
{
    rescuevm::log::get("main")->info("rescuevm " RESCUEVM_VERSION);
    return 0;
}
