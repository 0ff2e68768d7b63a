// SPDX-License-Identifier: GPL-2.0-or-later
// The QEMU command line's building blocks, one function per concern (qemu_argv.cpp, qemu_disks.cpp, qemu_devices.cpp). Pure.
#pragma once

#include "rescuevm/core/qemu_argv.h"

#include <fmt/format.h>

#include <initializer_list>

namespace rescuevm::qemu_detail {

using Argv = std::vector<std::string>;

struct Builder {
    Argv argv;
    void add(std::initializer_list<std::string> words) { argv.insert(argv.end(), words); }
    void add(const Argv &words) { argv.insert(argv.end(), words.begin(), words.end()); }
};

// qemu_disks.cpp
Result<void> add_boot_disk(Builder &b, const Plan &plan);
Result<void> add_server_disks(Builder &b, const Plan &plan, const Session &session);
Result<void> add_config_drive(Builder &b, const Plan &plan, const Session &session);

// qemu_devices.cpp
Result<void> add_network(Builder &b, const Plan &plan, const Session &session);
Result<void> add_console(Builder &b, const Plan &plan);
Result<void> add_monitoring(Builder &b, const Plan &plan);

} // namespace rescuevm::qemu_detail
