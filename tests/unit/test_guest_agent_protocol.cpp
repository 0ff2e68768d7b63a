// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of the guest agent protocol: requests, the bounded reader of untrusted bytes, the parsers of qemu-ga's answers.
#include "rescuevm/core/guest_agent_protocol.h"

#include <doctest/doctest.h>

using namespace rescuevm;
using nlohmann::json;

TEST_CASE("requests are one JSON line; the sync starts with the 0xFF delimiter")
{
    CHECK(qga_request("guest-ping") == "{\"execute\":\"guest-ping\"}\n");
    CHECK(qga_request("guest-shutdown", {{"mode", "powerdown"}}) ==
          "{\"arguments\":{\"mode\":\"powerdown\"},\"execute\":\"guest-shutdown\"}\n");
    std::string sync = qga_sync_request(42);
    REQUIRE(sync.size() > 1);
    CHECK(sync[0] == '\xff');
    CHECK(json::parse(sync.substr(1)) == json{{"execute", "guest-sync-delimited"}, {"arguments", {{"id", 42}}}});
}

TEST_CASE("the reader takes the sync answer only after the delimiter, whatever came before")
{
    QgaReader r;
    r.feed("{\"return\": 7}\n"); // a stale answer of an earlier sync
    CHECK_FALSE(r.saw_delimiter());
    r.feed("garbage {\"unterminated\": \n");
    r.feed("\xff{\"return\": ");
    CHECK(r.saw_delimiter());
    CHECK_FALSE(r.next()); // what came before the delimiter is gone, the answer is not complete
    r.feed("9}\n");
    auto m = r.next();
    REQUIRE(m);
    CHECK(qga_is_sync_reply(*m, 9));
    CHECK_FALSE(qga_is_sync_reply(*m, 7));
    CHECK_FALSE(r.next());
}

TEST_CASE("the reader is bounded: long lines, deep nesting, binary bytes and chatter are dropped")
{
    QgaReader r(1024, 8);
    r.feed(std::string(5000, 'A')); // no newline: a line past the bound is skipped to its end
    CHECK(r.buffered() == 0);
    r.feed("BBB\n{\"return\": {}}\n");
    auto m = r.next();
    REQUIRE(m);
    CHECK(qga_reply(*m)->ok);
    CHECK(r.dropped_lines() == 1);
    r.feed(std::string(100, '[') + std::string(100, ']') + "\n"); // nesting past the limit is not parsed
    CHECK_FALSE(r.next());
    static constexpr char kBinary[] = "\x00\x01\x02 binary \x80\x81\n";
    r.feed(std::string(kBinary, sizeof kBinary - 1));
    r.feed("[1, 2]\n"); // valid JSON, but not an object
    CHECK_FALSE(r.next());
    CHECK(r.dropped_lines() == 4);
    for (int i = 0; i < 100; ++i)
        r.feed("{\"return\": 1}\n"); // unasked answers: only the last 16 are kept
    int kept = 0;
    while (r.next())
        ++kept;
    CHECK(kept == 16);
    // A string holding brackets does not count as nesting.
    r.feed("{\"return\": \"[[[[[[[[[[[[[[[[\\\"[[[[\"}\n");
    CHECK(r.next());
}

