// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of the network module's pure rules: resolv.conf, gateways outside the prefix, uplink choice, the network contract.
#include "rescuevm/host/network_facts.h"
#include "rescuevm/core/uplink_rules.h"
#include "rescuevm/net/uplink_claim.h"
#include "rescuevm/host/dhcp_clients.h"
#include "rescuevm/core/report.h"
#include "../../src/net/claim_record.h"

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

TEST_CASE("dhcp_client_for recognises clients serving the interface and breaks out their options")
{
    using V = std::vector<std::string>;
    auto name = [](const std::optional<DhcpClientFacts> &c) { return c ? c->name : std::string("none"); };
    // ifupdown's dhclient.
    auto dh = dhcp_client_for(V{"/sbin/dhclient", "-4", "-v", "-i", "-pf", "/run/dhclient.eth0.pid", "-lf",
                                "/var/lib/dhcp/dhclient.eth0.leases", "-I", "-df",
                                "/var/lib/dhcp/dhclient6.eth0.leases", "eth0"},
                              "eth0");
    REQUIRE(dh);
    CHECK(dh->name == "dhclient");
    CHECK(dh->family == "ipv4");
    CHECK(dh->interfaces == V{"eth0"});
    CHECK(dh->flags == V{"-v", "-i", "-I"});
    CHECK(dh->pid_file == "/run/dhclient.eth0.pid");
    CHECK(dh->lease_file == "/var/lib/dhcp/dhclient.eth0.leases");
    CHECK(dh->duid_file == "/var/lib/dhcp/dhclient6.eth0.leases");
    CHECK(dh->other_options.empty());
    // Values are not interfaces; defaults fill what is not given; unknown options are kept by name.
    CHECK(name(dhcp_client_for(V{"/sbin/dhclient", "-pf", "/run/dhclient.eth0.pid", "eth1"}, "eth0")) == "none");
    auto bare = dhcp_client_for(V{"dhclient", "-sf", "/tmp/x", "-6", "eth0"}, "eth0");
    REQUIRE(bare);
    CHECK(bare->other_options == V{"-sf"});
    CHECK(bare->pid_file == "/run/dhclient6.pid");
    CHECK(bare->lease_file == "/var/lib/dhcp/dhclient6.leases");
    auto every = dhcp_client_for(V{"dhclient", "-v"}, "eth0");
    REQUIRE(every);
    CHECK(every->interfaces.empty()); // serves every interface
    CHECK(name(dhcp_client_for(V{"udhcpc", "-i", "eth0", "-f"}, "eth0")) == "udhcpc");
    CHECK(name(dhcp_client_for(V{"udhcpc", "-ieth0"}, "eth0")) == "udhcpc");
    CHECK(name(dhcp_client_for(V{"busybox", "udhcpc", "--interface=eth0"}, "eth0")) == "udhcpc");
    CHECK(name(dhcp_client_for(V{"busybox", "udhcpc6", "-i", "eth0"}, "eth0")) == "udhcpc6");
    CHECK(name(dhcp_client_for(V{"udhcpc", "-f"}, "eth0")) == "udhcpc"); // busybox's default interface
    CHECK(name(dhcp_client_for(V{"udhcpc", "-i", "eth1"}, "eth0")) == "none");
    auto one = dhcp_client_for(V{"dhcpcd: eth0 [ip4] [ip6]"}, "eth0");
    REQUIRE(one);
    CHECK((one->name == "dhcpcd" && !one->manager && one->interfaces == V{"eth0"}));
    auto manager = dhcp_client_for(V{"dhcpcd: [manager] [ip4] [ip6]"}, "eth0");
    REQUIRE(manager);
    CHECK((manager->manager && manager->interfaces.empty()));
    CHECK(name(dhcp_client_for(V{"dhcpcd: eth1 [ip4]"}, "eth0")) == "none");
    CHECK(name(dhcp_client_for(V{"dhcpcd: [privileged proxy] eth0"}, "eth0")) == "none");
    CHECK(name(dhcp_client_for(V{"dhcpcd: [network proxy] 203.0.113.10"}, "eth0")) == "none");
    CHECK(dhcp_client_for(V{"/usr/sbin/dhcpcd", "-q", "-b"}, "eth0")->manager);
    CHECK(dhcp_client_for(V{"/usr/sbin/dhcpcd", "-f", "/etc/x.conf", "eth0", "eth1"}, "eth0")->manager);
    CHECK(name(dhcp_client_for(V{"/usr/sbin/dhcpcd", "-f", "eth0", "eth1"}, "eth0")) == "none"); // -f's value
    CHECK(name(dhcp_client_for(V{"/usr/sbin/sshd", "-D", "eth0"}, "eth0")) == "none");
    CHECK(name(dhcp_client_for(V{}, "eth0")) == "none");
}

