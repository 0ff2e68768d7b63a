// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of ConsoleTail and printable_console_line(): the guest console's last lines, bounded and without terminal escapes.
#include "rescuevm/core/console_tail.h"

#include <doctest/doctest.h>

using namespace rescuevm;

TEST_CASE("the tail keeps the last lines and the unfinished one, bounded in count and length")
{
    ConsoleTail t(3, 10);
    t.feed("one\ntwo\nthr");
    t.feed("ee\nfour\nfive\nsix");
    // Three whole lines are kept, and the one still being written.
    CHECK(t.last(10) == std::vector<std::string>{"three", "four", "five", "six"});
    CHECK(t.last(2) == std::vector<std::string>{"five", "six"});
    t.feed("\n");
    CHECK(t.last(10) == std::vector<std::string>{"four", "five", "six"});
    t.feed(std::string(1'000'000, 'x') + "\nend\n"); // a flood without newlines is cut, not kept whole
    auto lines = t.last(3);
    REQUIRE(lines.size() == 3);
    CHECK(lines[1] == std::string(10, 'x'));
    CHECK(lines[2] == "end");
    CHECK(t.bytes_seen() == 11 + 16 + 1 + 1'000'005);
    CHECK(t.last(0).empty());
}

TEST_CASE("a console line is shown without escapes, controls or invalid UTF-8")
{
    struct Row {
        const char *raw, *shown;
    };
    const Row rows[] = {
        {"plain text", "plain text"},
        {"line\r", "line"},                                   // CRLF endings
        {"old text\rnew", "new"},                             // a redrawn line shows as it ended
        {"\x1b[2J\x1b[H\x1b[31;1mred\x1b[0m", "red"},         // CSI
        {"\x1b]0;title\x07" "after", "after"},                // OSC ended by BEL
        {"\x1b]8;;http://x/\x1b\\link\x1b]8;;\x1b\\", "link"}, // OSC ended by ST
        {"\x1b" "c\x1b(Bok", "ok"},                           // RIS, charset designation
        {"\x9b" "31m c1 \x9d", " c1 "},                       // 8-bit CSI and a raw C1 byte
        {"\xc2\x9b" "31mutf8 csi", "utf8 csi"},                // CSI encoded in UTF-8
        {"nul=", "nul= bel= bs=? del=?"}, // the raw line holds a NUL: made below
        {"tab\there", "tab here"},
        {"\xff\xfe caf\xc3\xa9 \xe2\x82\xac \xe2\x82", "?? caf\xc3\xa9 \xe2\x82\xac ?"},
        {"esc at end\x1b", "esc at end"},
    };
    static constexpr char kControls[] = "nul=\x00 bel=\x07 bs=\x08 del=\x7f";
    for (const Row &row : rows) {
        std::string raw(row.raw);
        if (raw == "nul=")
            raw = std::string(kControls, sizeof kControls - 1);
        CAPTURE(raw);
        CHECK(printable_console_line(raw) == row.shown);
    }
}
