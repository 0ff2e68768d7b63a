// SPDX-License-Identifier: GPL-2.0-or-later
// Reads the config file and the kernel command line, and builds the Config from them.
#pragma once

#include "rescuevm/core/config.h"

#include <string>

namespace rescuevm {

struct ConfigSources {
    std::string config_path = "/etc/rescuevm/rescuevm.toml";
    bool config_path_explicit = false; // a missing explicit file is an error
    std::string kernel_cmdline_path = "/proc/cmdline";
};

// Reads the TOML file (if any) then applies rescuevm.<section>.<key>= overrides
// from the kernel command line. Errors name the file, line and key. A file that
// is not a regular file (a FIFO, a device) is refused without blocking.
Result<Config> load_config(const ConfigSources &sources);

} // namespace rescuevm
