// SPDX-License-Identifier: GPL-2.0-or-later
// ConsoleTail: the last lines a guest wrote to its serial console, bounded, and shown without the terminal escapes they carried. Pure.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace rescuevm {

class ConsoleTail {
public:
    // Keeps max_lines whole lines and the one being written.
    explicit ConsoleTail(std::size_t max_lines = 200, std::size_t max_line = 1024)
        : max_lines_(max_lines), max_line_(max_line)
    {
    }

    // Raw bytes as the guest wrote them: lines end at "\n"; a line longer than max_line
    // keeps its first max_line bytes.
    void feed(std::string_view bytes);
    // The last `count` lines (the unfinished one included when it has text), each made
    // printable with printable_console_line().
    std::vector<std::string> last(std::size_t count) const;
    std::size_t bytes_seen() const { return seen_; }

private:
    void push_line();

    std::size_t max_lines_, max_line_;
    std::deque<std::string> lines_;
    std::string current_;
    bool cut_ = false;
    std::size_t seen_ = 0;
};

// One console line for a log, a status answer or a terminal that is not the console's:
// ANSI/VT escape sequences (CSI, OSC, DCS, two-byte ESC x) and C1 controls are removed, a
// carriage return keeps only what was drawn after it (a redrawn line shows as it ended),
// a tab stays, every other control byte and invalid UTF-8 becomes '?'.
std::string printable_console_line(std::string_view raw);

} // namespace rescuevm
