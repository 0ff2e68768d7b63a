// SPDX-License-Identifier: GPL-2.0-or-later
// Logging for the serial console: one event per line, UTC time, level, subsystem.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <vector>

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

// The terminals (st_rdev) log lines reach: log.console, stderr when it is a terminal, and the
// terminals behind /dev/console when stderr is a journal stream (the unit's
// StandardOutput=journal+console). `rescuevm vm console` on one of them holds the lines.
std::vector<unsigned long> console_terminals();
// While held (counted: each hold_console() needs its release_console()), lines for those
// terminals wait in a bounded queue (past it they are counted, not kept) and are written after
// the last release, behind one line saying so; so they never land between the guest's bytes on
// an attached console. When stderr is a journal stream the journal gets them at once instead.
void hold_console();
void release_console();

} // namespace rescuevm::log