namespace {

NetworkFacts uplink_eth0()
{
    NetworkFacts n;
    n.found = true;
    n.uplink = "eth0";
    n.mac = "0c:c4:7a:12:34:56";
    n.up = true;
    n.macvtap_supported = true;
    return n;
}

DhcpClientFacts ifupdown_dhclient()
{
    DhcpClientFacts c;
    c.name = "dhclient";
    c.pid = 812;
    c.start_time = 4242;
    c.interfaces = {"eth0"};
    c.family = "ipv4";
    c.flags = {"-v", "-i", "-I"};
    c.pid_file = "/run/dhclient.eth0.pid";
    c.pid_file_pid = 812;
    c.lease_file = "/var/lib/dhcp/dhclient.eth0.leases";
    c.duid_file = "/var/lib/dhcp/dhclient6.eth0.leases";
    return c;
}

} // namespace

TEST_CASE("the network contract: a static configuration and systemd-networkd")
{
    NetworkFacts n = uplink_eth0();
    UplinkHandover h = uplink_handover(n);
    CHECK(h.problem == "");
    CHECK(h.steps.empty());
    CHECK(h.description.find("no daemon serves eth0 (a static or ip= configuration)") != std::string::npos);

    n.networkd = {true, "configured", "/etc/systemd/network/eth0.network", false};
    h = uplink_handover(n, "rvtap0");
    REQUIRE(h.steps.size() == 1);
    CHECK(h.steps[0].kind == HandoverStep::Kind::networkd);
    CHECK(h.steps[0].dropin == "/run/systemd/network/0-rescuevm-eth0.network");
    CHECK(h.steps[0].admin_state == "configured");
    CHECK(handover_step_problem(h.steps[0], "eth0") == "");
    CHECK(networkd_dropin_text("eth0", "0c:c4:7a:12:34:56", "rvtap0").find("[Match]\nName=eth0 rvtap0\n\n[Link]\nUnmanaged=yes\n") !=
          std::string::npos);
    // An unmanaged uplink still gets the drop-in (for the macvtap), and counts as static.
    n.networkd.admin_state = "unmanaged";
    h = uplink_handover(n);
    CHECK(h.steps.size() == 1);
    CHECK(h.description.find("no daemon serves eth0") != std::string::npos);
    // A name networkd would read as a glob cannot be matched exactly.
    n.uplink = "eth*";
    CHECK(uplink_handover(n).problem.find("cannot be matched exactly") != std::string::npos);
    // A drop-in path read back from a record must be that uplink's.
    HandoverStep planted = h.steps[0];
    planted.dropin = "/etc/systemd/network/0-rescuevm-eth0.network";
    CHECK(handover_step_problem(planted, "eth0") ==
          "drop-in \"/etc/systemd/network/0-rescuevm-eth0.network\" is not /run/systemd/network/0-rescuevm-eth0.network");
}

TEST_CASE("the network contract: dhclient per interface, through -x and -nw with its own files")
{
    NetworkFacts n = uplink_eth0();
    n.dhcp_clients = {ifupdown_dhclient()};
    UplinkHandover h = uplink_handover(n);
    REQUIRE(h.problem == "");
    REQUIRE(h.steps.size() == 1);
    const HandoverStep &s = h.steps[0];
    CHECK(s.kind == HandoverStep::Kind::dhclient);
    CHECK(handover_stop_command(s, "eth0") ==
          std::vector<std::string>{"dhclient", "-4", "-x", "-pf", "/run/dhclient.eth0.pid", "-lf",
                                   "/var/lib/dhcp/dhclient.eth0.leases", "eth0"});
    CHECK(handover_start_command(s, "eth0") ==
          std::vector<std::string>{"dhclient", "-4", "-v", "-i", "-I", "-nw", "-pf", "/run/dhclient.eth0.pid", "-lf",
                                   "/var/lib/dhcp/dhclient.eth0.leases", "-df",
                                   "/var/lib/dhcp/dhclient6.eth0.leases", "eth0"});

    NetworkFacts all = n;
    all.dhcp_clients[0].interfaces = {"eth0", "eth1"};
    CHECK(uplink_handover(all).problem.find("serves eth0, eth1 in one process") != std::string::npos);
    all.dhcp_clients[0].interfaces = {};
    CHECK(uplink_handover(all).problem.find("serves every interface in one process") != std::string::npos);
    NetworkFacts shared = n;
    shared.dhcp_clients[0].pid_file_pid = 900;
    CHECK(uplink_handover(shared).problem.find("does not own its pid file /run/dhclient.eth0.pid (it holds pid 900)") !=
          std::string::npos);
    NetworkFacts script = n;
    script.dhcp_clients[0].other_options = {"-sf"};
    CHECK(uplink_handover(script).problem.find("runs with -sf, which rescuevm cannot start it again with") !=
          std::string::npos);
    NetworkFacts elsewhere = n;
    elsewhere.dhcp_clients[0].pid_file = elsewhere.dhcp_clients[0].lease_file = "/home/user/../x";
    CHECK(uplink_handover(elsewhere).problem.find("cannot be handed over: pid file") != std::string::npos);
    // Read back from a record: flags and paths are checked again.
    HandoverStep planted = s;
    planted.flags.push_back("-sf");
    CHECK(handover_step_problem(planted, "eth0") != "");
    planted = s;
    planted.config_file = "/tmp/evil.conf";
    CHECK(handover_step_problem(planted, "eth0").starts_with("config file \"/tmp/evil.conf\""));
}

