// SPDX-License-Identifier: GPL-2.0-or-later
// Logging for the serial console: one event per line, UTC time, level, subsystem.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace rescuevm::log {

struct Options {
    std::string level = "info"; // trace, debug, info, warning, error
    std::string console;        // extra sink: a tty device such as /dev/ttyS0 ("" = none)
    unsigned console_speed = 115200;
    bool journal = false;       // also (or only) to the systemd journal
    // The agent: lines go through a bounded queue written by a thread of its own, so
    // a slow console never blocks the event loop (too many: dropped, and counted).
    bool nonblocking = false;
};

// Sets up the sinks: stderr always (colour only on a terminal), plus the console
// device and the journal when asked. Safe to call again to reconfigure.
void setup(const Options &options);

// The logger of one subsystem ("disks", "plan", "qmp", "supervisor", ...).
// Loggers share the sinks set up by setup(); before setup() they write to stderr.
std::shared_ptr<spdlog::logger> get(const std::string &subsystem);

// Parses a level name; returns false when the name is not a level.
bool parse_level(const std::string &name, spdlog::level::level_enum &out);

} // namespace rescuevm::log
