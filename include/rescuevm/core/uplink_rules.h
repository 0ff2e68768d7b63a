// SPDX-License-Identifier: GPL-2.0-or-later
// Pure rules about the uplink: which interface carries the server, whether it can be claimed, where its gateway is, how its network stack lets go of it.
#pragma once

#include "rescuevm/core/config.h"
#include "rescuevm/core/host_facts.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rescuevm {

// True when `gateway` is not inside address/prefix (a /32 with its gateway
// elsewhere, or a /128 with fe80::1). False also when either does not parse
// or the families differ.
bool gateway_outside_prefix(const std::string &address, unsigned prefix,
                            const std::string &gateway);

// One default route as seen in the main table.
struct DefaultRoute {
    std::string family;  // "ipv4" | "ipv6"
    std::string dev;     // interface name
    std::uint32_t metric = 0;
};

// The interface of the IPv4 default route with the lowest metric, else the IPv6 one;
// "" when there is none.
std::string choose_uplink(const std::vector<DefaultRoute> &routes);

// Whether the guest gets its address by DHCP (network.addressing; "auto": the host
// got it that way: a DHCP client or networkd's DHCP serves the uplink, or its IPv4
// address has a lease's finite lifetime).
bool uplink_uses_dhcp(const NetworkFacts &facts, Addressing addressing);

// Why the uplink found (or not) cannot be handed to the VM, in words with the fix;
// "" when it can. The one place where an uplink is refused: `plan` and the claim
// both call it, so plan refuses exactly what run would.
std::string uplink_problem(const NetworkFacts &facts);

// ---- The network contract: how the host's network stack lets go of the uplink ----------
//
// Supported, each handed over through the stack's own per-interface control and given
// back the same way (never by killing a daemon that serves other interfaces, never by
// replaying a command line):
//   - no daemon (a static or ip= configuration from the netboot): addresses and routes
//     are recorded, removed and put back (this happens under every stack);
//   - systemd-networkd: a runtime .network drop-in that sorts first marks the uplink and
//     the macvtap Unmanaged=yes for the session;
//   - dhclient, one per interface with its own pid file: dhclient -x, then dhclient -nw;
//   - dhcpcd for the uplink alone: dhcpcd -x IFACE, then dhcpcd -b IFACE;
//   - a dhcpcd manager: "-x IFACE" (and the macvtap) over its control socket, then "-n IFACE";
//   - busybox udhcpc/udhcpc6: SIGUSR2 (release the lease, idle), then SIGUSR1.
// Anything else (NetworkManager, connman, wicked, ifplugd, a dhclient serving several
// interfaces, ...) is refused by uplink_problem().

// One step of the hand-over, with everything its executor needs. A claim records
// these (never a command line) and a later agent gives the uplink back from them.
struct HandoverStep {
    enum class Kind {
        networkd,       // drop-in Unmanaged=yes + networkctl reload; back: removed, reload, reconfigure
        dhclient,       // dhclient -x with its pid and lease files; back: dhclient -nw, same files
        dhcpcd,         // dhcpcd serving the uplink alone: dhcpcd -x IFACE; back: dhcpcd -b IFACE
        dhcpcd_manager, // control socket: "-x IFACE", "-x MACVTAP"; back: "-n IFACE"
        udhcpc,         // SIGUSR2: release the lease and idle; back: SIGUSR1
    };
    Kind kind = Kind::networkd;
    std::string program;          // "systemd-networkd", "dhclient", "dhcpcd", "udhcpc", "udhcpc6"
    int pid = 0;                  // the client process (0 for networkd)
    std::uint64_t start_time = 0; // with pid: that process and no other
    std::string family;           // "ipv4" | "ipv6" | "": the client's -4/-6
    std::vector<std::string> flags; // dhclient: its flags to start it again with
    std::string pid_file, lease_file, duid_file, config_file, duid_type; // dhclient
    std::string control_socket;   // dhcpcd manager
    std::string dropin;           // networkd: the drop-in's path
    std::string admin_state;      // networkd: the uplink's state before ("configured", "unmanaged", ...)
};

const char *to_string(HandoverStep::Kind kind);

struct UplinkHandover {
    std::vector<HandoverStep> steps; // in order; empty: no daemon serves the uplink
    std::string description;         // for plan and logs: what happens, and how it is given back
    std::string problem;             // why the stack cannot hand the uplink over ("" when it can)
};

// How the uplink of `facts` is taken from the host's network stack for the session,
// or why it cannot be (`problem`, which uplink_problem() returns). `macvtap` is the
// interface the claim creates on it, kept away from the stack too.
UplinkHandover uplink_handover(const NetworkFacts &facts, const std::string &macvtap = "rvtap0");

// "" when a step (from facts, or read back from an untrusted claim record) only names
// what a hand-over of `uplink` may touch: paths where a DHCP client keeps its files,
// flags rescuevm knows, the drop-in of that uplink; else what is wrong.
std::string handover_step_problem(const HandoverStep &step, const std::string &uplink);

// The systemd-networkd drop-in: /run/systemd/network/0-rescuevm-<uplink>.network
// ("0-" sorts before "00-" and every usual prefix: the first matching file wins).
std::string networkd_dropin_path(const std::string &uplink);
std::string networkd_dropin_text(const std::string &uplink, const std::string &mac,
                                 const std::string &macvtap);

// The commands of the dhclient and dhcpcd steps (argv[0] is the program's name).
std::vector<std::string> handover_stop_command(const HandoverStep &step, const std::string &uplink);
std::vector<std::string> handover_start_command(const HandoverStep &step, const std::string &uplink);

// A dhcpcd control-socket message: `words` as one command ("dhcpcd", "-x", "eth0"),
// then "--version", whose queued reply makes dhcpcd 9.4's privilege-separated control
// proxy take the next client (without one it refuses every later command).
std::string dhcpcd_control_message(const std::vector<std::string> &words);

} // namespace rescuevm
