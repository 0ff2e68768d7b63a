// SPDX-License-Identifier: GPL-2.0-or-later
// Subcommands whose implementation has not landed yet: they say so and fail.
#include "rescuevm/cli.h"

#include "rescuevm/log.h"

namespace rescuevm {

namespace {
int not_yet(const char *what)
{
    log::get("main")->error("`rescuevm {}` is not implemented in this build", what);
    return kExitFailure;
}
} // namespace

int cmd_signatures(const CliOptions &, const Config &) { return not_yet("signatures"); }

} // namespace rescuevm
