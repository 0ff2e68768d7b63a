// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of MemTotal parsing from /proc/meminfo text and files.
#include "rescuevm/host/disks.h"

#include <doctest/doctest.h>

using namespace rescuevm;

TEST_CASE("parse_meminfo_total converts kB to bytes")
{
    auto total = parse_meminfo_total("MemTotal:       32827528 kB\nMemFree:  1 kB\n");
    REQUIRE(total.has_value());
    CHECK(*total == 32827528ULL * 1024);
}

TEST_CASE("parse_meminfo_total finds MemTotal when it is not the first line")
{
    auto total = parse_meminfo_total("MemFree: 5 kB\nMemTotal: 17 kB\n");
    REQUIRE(total.has_value());
    CHECK(*total == 17 * 1024);
}

TEST_CASE("parse_meminfo_total errors")
{
    auto missing = parse_meminfo_total("MemFree: 5 kB\n");
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message == "no MemTotal line");

    for (const char *bad : {"MemTotal: abc kB\n", "MemTotal: 12\n", "MemTotal: 12 MB\n", "MemTotal: -5 kB\n",
                            "MemTotal: 12x kB\n", "MemTotal:\n"}) {
        auto r = parse_meminfo_total(bad);
        CHECK_MESSAGE(!r.has_value(), bad);
        if (!r)
            CHECK(r.error().message.find("is not a number of kB") != std::string::npos);
    }
    auto huge = parse_meminfo_total("MemTotal: 18446744073709551615 kB\n");
    REQUIRE_FALSE(huge.has_value());
    CHECK(huge.error().message.find("too large") != std::string::npos);
}

TEST_CASE("read_memtotal reads <procfs>/meminfo")
{
    HostRoots r;
    r.procfs = FIXTURES_DIR "/host/proc";
    auto total = read_memtotal(r);
    REQUIRE(total.has_value());
    CHECK(*total == 32827528ULL * 1024);
}

TEST_CASE("read_memtotal errors name the file")
{
    HostRoots r;
    r.procfs = FIXTURES_DIR "/host-bad-meminfo/proc";
    auto bad = read_memtotal(r);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message == FIXTURES_DIR "/host-bad-meminfo/proc/meminfo: no MemTotal line");

    r.procfs = FIXTURES_DIR "/no-such-proc";
    auto missing = read_memtotal(r);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message.find(FIXTURES_DIR "/no-such-proc/meminfo: cannot open: No such file") == 0);
}
