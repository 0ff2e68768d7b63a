// SPDX-License-Identifier: GPL-2.0-or-later
// Network: read the server's uplink over netlink, and claim it for the VM through a passthru macvtap.
#pragma once

#include "rescuevm/config.h"
#include "rescuevm/error.h"
#include "rescuevm/host_facts.h"
#include "rescuevm/unique_fd.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rescuevm {

// Where read_network_facts() looks. Roots are parameters so tests can use fixture trees.
struct NetworkOptions {
    std::string uplink = "auto";                   // interface name, or "auto"
    Addressing addressing = Addressing::auto_;     // dhcp/static force NetworkFacts::dhcp
    std::string resolv_conf = "/etc/resolv.conf";
    std::string proc_root = "/proc";               // DHCP clients (/proc/<pid>/cmdline)
    std::string sys_root = "/sys";                 // macvtap support (/sys/class/macvtap)
    std::string modules_root = "/lib/modules";     // macvtap as a loadable module
    std::string networkd_leases = "/run/systemd/netif/leases";
};

NetworkOptions network_options(const Config &config);

// Reads links, addresses and routes with libnl-route-3 (one netlink dump each),
// DNS from resolv.conf and DHCP clients from procfs. Changes nothing.
// An error only when netlink itself cannot be used; everything wrong with the
// uplink is reported in NetworkFacts::problem (empty when the uplink can be claimed).
Result<NetworkFacts> read_network_facts(const NetworkOptions &options);

// The `network` object of `plan --json` (uplink, mac, mtu, up, carrier, kind, master,
// addresses, link_local, gateways, routes, dns, dhcp, dhcp_client, macvtap, problem).
// `mode` comes from the config and is added by the caller.
nlohmann::json network_facts_json(const NetworkFacts &facts);

// ---- Pure parts (no I/O), unit-tested ----------------------------------------

// The nameserver addresses of a resolv.conf, in order, without duplicates.
std::vector<std::string> parse_resolv_conf(std::string_view text);

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

// What the checks know about the chosen (or named) uplink.
struct UplinkCheck {
    std::string requested = "auto";   // network.uplink
    std::string name;                 // chosen interface ("" when none)
    bool exists = false;
    bool up = false;
    std::string kind;                 // link kind of the uplink
    std::string master;               // its master, "" when none
    std::string master_kind;          // "bond", "bridge", "team", ...
    std::vector<std::string> interfaces; // other candidates, for the message
    bool macvtap_supported = true;
    std::string macvtap_missing_detail; // e.g. "no /sys/class/macvtap, no macvtap.ko for 6.1.0"
};

// The refusal in words with the fix, or "" when the uplink can be claimed.
std::string uplink_problem(const UplinkCheck &check);

// When argv is a DHCP client serving `iface` (dhclient, dhcpcd, udhcpc, also as
// "busybox udhcpc"), its name; otherwise nullopt. A dhcpcd naming no interface
// manages all of them, this one included.
std::optional<std::string> dhcp_client_for(const std::vector<std::string> &argv,
                                           std::string_view iface);

// ---- Claiming the uplink -------------------------------------------------------

struct ClaimOptions {
    std::string macvtap_name = "rvtap0";
    std::string runtime_dir = "/run/rescuevm"; // holds the record (network-claim.json, 0600)
    std::string proc_root = "/proc";           // DHCP clients, /proc/sys for sysctls
    std::string sys_root = "/sys";             // /sys/class/net/<macvtap>/macvtap/tapN/dev
    std::string dev_dir = "/dev";              // where devtmpfs puts tapN
    std::string node_dir;                      // mknod fallback when dev_dir is not writable;
                                               // "" means <runtime_dir>/dev
};

// The record file of a claim in runtime_dir.
std::string claim_record_path(const std::string &runtime_dir);

struct ClaimRecord; // src/net/claim_record.h

// The host's claim on the uplink handed to the VM: while it lives, the uplink
// carries a passthru macvtap with the uplink's MAC and no host address, route,
// IPv6 link-local or DHCP client. Everything it changed is recorded (in memory
// and in a 0600 JSON file) before the first change, so release() -- here or in a
// restarted agent through load() -- puts the host back exactly.
class UplinkClaim {
public:
    // Checks everything first (facts.problem, free macvtap name, no other
    // macvlan/macvtap on the uplink, no earlier record, systemd-networkd not
    // managing it) and refuses without changing anything; a failure midway rolls
    // back the steps already done. Order: record file, macvtap (IPv6 off on it),
    // /dev/tapN, stop DHCP clients, uplink sysctls, delete routes then addresses.
    static Result<UplinkClaim> claim(const NetworkFacts &facts, const ClaimOptions &options);

    // A claim recorded by an earlier agent (crashed or killed): nullopt when there
    // is no record file. The returned claim has no tap fd; call release().
    static Result<std::optional<UplinkClaim>> load(const std::string &record_path);

    UplinkClaim(UplinkClaim &&) noexcept;
    UplinkClaim &operator=(UplinkClaim &&) noexcept;
    UplinkClaim(const UplinkClaim &) = delete;
    UplinkClaim &operator=(const UplinkClaim &) = delete;
    // Releases a claim still held (logged as a warning: callers should release
    // explicitly after QEMU has exited, or detach() when QEMU outlives them).
    ~UplinkClaim();

    // Puts everything back: closes the tap, deletes the macvtap, restores the
    // sysctls, re-adds addresses, then routes without gateway, then routes with a
    // gateway, default routes last; restarts the DHCP clients that were stopped;
    // removes the record. Idempotent; every step is tried even when one fails and
    // the error lists what could not be restored (the record is then kept).
    Result<void> release();

    // Forgets the claim without releasing it: the tap fd is closed, the record file
    // stays, so a later agent can re-attach to a QEMU that outlives this one, or
    // release() through load(). The destructor then does nothing.
    void detach();

    bool claimed() const;
    int tap_fd() const;                    // -1 after release or after load()
    const std::string &tap_path() const;   // "/dev/tap7"
    const std::string &macvtap() const;    // "rvtap0"
    int macvtap_ifindex() const;
    const std::string &uplink() const;
    const std::string &mac() const;
    const std::string &record_path() const;
    nlohmann::json record_json() const;    // the record as written to the file

private:
    UplinkClaim();
    std::unique_ptr<ClaimRecord> record_;
    UniqueFd tap_;
    bool claimed_ = false;
};

} // namespace rescuevm
