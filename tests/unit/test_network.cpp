// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of the network module's pure rules: resolv.conf, gateways outside the prefix, uplink choice.
#include "rescuevm/host/network_facts.h"
#include "rescuevm/core/uplink_rules.h"
#include "rescuevm/net/uplink_claim.h"
#include "rescuevm/host/dhcp_clients.h"
#include "rescuevm/core/report.h"

#include <doctest/doctest.h>

using namespace rescuevm;

TEST_CASE("parse_resolv_conf keeps nameservers in order, once, and skips the rest")
{
    auto servers = parse_resolv_conf("# generated\n"
                                     "; old comment\n"
                                     "search example.net\n"
                                     "nameserver 213.186.33.99\n"
                                     "nameserver   2001:41d0:3:163::1\n"
                                     "nameserver 213.186.33.99\n"
                                     "nameserver not-an-ip\n"
                                     "#nameserver 9.9.9.9\n"
                                     "options edns0\n"
                                     "nameserver fe80::1%eth0\n"
                                     "nameserver\n");
    CHECK(servers == std::vector<std::string>{"213.186.33.99", "2001:41d0:3:163::1",
                                              "fe80::1%eth0"});
    CHECK(parse_resolv_conf("").empty());
}

TEST_CASE("gateway_outside_prefix: /32 and /128 with a gateway elsewhere")
{
    CHECK(gateway_outside_prefix("203.0.113.10", 32, "203.0.113.1"));
    CHECK(gateway_outside_prefix("2001:db8::10", 128, "fe80::1"));
    CHECK(gateway_outside_prefix("198.51.100.7", 24, "203.0.113.1"));
    CHECK(gateway_outside_prefix("2001:db8:1::10", 64, "2001:db8:2::1"));
}

TEST_CASE("gateway_outside_prefix: gateways inside the prefix, and nonsense")
{
    CHECK_FALSE(gateway_outside_prefix("203.0.113.10", 24, "203.0.113.1"));
    CHECK_FALSE(gateway_outside_prefix("203.0.113.10", 25, "203.0.113.127"));
    CHECK(gateway_outside_prefix("203.0.113.10", 25, "203.0.113.129"));
    CHECK_FALSE(gateway_outside_prefix("2001:db8::10", 64, "2001:db8::1"));
    CHECK_FALSE(gateway_outside_prefix("203.0.113.10", 32, "203.0.113.10"));
    CHECK_FALSE(gateway_outside_prefix("203.0.113.10", 32, "fe80::1"));   // families differ
    CHECK_FALSE(gateway_outside_prefix("203.0.113.10", 33, "203.0.113.1")); // bad prefix
    CHECK_FALSE(gateway_outside_prefix("nonsense", 32, "203.0.113.1"));
}

TEST_CASE("choose_uplink prefers IPv4 with the lowest metric, else IPv6")
{
    CHECK(choose_uplink({}) == "");
    CHECK(choose_uplink({{"ipv6", "eth1", 1024}, {"ipv4", "eth0", 100}}) == "eth0");
    CHECK(choose_uplink({{"ipv4", "eth0", 600}, {"ipv4", "eth2", 100}}) == "eth2");
    CHECK(choose_uplink({{"ipv6", "eth1", 1024}, {"ipv6", "eth3", 256}}) == "eth3");
}

TEST_CASE("uplink_problem says what is wrong and what to set")
{
    NetworkFacts ok;
    ok.uplink = "eth0";
    ok.found = true;
    ok.up = true;
    ok.macvtap_supported = true;
    CHECK(uplink_problem(ok) == "");

    NetworkFacts none;
    none.macvtap_supported = true;
    none.interfaces = {"eth0", "eth1"};
    auto msg = uplink_problem(none);
    CHECK(msg.find("no default route") != std::string::npos);
    CHECK(msg.find("eth0, eth1") != std::string::npos);
    CHECK(msg.find("network.uplink") != std::string::npos);

    NetworkFacts missing = ok;
    missing.found = false;
    missing.uplink = "eth9";
    CHECK(uplink_problem(missing).find("eth9 does not exist") != std::string::npos);

    NetworkFacts down = ok;
    down.up = false;
    CHECK(uplink_problem(down).find("eth0 is down") != std::string::npos);

    NetworkFacts bonded = ok;
    bonded.master = "bond0";
    bonded.master_kind = "bond";
    CHECK(uplink_problem(bonded) ==
          "network: eth0 is a member of bond bond0: set network.uplink = \"bond0\"");

    NetworkFacts bridged = ok;
    bridged.master = "br0";
    bridged.master_kind = "bridge";
    CHECK(uplink_problem(bridged) ==
          "network: eth0 is a port of bridge br0: set network.uplink = \"br0\"");

    NetworkFacts nomacvtap = ok;
    nomacvtap.macvtap_supported = false;
    nomacvtap.macvtap_missing_detail = "no /sys/class/macvtap";
    CHECK(uplink_problem(nomacvtap).find("CONFIG_MACVTAP") != std::string::npos);
}

TEST_CASE("dhcp_client_for recognises clients serving the interface")
{
    using V = std::vector<std::string>;
    CHECK(dhcp_client_for(V{"/sbin/dhclient", "-4", "-v", "-i", "-pf", "/run/dhclient.eth0.pid",
                            "-lf", "/var/lib/dhcp/dhclient.eth0.leases", "eth0"},
                          "eth0") == "dhclient");
    CHECK(dhcp_client_for(V{"/sbin/dhclient", "-pf", "/run/dhclient.eth0.pid", "eth1"}, "eth0") ==
          std::nullopt);
    CHECK(dhcp_client_for(V{"udhcpc", "-i", "eth0", "-f"}, "eth0") == "udhcpc");
    CHECK(dhcp_client_for(V{"udhcpc", "-ieth0"}, "eth0") == "udhcpc");
    CHECK(dhcp_client_for(V{"busybox", "udhcpc", "--interface=eth0"}, "eth0") == "udhcpc");
    CHECK(dhcp_client_for(V{"udhcpc", "-i", "eth1"}, "eth0") == std::nullopt);
    CHECK(dhcp_client_for(V{"dhcpcd: eth0 [ip4] [ip6]"}, "eth0") == "dhcpcd");
    CHECK(dhcp_client_for(V{"dhcpcd: [manager] [ip4] [ip6]"}, "eth0") == "dhcpcd");
    CHECK(dhcp_client_for(V{"dhcpcd: [privileged proxy] eth0"}, "eth0") == std::nullopt);
    CHECK(dhcp_client_for(V{"dhcpcd: [network proxy] 203.0.113.10"}, "eth0") == std::nullopt);
    CHECK(dhcp_client_for(V{"/usr/sbin/dhcpcd", "-q", "-b"}, "eth0") == "dhcpcd");
    CHECK(dhcp_client_for(V{"/usr/sbin/sshd", "-D", "eth0"}, "eth0") == std::nullopt);
    CHECK(dhcp_client_for(V{}, "eth0") == std::nullopt);
}