TEST_CASE("replies: return, error (made printable), anything else is no reply")
{
    CHECK(qga_reply(json{{"return", {{"a", 1}}}})->ok);
    auto e = qga_reply(json::parse(R"({"error": {"class": "GenericError", "desc": "no \u001b[2J way"}})"));
    REQUIRE(e);
    CHECK_FALSE(e->ok);
    CHECK(e->error == "no ?[2J way (GenericError)");
    CHECK_FALSE(qga_reply(json{{"event", "x"}}));
    CHECK_FALSE(qga_reply(json::array()));
    CHECK_FALSE(qga_is_sync_reply(json{{"return", "9"}}, 9));
    CHECK_FALSE(qga_is_sync_reply(json{{"return", -9}}, 9));
}

TEST_CASE("facts from a Windows guest agent")
{
    GuestFacts f;
    qga_parse_info(json::parse(R"({"version": "105.0.2", "supported_commands": []})"), f);
    qga_parse_osinfo(json::parse(R"({"name": "Microsoft Windows", "pretty-name": "Windows Server 2022 Datacenter",
        "version": "Microsoft Windows Server 2022", "version-id": "2022", "kernel-version": "10.0",
        "kernel-release": "20348", "machine": "x86_64", "id": "mswindows", "variant": "server"})"),
                     f);
    qga_parse_host_name(json::parse(R"({"host-name": "WIN-RESCUE"})"), f);
    qga_parse_interfaces(json::parse(R"([
        {"name": "Ethernet", "hardware-address": "52:54:00:12:34:56", "ip-addresses": [
            {"ip-address-type": "ipv4", "ip-address": "203.0.113.10", "prefix": 32},
            {"ip-address-type": "ipv6", "ip-address": "fe80::1%6", "prefix": 64},
            {"ip-address-type": "ipv6", "ip-address": "2001:db8::0010", "prefix": 64}]},
        {"name": "Loopback Pseudo-Interface 1", "ip-addresses": [
            {"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8}]}])"),
                         f);
    CHECK(f.agent_version == "105.0.2");
    CHECK(f.os_name == "Windows Server 2022 Datacenter");
    CHECK(f.os_version == "Microsoft Windows Server 2022");
    CHECK(f.kernel_release == "10.0.20348");
    CHECK(f.hostname == "WIN-RESCUE");
    REQUIRE(f.interfaces.size() == 2);
    CHECK(f.interfaces[0].mac == "52:54:00:12:34:56");
    CHECK(f.interfaces[0].addresses == std::vector<std::string>{"203.0.113.10/32", "fe80::1/64", "2001:db8::10/64"});
    CHECK(f.os_version_id == "2022");
    CHECK(guest_os_line(f) == "Windows Server 2022 Datacenter (kernel 10.0.20348)");

    // Does Windows hold the server's IP? Compared as addresses, link-local and prefixes aside.
    CHECK(guest_server_addresses(f, {"203.0.113.10/32"}) == std::vector<std::string>{"203.0.113.10"});
    CHECK(guest_server_addresses(f, {"2001:db8:0::10/64", "198.51.100.1/24"}) ==
          std::vector<std::string>{"2001:db8::10"});
    CHECK(guest_server_addresses(f, {"fe80::1/64"}).empty());
    CHECK(guest_server_addresses(f, {"203.0.113.11/32"}).empty());
}

TEST_CASE("facts from an untrusted guest are bounded and printable")
{
    GuestFacts f;
    std::string huge(10'000, 'x');
    qga_parse_host_name(json{{"host-name", "evil\x1b]0;title\x07\xff" + huge}}, f);
    CHECK(f.hostname.size() == kGuestStringMax);
    CHECK(f.hostname.starts_with("evil?]0;title??"));
    json many = json::array();
    for (int i = 0; i < 100; ++i) {
        json addrs = json::array();
        for (int k = 0; k < 100; ++k)
            addrs.push_back({{"ip-address", "10.0.0.1"}, {"prefix", 24}});
        addrs.push_back({{"ip-address", "not an address"}, {"prefix", 24}});
        addrs.push_back({{"ip-address", "10.0.0.2"}, {"prefix", 99}}); // a prefix that cannot be
        many.push_back({{"name", 5}, {"ip-addresses", addrs}});
    }
    many.push_back("not an object");
    qga_parse_interfaces(many, f);
    CHECK(f.interfaces.size() == kGuestInterfacesMax);
    CHECK(f.interfaces[0].name.empty());
    CHECK(f.interfaces[0].addresses.size() == kGuestAddressesMax);
    qga_parse_interfaces(json{{"not", "an array"}}, f);
    CHECK(f.interfaces.empty());
    qga_parse_osinfo(json("a string"), f);
    CHECK(f.os_name.empty());
    CHECK(guest_os_line(f) == "unknown OS");
}

TEST_CASE("guest_text keeps valid UTF-8, replaces the rest")
{
    CHECK(guest_text("Caf\xc3\xa9 \xe2\x82\xac") == "Caf\xc3\xa9 \xe2\x82\xac");
    CHECK(guest_text("bad \xc3 \xed\xa0\x80 \xc0\xaf \xc2\x9b") == "bad ? ??? ?? ??");
    CHECK(guest_text("tab\there") == "tab?here");
    CHECK(guest_text("abcdef", 3) == "abc");
}
