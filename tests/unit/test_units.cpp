// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests for sizes ("16GiB") and durations ("120s") in the config.
#include "rescuevm/core/config.h"

#include <doctest/doctest.h>

#include <string>

using namespace rescuevm;
using namespace std::chrono_literals;

TEST_CASE("parse_size accepts bytes and binary units")
{
    struct Row {
        const char *text;
        std::uint64_t bytes;
    };
    const Row rows[] = {
        {"17179869184", 17179869184ULL}, {"0", 0},
        {"512B", 512},                   {"4k", 4096},
        {"4K", 4096},                    {"4KiB", 4096},
        {"512M", 512ULL << 20},          {"512MiB", 512ULL << 20},
        {"16G", 16ULL << 30},            {"16GiB", 16ULL << 30},
        {"16gib", 16ULL << 30},          {"16 GiB", 16ULL << 30},
        {"1.5GiB", 3ULL << 29},          {"0.5K", 512},
        {"2T", 2ULL << 40},              {"1TiB", 1ULL << 40},
        {"16777215TiB", 16777215ULL << 40},
    };
    for (const Row &row : rows) {
        CAPTURE(row.text);
        auto r = parse_size(row.text);
        REQUIRE(r.has_value());
        CHECK(*r == row.bytes);
    }
}

TEST_CASE("parse_size refuses what is not a size, with a reason")
{
    struct Row {
        const char *text;
        const char *says;
    };
    const Row rows[] = {
        {"", "empty size"},
        {"-1G", "cannot be negative"},
        {"16GB", "write \"16GiB\""},
        {"1.5gb", "write \"1.5GiB\""},
        {"512MB", "decimal units are not accepted"},
        {"1.5", "not a whole number of bytes"},
        {"0.3K", "not a whole number of bytes"},
        {"abc", "is not a size"},
        {".5G", "is not a size"},
        {"1.G", "is not a size"},
        {"16XiB", "is not a size"},
        {"16 G iB", "is not a size"},
        {"99999999999999999999", "too large"},
        {"20000000T", "too large"},
        {"1.0000000001G", "at most 9 decimals"},
    };
    for (const Row &row : rows) {
        CAPTURE(row.text);
        auto r = parse_size(row.text);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find(row.says) != std::string::npos);
    }
}

TEST_CASE("parse_duration accepts seconds and s/m/h/d")
{
    CHECK(parse_duration("120s").value() == 120s);
    CHECK(parse_duration("5m").value() == 300s);
    CHECK(parse_duration("24h").value() == 86400s);
    CHECK(parse_duration("1d").value() == 86400s);
    CHECK(parse_duration("90").value() == 90s);
    CHECK(parse_duration("0").value() == 0s);
    CHECK(parse_duration("2H").value() == 7200s);
}

TEST_CASE("parse_duration refuses what is not a duration, with a reason")
{
    struct Row {
        const char *text;
        const char *says;
    };
    const Row rows[] = {
        {"", "empty duration"},
        {"-5s", "cannot be negative"},
        {"1.5h", "use whole numbers"},
        {"5x", "is not a duration"},
        {"5ms", "is not a duration"},
        {"2 weeks", "is not a duration"},
        {"s", "is not a duration"},
        {"999999999999999999999d", "too large"},
        {"40000d", "too long"},
    };
    for (const Row &row : rows) {
        CAPTURE(row.text);
        auto r = parse_duration(row.text);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find(row.says) != std::string::npos);
    }
}

TEST_CASE("format_gib renders one decimal")
{
    CHECK(format_gib(17ULL << 30) == "17.0 GiB");
    CHECK(format_gib((33ULL << 30) / 2) == "16.5 GiB");
    CHECK(format_gib(0) == "0.0 GiB");
    // What the memory check prints for a host just under the limit.
    CHECK(format_gib((16ULL << 30) - (100ULL << 20)) == "15.9 GiB");
}
