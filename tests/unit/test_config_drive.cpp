// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of the config drive builders: meta_data.json, network_data.json, the user_data script.
#include "rescuevm/configdrive/config_drive_iso.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using namespace rescuevm;
using nlohmann::json;

namespace {

constexpr const char *kUuid = "5b2c43c4-1b7e-4a3e-9a55-1f0d8b1f6c2a";

NetAddress addr(const char *family, const char *address, unsigned prefix, const char *scope = "global")
{
    return NetAddress{family, address, prefix, scope};
}

NetRoute route(const char *family, const char *destination, const char *gateway, bool outside = false)
{
    return NetRoute{family, destination, gateway, outside};
}

// An OVH/Hetzner-style server: a /32 and a /128, gateways outside both.
NetworkFacts static_server()
{
    NetworkFacts n;
    n.found = true;
    n.uplink = "eno1";
    n.mac = "52:54:00:AB:CD:EF";
    n.mtu = 1500;
    n.addresses = {addr("ipv4", "203.0.113.10", 32), addr("ipv6", "2001:db8::10", 128),
                   addr("ipv6", "fe80::5054:ff:feab:cdef", 64, "link")};
    n.routes = {route("ipv4", "default", "203.0.113.1", true), route("ipv4", "203.0.113.1/32", ""),
                route("ipv6", "default", "fe80::1")};
    n.gateways = {"203.0.113.1", "fe80::1"};
    n.dns = {"192.0.2.53", "2001:db8::53"};
    return n;
}

NetworkFacts dhcp_server()
{
    NetworkFacts n;
    n.found = true;
    n.uplink = "enp1s0";
    n.mac = "52:54:00:12:34:56";
    n.mtu = 9000;
    n.dhcp = true;
    n.addresses = {addr("ipv4", "192.0.2.10", 24)};
    n.routes = {route("ipv4", "default", "192.0.2.1")};
    n.gateways = {"192.0.2.1"};
    n.dns = {"192.0.2.1"};
    return n;
}

NetworkFacts lan_server()
{
    NetworkFacts n;
    n.found = true;
    n.uplink = "eth0";
    n.mac = "52:54:00:00:00:01";
    n.addresses = {addr("ipv4", "198.51.100.10", 24)};
    n.routes = {route("ipv4", "default", "198.51.100.1"), route("ipv4", "10.0.0.0/8", "198.51.100.254")};
    n.dns = {"198.51.100.53"};
    return n;
}

ConfigDriveInput input_with(const Secret *password)
{
    ConfigDriveInput in;
    in.instance_uuid = kUuid;
    in.vm_name = "rescue-srv42";
    in.admin_user = "Administrator";
    in.admin_password = password;
    in.network = static_server();
    return in;
}

// Position of needle in haystack; fails the test when absent.
std::size_t position(const std::string &haystack, const std::string &needle)
{
    std::size_t at = haystack.find(needle);
    INFO("looking for: " << needle);
    CHECK(at != std::string::npos);
    return at;
}

} // namespace

TEST_CASE("meta_data.json carries uuid, name and admin_username, never hostname, and no password of its own")
{
    json meta = meta_data_json(input_with(nullptr));
    CHECK(meta["uuid"] == kUuid);
    CHECK(meta["name"] == "rescue-srv42");
    CHECK(meta["meta"]["admin_username"] == "Administrator");
    CHECK_FALSE(meta.contains("hostname"));
    CHECK_FALSE(meta.contains("admin_pass"));
}

TEST_CASE("meta_data text has admin_pass only when a password is set, escaped as JSON")
{
    Secret password("Pa\"ss\\w\xc3\xb6rd/1");
    Secret with = meta_data_text(input_with(&password));
    json parsed = json::parse(with.reveal());
    CHECK(parsed["admin_pass"] == "Pa\"ss\\w\xc3\xb6rd/1");
    CHECK(parsed["uuid"] == kUuid);
    CHECK(parsed["meta"]["admin_username"] == "Administrator");
    CHECK_FALSE(parsed.contains("hostname"));

    Secret without = meta_data_text(input_with(nullptr));
    json parsed_without = json::parse(without.reveal());
    CHECK_FALSE(parsed_without.contains("admin_pass"));
    CHECK(parsed_without["uuid"] == kUuid);

    Secret empty;
    CHECK_FALSE(json::parse(meta_data_text(input_with(&empty)).reveal()).contains("admin_pass"));
}

