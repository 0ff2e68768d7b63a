// SPDX-License-Identifier: GPL-2.0-or-later
// ClaimRecord: everything a claim changed on the uplink, kept in memory and in a 0600 JSON file.
#pragma once

#include "rescuevm/host/netlink.h"

#include "rescuevm/core/error.h"
#include "rescuevm/core/uplink_rules.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rescuevm {

struct RecordedAddress {
    int family = 0;
    std::string local;            // "203.0.113.10"
    unsigned prefix = 0;
    std::string peer, broadcast, label;
    int scope = 0;
    unsigned flags = 0;           // IFA_F_*
    std::uint32_t valid_lft = 0xFFFFFFFFu, preferred_lft = 0xFFFFFFFFu;
};

struct RecordedNexthop {
    int ifindex = 0;
    std::string gateway;          // "" when on-link
    unsigned flags = 0;           // RTNH_F_ONLINK, ...
    unsigned weight = 0;
};

struct RecordedRoute {
    int family = 0;
    std::uint32_t table = 0;
    std::string dst;              // "0.0.0.0/0", "203.0.113.1/32"
    int type = 0, protocol = 0, scope = 0, tos = 0;
    std::uint32_t priority = 0;
    std::string pref_src;
    std::map<int, std::uint32_t> metrics; // RTAX_* -> value
    std::vector<RecordedNexthop> nexthops;

    bool is_default() const { return dst.ends_with("/0"); }
    bool has_gateway() const;
};

struct RecordedSysctl {
    std::string path;             // /proc/sys/net/ipv6/conf/eth0/disable_ipv6
    std::string value;            // before the claim
};

struct ClaimRecord {
    int version = 2;                  // 2: the hand-over as steps; 1 held command lines (refused)
    std::string path;             // the record file (not serialised)
    std::string claimed_at;       // UTC, for people reading the file
    std::string uplink, mac;
    int ifindex = 0;
    std::string macvtap;
    int macvtap_ifindex = 0;
    std::string tap_node;         // /dev/tapN or a node we created
    bool tap_node_created = false;
    std::string proc_root = "/proc";
    std::vector<RecordedAddress> addresses;
    std::vector<RecordedRoute> routes;
    std::vector<RecordedSysctl> sysctls; // restored in this order
    // How the network stack let go of the uplink (uplink_handover()), undone in reverse.
    std::vector<HandoverStep> handover;
    // The uplink as the VM carries it (network_facts_json): a restarted agent plans
    // with these, since the host itself no longer shows them while the VM runs.
    nlohmann::json facts = nlohmann::json::object();
};

// "" when a record read back (untrusted: anyone who could write runtime_dir could
// plant one) only names what a claim of this host could have changed; else why not.
std::string claim_record_problem(const ClaimRecord &record, const std::string &path);

nlohmann::json to_json(const ClaimRecord &record);
Result<ClaimRecord> claim_record_from_json(const nlohmann::json &j);

// Atomically (temp file, fsync, rename), mode 0600.
Result<void> write_claim_record(const ClaimRecord &record);
// A regular, root-owned, private file that passes claim_record_problem().
Result<ClaimRecord> read_claim_record(const std::string &path);

namespace net {

// The addresses and the routes to restore of one interface. Routes the kernel makes
// by itself (proto kernel: prefix, local, multicast) or learns (proto ra) are left
// out: they come back with the addresses and with accept_ra.
std::vector<RecordedAddress> record_addresses(nl_cache *addrs, int ifindex);
std::vector<RecordedRoute> record_routes(nl_cache *routes, int ifindex);

// Netlink operations; they return the libnl error code (0 on success) so callers
// decide which ones are fine (NLE_EXIST when restoring, NLE_OBJ_NOTFOUND when removing).
int add_address(nl_sock *sock, int ifindex, const RecordedAddress &a);
int delete_address(nl_sock *sock, int ifindex, const RecordedAddress &a);
int add_route(nl_sock *sock, const RecordedRoute &r);
int delete_route(nl_sock *sock, const RecordedRoute &r);

std::string describe(const RecordedAddress &a);
std::string describe(const RecordedRoute &r);

} // namespace net
} // namespace rescuevm