TEST_CASE("the network contract: dhcpcd, its manager, udhcpc, and the stacks that are refused")
{
    NetworkFacts n = uplink_eth0();
    DhcpClientFacts dhcpcd{.name = "dhcpcd", .pid = 70, .interfaces = {"eth0"}, .family = "ipv4",
                           .pid_file = "/run/dhcpcd/eth0-4.pid", .pid_file_pid = 70,
                           .control_socket = "/run/dhcpcd/eth0-4.sock"};
    n.dhcp_clients = {dhcpcd};
    UplinkHandover h = uplink_handover(n);
    REQUIRE(h.steps.size() == 1);
    CHECK(h.steps[0].kind == HandoverStep::Kind::dhcpcd);
    CHECK(handover_stop_command(h.steps[0], "eth0") == std::vector<std::string>{"dhcpcd", "-4", "-x", "eth0"});
    CHECK(handover_start_command(h.steps[0], "eth0") == std::vector<std::string>{"dhcpcd", "-4", "-b", "eth0"});

    DhcpClientFacts manager{.name = "dhcpcd", .pid = 71, .manager = true, .pid_file = "/run/dhcpcd/pid",
                            .pid_file_pid = 71, .control_socket = "/run/dhcpcd/sock"};
    n.dhcp_clients = {manager};
    h = uplink_handover(n);
    REQUIRE(h.steps.size() == 1);
    CHECK(h.steps[0].kind == HandoverStep::Kind::dhcpcd_manager);
    CHECK(h.description.find("its other interfaces are not touched") != std::string::npos);
    n.dhcp_clients[0].control_socket = "";
    CHECK(uplink_handover(n).problem.find("has no control socket") != std::string::npos);
    using namespace std::string_literals;
    CHECK(dhcpcd_control_message({"dhcpcd", "-x", "eth0"}) == "dhcpcd\0-x\0eth0\n\0--version\0"s);

    n.dhcp_clients = {DhcpClientFacts{.name = "udhcpc", .pid = 72, .interfaces = {"eth0"}}};
    h = uplink_handover(n);
    REQUIRE(h.steps.size() == 1);
    CHECK(h.steps[0].kind == HandoverStep::Kind::udhcpc);
    CHECK(h.description.find("SIGUSR2") != std::string::npos);

    n.dhcp_clients.clear();
    n.other_managers = {"NetworkManager pid 5"};
    CHECK(uplink_problem(n).starts_with("network: NetworkManager pid 5 runs here, and rescuevm cannot take uplink eth0"));
    n.other_managers.clear();
    n.networkd = {true, "configuring", "", false};
    n.dhcp_clients = {ifupdown_dhclient()};
    CHECK(uplink_problem(n).find("served by both systemd-networkd (configuring) and dhclient pid 812") !=
          std::string::npos);
}

TEST_CASE("a claim record names only tap nodes a claim could have made")
{
    ClaimRecord c;
    c.uplink = "eth0";
    c.macvtap = "rvtap0";
    c.ifindex = 2;
    c.macvtap_ifindex = 7;
    const std::string record = "/run/rescuevm/network-claim.json";
    for (const char *ok : {"/dev/tap7", "/run/rescuevm/dev/tap7", "/dev/rescuevm-tap7-246-3"}) {
        c.tap_node = ok;
        CHECK_MESSAGE(claim_record_problem(c, record) == "", ok);
    }
    for (const char *bad : {"/dev/tap8", "/etc/passwd", "/dev/rescuevm-tap7-246-", "/dev/rescuevm-tap7--3",
                            "/dev/rescuevm-tap7-246-3/../../etc/shadow", "/dev/rescuevm-tap70-1-2",
                            "/dev/rescuevm-tap7-246", "/tmp/rescuevm-tap7-246-3"}) {
        c.tap_node = bad;
        CHECK_MESSAGE(claim_record_problem(c, record).starts_with("tap node"), bad);
    }
}