TEST_CASE("network_data.json for a /32 + /128 server with gateways outside the prefixes")
{
    json nd = network_data_json(static_server());

    REQUIRE(nd["links"].size() == 1);
    CHECK(nd["links"][0] == json{{"id", "eno1"}, {"type", "phy"}, {"ethernet_mac_address", "52:54:00:ab:cd:ef"},
                                 {"mtu", 1500}});

    REQUIRE(nd["networks"].size() == 2); // the link-local address is not handed over
    json v4 = nd["networks"][0];
    CHECK(v4["type"] == "ipv4");
    CHECK(v4["link"] == "eno1");
    CHECK(v4["ip_address"] == "203.0.113.10");
    CHECK(v4["netmask"] == "255.255.255.255");
    CHECK(v4["routes"] == json::array({{{"network", "0.0.0.0"}, {"netmask", "0.0.0.0"}, {"gateway", "203.0.113.1"}}}));

    json v6 = nd["networks"][1];
    CHECK(v6["type"] == "ipv6");
    CHECK(v6["ip_address"] == "2001:db8::10");
    CHECK(v6["netmask"] == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    CHECK(v6["routes"] == json::array({{{"network", "::"}, {"netmask", "::"}, {"gateway", "fe80::1"}}}));
    CHECK(v4["id"] != v6["id"]);

    CHECK(nd["services"] == json::array({{{"type", "dns"}, {"address", "192.0.2.53"}},
                                         {{"type", "dns"}, {"address", "2001:db8::53"}}}));
}

TEST_CASE("network_data.json for a DHCP server: one ipv4_dhcp network, no static address")
{
    json nd = network_data_json(dhcp_server());
    REQUIRE(nd["links"].size() == 1);
    CHECK(nd["links"][0]["ethernet_mac_address"] == "52:54:00:12:34:56");
    CHECK(nd["links"][0]["mtu"] == 9000);
    REQUIRE(nd["networks"].size() == 1);
    CHECK(nd["networks"][0] == json{{"id", "network0"}, {"type", "ipv4_dhcp"}, {"link", "enp1s0"}});
    CHECK(nd["services"].size() == 1);
}

TEST_CASE("network_data.json: a /24 with its gateway inside, and a further static route")
{
    json nd = network_data_json(lan_server());
    REQUIRE(nd["networks"].size() == 1);
    CHECK(nd["networks"][0]["netmask"] == "255.255.255.0");
    CHECK(nd["networks"][0]["routes"] ==
          json::array({{{"network", "0.0.0.0"}, {"netmask", "0.0.0.0"}, {"gateway", "198.51.100.1"}},
                       {{"network", "10.0.0.0"}, {"netmask", "255.0.0.0"}, {"gateway", "198.51.100.254"}}}));
}

TEST_CASE("network_data.json without an uplink has no link and no network")
{
    NetworkFacts none;
    json nd = network_data_json(none);
    CHECK(nd["links"].empty());
    CHECK(nd["networks"].empty());
    CHECK(nd["services"].empty());
}

TEST_CASE("user_data for a /32 server: on-link host route to the gateway before the default route, by MAC")
{
    std::string ps1 = user_data_ps1(static_server());
    CHECK(ps1.rfind("#ps1_sysnative\n", 0) == 0);
    position(ps1, "$mac = '52-54-00-AB-CD-EF'");
    position(ps1, "Where-Object { $_.MacAddress -eq $mac }");
    position(ps1, "Set-NetIPInterface -InterfaceIndex $ifIndex -AddressFamily IPv4 -Dhcp Disabled");
    std::size_t address = position(ps1, "Add-Address '203.0.113.10' 32");
    std::size_t onlink = position(ps1, "Add-Route '203.0.113.1/32' '0.0.0.0'");
    std::size_t default_route = position(ps1, "Add-Route '0.0.0.0/0' '203.0.113.1'");
    CHECK(address < onlink);
    CHECK(onlink < default_route);
    // The route helper is idempotent and matches the adapter by index.
    position(ps1, "if (Get-NetRoute -InterfaceIndex $ifIndex -DestinationPrefix $destination -NextHop $nextHop "
                  "-ErrorAction SilentlyContinue) { return }");
    position(ps1, "New-NetRoute -InterfaceIndex $ifIndex -DestinationPrefix $destination -NextHop $nextHop");

    position(ps1, "Add-Address '2001:db8::10' 128");
    position(ps1, "Add-Route '::/0' 'fe80::1'");
    CHECK(ps1.find("'fe80::1/128'") == std::string::npos); // link-local gateways are on-link already
    position(ps1, "-ServerAddresses @('192.0.2.53', '2001:db8::53')");
    position(ps1, "\nexit 1002\n");
    CHECK(ps1.find("fe80::5054") == std::string::npos);
}

TEST_CASE("user_data: an IPv6 /128 with a global gateway elsewhere gets an on-link /128 route via ::")
{
    NetworkFacts n = static_server();
    n.routes = {route("ipv6", "default", "2001:db8:0:ff::1")};
    std::string ps1 = user_data_ps1(n);
    std::size_t onlink = position(ps1, "Add-Route '2001:db8:0:ff::1/128' '::'");
    std::size_t default_route = position(ps1, "Add-Route '::/0' '2001:db8:0:ff::1'");
    CHECK(onlink < default_route);
}

TEST_CASE("user_data: an IPv6 /128 with a link-local gateway needs no on-link route but is re-applied at every boot")
{
    NetworkFacts n = static_server();
    n.addresses = {addr("ipv6", "2001:db8::10", 128)};
    n.routes = {route("ipv6", "default", "fe80::1")};
    std::string ps1 = user_data_ps1(n);
    position(ps1, "Add-Route '::/0' 'fe80::1'");
    CHECK(ps1.find("'fe80::1/128'") == std::string::npos);
    CHECK(ps1.find("-Dhcp Disabled") == std::string::npos); // no IPv4 here: leave IPv4 DHCP alone
    position(ps1, "\nexit 1002\n");
}

TEST_CASE("user_data for a gateway inside the prefix: no on-link route, exit 0 unless a step failed")
{
    std::string ps1 = user_data_ps1(lan_server());
    position(ps1, "Add-Route '0.0.0.0/0' '198.51.100.1'");
    position(ps1, "Add-Route '10.0.0.0/8' '198.51.100.254'");
    CHECK(ps1.find("'198.51.100.1/32'") == std::string::npos);
    position(ps1, "if ($script:failed) { exit 1002 }\nexit 0\n");
}

TEST_CASE("user_data for a DHCP server sets nothing")
{
    std::string ps1 = user_data_ps1(dhcp_server());
    CHECK(ps1.rfind("#ps1_sysnative\n", 0) == 0);
    CHECK(ps1.find("Add-Address") == std::string::npos);
    CHECK(ps1.find("New-NetRoute") == std::string::npos);
    position(ps1, "exit 0\n");
}

TEST_CASE("values that are not IP text never reach the script")
{
    NetworkFacts n = static_server();
    n.addresses.push_back(addr("ipv4", "1.2.3.4'; Remove-Item C:\\ -Recurse; '", 32));
    n.dns.push_back("$(evil)");
    n.mac = "52:54:00:ab:cd:ef";
    std::string ps1 = user_data_ps1(n);
    CHECK(ps1.find("Remove-Item") == std::string::npos);
    CHECK(ps1.find("evil") == std::string::npos);

    n.mac = "not a mac";
    CHECK(network_data_json(n)["links"].empty());
}

TEST_CASE("fresh_instance_uuid reads a UUID and refuses anything else")
{
    char templ[] = "/tmp/rescuevm-uuid-test.XXXXXX";
    REQUIRE(::mkdtemp(templ) != nullptr);
    std::string dir = templ;
    std::ofstream(dir + "/good") << kUuid << "\n";
    std::ofstream(dir + "/bad") << "not-a-uuid\n";
    auto good = fresh_instance_uuid(dir + "/good");
    REQUIRE(good.has_value());
    CHECK(*good == kUuid);
    CHECK_FALSE(fresh_instance_uuid(dir + "/bad").has_value());
    CHECK_FALSE(fresh_instance_uuid(dir + "/missing").has_value());
    std::filesystem::remove_all(dir);

    auto kernel = fresh_instance_uuid();
    REQUIRE(kernel.has_value());
    CHECK(*kernel != *fresh_instance_uuid()); // a new one every time
}

TEST_CASE("build_config_drive refuses a bad uuid and a missing runtime directory before creating anything")
{
    ConfigDriveInput in = input_with(nullptr);
    in.instance_uuid = "x";
    auto r = build_config_drive(in, "/tmp");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("not a UUID") != std::string::npos);

    in.instance_uuid = kUuid;
    auto missing = build_config_drive(in, "/nonexistent/rescuevm-runtime");
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message.find("/nonexistent/rescuevm-runtime") != std::string::npos);
}

TEST_CASE("build_config_drive removes its staging directory when xorriso cannot be run")
{
    char templ[] = "/tmp/rescuevm-cdrive-test.XXXXXX";
    REQUIRE(::mkdtemp(templ) != nullptr);
    std::string dir = templ;
    ConfigDriveInput in = input_with(nullptr);
    ConfigDriveOptions options;
    options.xorriso = "/nonexistent/xorriso";
    auto r = build_config_drive(in, dir, options);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("xorriso") != std::string::npos);
    CHECK(std::filesystem::is_empty(dir));

    options.xorriso = "/bin/false"; // runs, fails
    auto failed = build_config_drive(in, dir, options);
    REQUIRE_FALSE(failed.has_value());
    CHECK(failed.error().message.find("exited with status 1") != std::string::npos);
    CHECK(std::filesystem::is_empty(dir));
    std::filesystem::remove_all(dir);
}
