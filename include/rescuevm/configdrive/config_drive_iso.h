// SPDX-License-Identifier: GPL-2.0-or-later
// Builds the config-2 ISO in runtime_dir (xorriso in a child process whose argv holds no secret).
#pragma once

#include "rescuevm/core/config_drive.h"
#include "rescuevm/core/error.h"

#include <string>

namespace rescuevm {

struct ConfigDriveOptions {
    std::string xorriso = "xorriso"; // a path, or a name looked up in PATH
};

// A new instance uuid from the kernel (one per VM start).
Result<std::string> fresh_instance_uuid(const std::string &source = "/proc/sys/kernel/random/uuid");

// Stages the three files in a private 0700 directory under runtime_dir (files
// 0600), runs xorriso (ISO 9660 + Joliet + Rock Ridge, label "config-2") as a
// separate process whose argv holds no secret, moves the 0600 image to
// <runtime_dir>/config-2.iso, removes the staging directory (also on failure)
// and returns the image's path. Blocks until xorriso is done (well under a second).
Result<std::string> build_config_drive(const ConfigDriveInput &input, const std::string &runtime_dir,
                                       const ConfigDriveOptions &options = {});

} // namespace rescuevm
