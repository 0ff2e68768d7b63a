// SPDX-License-Identifier: GPL-2.0-or-later
// The uplink's addresses and routes between netlink and a ClaimRecord: recorded from the caches, added back and removed, described for the log.
#include "claim_record.h"

#include "rescuevm/core/ip_address.h"

#include <fmt/format.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/route/nexthop.h>

#include <cerrno>
#include <cstring>

namespace rescuevm {

// ---- Netlink -----------------------------------------------------------------------

namespace net {

std::vector<RecordedAddress> record_addresses(nl_cache *addrs, int ifindex)
{
    std::vector<RecordedAddress> out, secondaries;
    for (nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
        auto *a = reinterpret_cast<rtnl_addr *>(o);
        int family = rtnl_addr_get_family(a);
        if (rtnl_addr_get_ifindex(a) != ifindex || (family != AF_INET && family != AF_INET6))
            continue;
        RecordedAddress r;
        r.family = family;
        r.local = ip_text(rtnl_addr_get_local(a));
        r.prefix = rtnl_addr_get_prefixlen(a);
        r.peer = ip_text(rtnl_addr_get_peer(a));
        if (r.peer == r.local)
            r.peer.clear();
        r.broadcast = ip_text(rtnl_addr_get_broadcast(a));
        if (const char *label = rtnl_addr_get_label(a))
            r.label = label;
        r.scope = rtnl_addr_get_scope(a);
        r.flags = rtnl_addr_get_flags(a);
        r.valid_lft = rtnl_addr_get_valid_lifetime(a);
        r.preferred_lft = rtnl_addr_get_preferred_lifetime(a);
        // Primaries first: a secondary only exists next to its primary.
        (r.flags & IFA_F_SECONDARY ? secondaries : out).push_back(r);
    }
    out.insert(out.end(), secondaries.begin(), secondaries.end());
    return out;
}

std::vector<RecordedRoute> record_routes(nl_cache *routes, int ifindex)
{
    std::vector<RecordedRoute> out;
    for (nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
        auto *r = reinterpret_cast<rtnl_route *>(o);
        int family = rtnl_route_get_family(r);
        int protocol = rtnl_route_get_protocol(r);
        if ((family != AF_INET && family != AF_INET6) || protocol == RTPROT_KERNEL ||
            protocol == RTPROT_RA || (rtnl_route_get_flags(r) & RTM_F_CLONED))
            continue;
        bool ours = false;
        RecordedRoute rr;
        for (int i = 0; i < rtnl_route_get_nnexthops(r); ++i) {
            rtnl_nexthop *nh = rtnl_route_nexthop_n(r, i);
            RecordedNexthop n;
            n.ifindex = rtnl_route_nh_get_ifindex(nh);
            n.gateway = ip_text(rtnl_route_nh_get_gateway(nh));
            n.flags = rtnl_route_nh_get_flags(nh);
            n.weight = rtnl_route_nh_get_weight(nh);
            ours = ours || n.ifindex == ifindex;
            rr.nexthops.push_back(n);
        }
        if (!ours)
            continue;
        rr.family = family;
        rr.table = rtnl_route_get_table(r);
        nl_addr *dst = rtnl_route_get_dst(r);
        std::string dst_ip = ip_text(dst);
        if (dst_ip.empty())
            dst_ip = family == AF_INET ? "0.0.0.0" : "::";
        rr.dst = dst_ip + "/" + std::to_string(dst ? nl_addr_get_prefixlen(dst) : 0);
        rr.type = rtnl_route_get_type(r);
        rr.protocol = protocol;
        rr.scope = rtnl_route_get_scope(r);
        rr.tos = rtnl_route_get_tos(r);
        rr.priority = rtnl_route_get_priority(r);
        rr.pref_src = ip_text(rtnl_route_get_pref_src(r));
        for (int m = 1; m <= RTAX_MAX; ++m) {
            std::uint32_t value = 0;
            if (rtnl_route_get_metric(r, m, &value) == 0)
                rr.metrics[m] = value;
        }
        out.push_back(rr);
    }
    return out;
}

namespace {

Result<NlRtAddr> build_address(int ifindex, const RecordedAddress &a)
{
    NlRtAddr addr(rtnl_addr_alloc());
    auto local = RESCUEVM_TRY(parse_addr(a.local, a.family));
    nl_addr_set_prefixlen(local.get(), static_cast<int>(a.prefix));
    rtnl_addr_set_ifindex(addr.get(), ifindex);
    rtnl_addr_set_family(addr.get(), a.family);
    rtnl_addr_set_local(addr.get(), local.get());
    rtnl_addr_set_prefixlen(addr.get(), static_cast<int>(a.prefix));
    if (!a.peer.empty()) {
        auto peer = RESCUEVM_TRY(parse_addr(a.peer, a.family));
        rtnl_addr_set_peer(addr.get(), peer.get());
    }
    return addr;
}

Result<NlRoute> build_route(const RecordedRoute &r)
{
    NlRoute route(rtnl_route_alloc());
    rtnl_route_set_family(route.get(), static_cast<uint8_t>(r.family));
    rtnl_route_set_table(route.get(), r.table);
    auto dst = RESCUEVM_TRY(parse_addr(r.dst, r.family));
    rtnl_route_set_dst(route.get(), dst.get());
    rtnl_route_set_type(route.get(), static_cast<uint8_t>(r.type));
    rtnl_route_set_protocol(route.get(), static_cast<uint8_t>(r.protocol));
    rtnl_route_set_scope(route.get(), static_cast<uint8_t>(r.scope));
    rtnl_route_set_tos(route.get(), static_cast<uint8_t>(r.tos));
    rtnl_route_set_priority(route.get(), r.priority);
    if (!r.pref_src.empty()) {
        auto src = RESCUEVM_TRY(parse_addr(r.pref_src, r.family));
        rtnl_route_set_pref_src(route.get(), src.get());
    }
    for (auto [m, v] : r.metrics)
        rtnl_route_set_metric(route.get(), m, v);
    for (const auto &n : r.nexthops) {
        rtnl_nexthop *nh = rtnl_route_nh_alloc();
        rtnl_route_nh_set_ifindex(nh, n.ifindex);
        if (!n.gateway.empty()) {
            auto gw = parse_addr(n.gateway, r.family);
            if (!gw) {
                rtnl_route_nh_free(nh);
                return std::unexpected(gw.error());
            }
            rtnl_route_nh_set_gateway(nh, gw->get());
        }
        // Only flags a route can be created with; dead/linkdown are kernel state.
        rtnl_route_nh_set_flags(nh, n.flags & RTNH_F_ONLINK);
        if (r.nexthops.size() > 1)
            rtnl_route_nh_set_weight(nh, static_cast<uint8_t>(n.weight));
        rtnl_route_add_nexthop(route.get(), nh);
    }
    return route;
}

} // namespace

int add_address(nl_sock *sock, int ifindex, const RecordedAddress &a)
{
    auto addr = build_address(ifindex, a);
    if (!addr)
        return -NLE_INVAL;
    if (!a.broadcast.empty())
        if (auto b = parse_addr(a.broadcast, a.family))
            rtnl_addr_set_broadcast(addr->get(), b->get());
    if (!a.label.empty())
        rtnl_addr_set_label(addr->get(), a.label.c_str());
    rtnl_addr_set_scope(addr->get(), a.scope);
    rtnl_addr_set_flags(addr->get(), a.flags & (IFA_F_NODAD | IFA_F_HOMEADDRESS |
                                                IFA_F_MANAGETEMPADDR | IFA_F_NOPREFIXROUTE |
                                                IFA_F_MCAUTOJOIN));
    // A lease comes back with the lifetime it had; the restarted client renews it.
    if (a.valid_lft != 0xFFFFFFFFu) {
        rtnl_addr_set_valid_lifetime(addr->get(), a.valid_lft);
        rtnl_addr_set_preferred_lifetime(addr->get(), a.preferred_lft);
    }
    return rtnl_addr_add(sock, addr->get(), NLM_F_EXCL);
}

int delete_address(nl_sock *sock, int ifindex, const RecordedAddress &a)
{
    auto addr = build_address(ifindex, a);
    if (!addr)
        return -NLE_INVAL;
    return rtnl_addr_delete(sock, addr->get(), 0);
}

int add_route(nl_sock *sock, const RecordedRoute &r)
{
    auto route = build_route(r);
    if (!route)
        return -NLE_INVAL;
    return rtnl_route_add(sock, route->get(), NLM_F_EXCL);
}

int delete_route(nl_sock *sock, const RecordedRoute &r)
{
    auto route = build_route(r);
    if (!route)
        return -NLE_INVAL;
    return rtnl_route_delete(sock, route->get(), 0);
}

std::string describe(const RecordedAddress &a)
{
    return fmt::format("{}/{}", a.local, a.prefix);
}

std::string describe(const RecordedRoute &r)
{
    std::string text = r.is_default() ? "default" : r.dst;
    for (const auto &nh : r.nexthops)
        text += nh.gateway.empty() ? std::string(" on-link") : " via " + nh.gateway;
    if (r.table != RT_TABLE_MAIN)
        text += " table " + std::to_string(r.table);
    return text;
}

} // namespace net
} // namespace rescuevm
