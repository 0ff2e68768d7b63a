// SPDX-License-Identifier: GPL-2.0-or-later
// Reads the config file and the kernel command line, and builds the Config from them.
#include "rescuevm/host/config_file.h"

#include "rescuevm/sys/files.h"

#include <fmt/format.h>

namespace rescuevm {

Result<Config> load_config(const ConfigSources &sources)
{
    ConfigTexts texts;
    texts.toml_origin = sources.config_path;
    texts.toml = RESCUEVM_TRY(read_small_file(sources.config_path, "config " + sources.config_path));
    if (!texts.toml && sources.config_path_explicit)
        return fail(fmt::format("config {}: no such file; give an existing file to --config, "
                                "or leave it out for the built-in defaults",
                                sources.config_path));
    // No /proc/cmdline (a container, a test root) simply means no overrides.
    texts.cmdline_path = sources.kernel_cmdline_path;
    texts.cmdline = RESCUEVM_TRY(read_small_file(sources.kernel_cmdline_path,
                                                 "kernel command line " + sources.kernel_cmdline_path));
    return build_config(texts);
}

} // namespace rescuevm
