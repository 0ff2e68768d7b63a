// SPDX-License-Identifier: GPL-2.0-or-later
// IpAddress (the core's own parser and printer) against the C library's inet_pton/inet_ntop.
#include "rescuevm/core/ip_address.h"

#include <doctest/doctest.h>

#include <arpa/inet.h>

#include <random>
#include <string>
#include <vector>

using rescuevm::IpAddress;

namespace {

std::optional<std::string> libc_roundtrip(const std::string &text)
{
    unsigned char buf[16];
    char out[INET6_ADDRSTRLEN];
    std::string bare = text.substr(0, text.find('%'));
    if (inet_pton(AF_INET, bare.c_str(), buf) == 1)
        return std::string(inet_ntop(AF_INET, buf, out, sizeof out));
    if (inet_pton(AF_INET6, bare.c_str(), buf) == 1)
        return std::string(inet_ntop(AF_INET6, buf, out, sizeof out));
    return std::nullopt;
}

void agrees_with_libc(const std::string &text)
{
    auto ours = IpAddress::parse(text);
    auto theirs = libc_roundtrip(text);
    INFO("text: \"", text, "\"");
    REQUIRE(ours.has_value() == theirs.has_value());
    if (ours)
        CHECK(ours->text() == *theirs);
}

} // namespace

TEST_CASE("IpAddress accepts and prints exactly what inet_pton/inet_ntop do (hand-picked)")
{
    for (const char *t : {"203.0.113.10", "0.0.0.0", "255.255.255.255", "1.2.3", "1.2.3.4.5", "01.2.3.4",
                          "256.1.1.1", "1.2.3.4 ", "", "::", "::1", "1::", "fe80::1%eth0", "2001:db8::",
                          "2001:db8:0:0:1:0:0:1", "2001:0db8:0000:0000:0000:0000:0000:0001", "::ffff:1.2.3.4",
                          "::1.2.3.4", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
                          "1::2::3", ":1::2", "1:::2", "12345::", "g::1", "1:2:3:4:5:6:1.2.3.4", "::ffff:0:0",
                          "0:0:0:0:0:1:0:0", "1:0:0:2:0:0:0:3", "1:0:0:0:2:0:0:3", "a:b:c:d:e:f:0:0"})
        agrees_with_libc(t);
}

TEST_CASE("IpAddress agrees with inet_pton/inet_ntop on random addresses and mutations")
{
    std::mt19937 rng(12345);
    for (int round = 0; round < 20000; ++round) {
        unsigned char bytes[16];
        for (auto &b : bytes) {
            // Mostly zeros and small values, so "::" compression and v4 tails are common.
            unsigned r = rng() % 4;
            b = static_cast<unsigned char>(r == 0 ? rng() : r == 1 ? rng() % 3 : 0);
        }
        char text[INET6_ADDRSTRLEN];
        bool v6 = rng() % 2;
        inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, text, sizeof text);
        std::string s = text;
        agrees_with_libc(s);
        // Mutations: drop, duplicate or replace one character.
        std::string m = s;
        std::size_t at = rng() % m.size();
        switch (rng() % 3) {
        case 0: m.erase(at, 1); break;
        case 1: m.insert(at, 1, m[at]); break;
        default: m[at] = ":.0fgx"[rng() % 6]; break;
        }
        agrees_with_libc(m);
    }
}

TEST_CASE("IpAddress networks, link-local and netmasks")
{
    auto a = *IpAddress::parse("203.0.113.10");
    CHECK(a.network(24).text() == "203.0.113.0");
    CHECK(a.same_network(*IpAddress::parse("203.0.113.254"), 24));
    CHECK_FALSE(a.same_network(*IpAddress::parse("203.0.114.1"), 24));
    CHECK_FALSE(a.same_network(*IpAddress::parse("::1"), 0)); // families differ
    CHECK(IpAddress::parse("fe80::1")->link_local());
    CHECK(IpAddress::parse("169.254.3.4")->link_local());
    CHECK_FALSE(IpAddress::parse("2001:db8::1")->link_local());
    CHECK(IpAddress::netmask_text(false, 24) == "255.255.255.0");
    CHECK(IpAddress::netmask_text(false, 32) == "255.255.255.255");
    CHECK(IpAddress::netmask_text(false, 0) == "0.0.0.0");
    CHECK(IpAddress::netmask_text(true, 64) == "ffff:ffff:ffff:ffff::");
}
