// SPDX-License-Identifier: GPL-2.0-or-later
// read_network_facts(): the uplink, its addresses, gateways, DNS, and the network stack serving it.
#include "rescuevm/host/dhcp_clients.h"
#include "rescuevm/host/netlink.h"

#include "rescuevm/sys/log.h"
#include "rescuevm/host/network_facts.h"
#include "rescuevm/core/uplink_rules.h"
#include "rescuevm/core/report.h"

#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <netlink/route/nexthop.h>
#include <nlohmann/json.hpp>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace rescuevm {

namespace {

constexpr std::uint32_t kInfiniteLifetime = 0xFFFFFFFFu;

const char *family_name(int family)
{
    return family == AF_INET ? "ipv4" : "ipv6";
}

std::string link_name(nl_cache *links, int ifindex)
{
    char buf[IFNAMSIZ] = {};
    return rtnl_link_i2name(links, ifindex, buf, sizeof buf) ? buf : "";
}

// Calls visit(route, nexthop) for each unicast IPv4/IPv6 route of the main table.
template <typename F>
void for_each_main_route(nl_cache *routes, F &&visit)
{
    for (nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
        auto *r = reinterpret_cast<rtnl_route *>(o);
        int family = rtnl_route_get_family(r);
        if ((family != AF_INET && family != AF_INET6) || rtnl_route_get_table(r) != RT_TABLE_MAIN ||
            rtnl_route_get_type(r) != RTN_UNICAST || rtnl_route_get_nnexthops(r) < 1)
            continue;
        visit(r, rtnl_route_nexthop_n(r, 0));
    }
}

bool is_default(rtnl_route *r)
{
    nl_addr *dst = rtnl_route_get_dst(r);
    return !dst || nl_addr_get_prefixlen(dst) == 0;
}

// macvtap is usable when loaded or built in (its class exists) or loadable as a module.
bool macvtap_available(const NetworkOptions &o, std::string &detail)
{
    if (::access((o.sys_root + "/class/macvtap").c_str(), F_OK) == 0 ||
        ::access((o.sys_root + "/module/macvtap").c_str(), F_OK) == 0)
        return true;
    utsname u{};
    ::uname(&u);
    std::string dir = o.modules_root + "/" + u.release;
    for (const char *index : {"/modules.builtin", "/modules.dep"}) {
        std::ifstream in(dir + index);
        for (std::string line; std::getline(in, line);)
            if (line.find("/macvtap.ko") != std::string::npos)
                return true;
    }
    detail = "no " + o.sys_root + "/class/macvtap, no macvtap.ko in " + dir;
    return false;
}

std::string read_file(const std::string &path)
{
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

NetworkOptions network_options(const Config &config)
{
    NetworkOptions o;
    o.uplink = config.network.uplink;
    o.addressing = config.network.addressing;
    o.resolv_conf = config.network.resolv_conf;
    return o;
}

Result<NetworkFacts> read_network_facts(const NetworkOptions &options)
{
    using namespace net;
    auto sock = RESCUEVM_TRY(open_route_socket());
    auto links = RESCUEVM_TRY(link_cache(sock.get()));
    auto addrs = RESCUEVM_TRY(addr_cache(sock.get()));
    auto routes = RESCUEVM_TRY(route_cache(sock.get()));

    NetworkFacts facts;
    facts.requested = options.uplink;
    for (nl_object *o = nl_cache_get_first(links.get()); o; o = nl_cache_get_next(o)) {
        auto *l = reinterpret_cast<rtnl_link *>(o);
        const char *kind = rtnl_link_get_type(l);
        bool loopback = rtnl_link_get_flags(l) & IFF_LOOPBACK;
        if (!loopback && !(kind && std::string(kind) == "macvtap"))
            facts.interfaces.push_back(rtnl_link_get_name(l));
    }

    if (options.uplink == "auto" || options.uplink.empty()) {
        std::vector<DefaultRoute> defaults;
        for_each_main_route(routes.get(), [&](rtnl_route *r, rtnl_nexthop *nh) {
            if (is_default(r) && nh)
                defaults.push_back({family_name(rtnl_route_get_family(r)),
                                    link_name(links.get(), rtnl_route_nh_get_ifindex(nh)),
                                    rtnl_route_get_priority(r)});
        });
        facts.uplink = choose_uplink(defaults);
    } else {
        facts.uplink = options.uplink;
    }
    facts.macvtap_supported = macvtap_available(options, facts.macvtap_missing_detail);
    facts.dns = parse_resolv_conf(read_file(options.resolv_conf));

    NlLink link(facts.uplink.empty() ? nullptr
                                     : rtnl_link_get_by_name(links.get(), facts.uplink.c_str()));
    if (!link)
        return facts;
    facts.found = true;
    facts.ifindex = rtnl_link_get_ifindex(link.get());
    facts.mac = mac_text(rtnl_link_get_addr(link.get()));
    facts.mtu = rtnl_link_get_mtu(link.get());
    unsigned flags = rtnl_link_get_flags(link.get());
    facts.up = flags & IFF_UP;
    facts.carrier = flags & IFF_LOWER_UP;
    if (const char *kind = rtnl_link_get_type(link.get()))
        facts.kind = kind;
    if (int master = rtnl_link_get_master(link.get()); master > 0) {
        facts.master = link_name(links.get(), master);
        NlLink m(rtnl_link_get(links.get(), master));
        if (m && rtnl_link_get_type(m.get()))
            facts.master_kind = rtnl_link_get_type(m.get());
    }

    for (nl_object *o = nl_cache_get_first(links.get()); o; o = nl_cache_get_next(o)) {
        auto *l = reinterpret_cast<rtnl_link *>(o);
        const char *kind = rtnl_link_get_type(l);
        if (rtnl_link_get_link(l) == facts.ifindex && kind &&
            (std::string(kind) == "macvtap" || std::string(kind) == "macvlan"))
            facts.stacked.push_back(std::string(kind) + " " + rtnl_link_get_name(l));
    }
    for (nl_object *o = nl_cache_get_first(addrs.get()); o; o = nl_cache_get_next(o)) {
        auto *a = reinterpret_cast<rtnl_addr *>(o);
        int family = rtnl_addr_get_family(a);
        if (rtnl_addr_get_ifindex(a) != facts.ifindex || (family != AF_INET && family != AF_INET6))
            continue;
        NetAddress na;
        na.family = family_name(family);
        na.address = ip_text(rtnl_addr_get_local(a));
        na.prefix = rtnl_addr_get_prefixlen(a);
        int scope = rtnl_addr_get_scope(a);
        if (scope == RT_SCOPE_HOST || na.address.empty())
            continue;
        na.scope = scope == RT_SCOPE_LINK ? "link" : "global";
        if (scope == RT_SCOPE_LINK) {
            facts.link_local.push_back(na);
            continue;
        }
        // A finite lifetime on an IPv4 address means a lease; IPv6 SLAAC has one too.
        if (family == AF_INET && rtnl_addr_get_valid_lifetime(a) != kInfiniteLifetime)
            facts.dynamic_v4 = true;
        facts.addresses.push_back(na);
    }

    auto outside_all = [&](const std::string &family, const std::string &gw) {
        bool any = false;
        for (const auto &a : facts.addresses) {
            if (a.family != family)
                continue;
            any = true;
            if (!gateway_outside_prefix(a.address, a.prefix, gw))
                return false;
        }
        return any;
    };
    std::vector<NetRoute> host_routes;
    for_each_main_route(routes.get(), [&](rtnl_route *r, rtnl_nexthop *nh) {
        if (!nh || rtnl_route_nh_get_ifindex(nh) != facts.ifindex || !is_default(r))
            return;
        NetRoute nr;
        nr.family = family_name(rtnl_route_get_family(r));
        nr.destination = "default";
        nr.gateway = ip_text(rtnl_route_nh_get_gateway(nh));
        nr.gateway_outside_prefix = !nr.gateway.empty() && outside_all(nr.family, nr.gateway);
        if (!nr.gateway.empty() &&
            std::find(facts.gateways.begin(), facts.gateways.end(), nr.gateway) ==
                facts.gateways.end())
            facts.gateways.push_back(nr.gateway);
        facts.routes.push_back(nr);
    });
    // The on-link host routes that make an outside gateway reachable.
    for_each_main_route(routes.get(), [&](rtnl_route *r, rtnl_nexthop *nh) {
        nl_addr *dst = rtnl_route_get_dst(r);
        if (!nh || rtnl_route_nh_get_ifindex(nh) != facts.ifindex || !dst ||
            rtnl_route_nh_get_gateway(nh) ||
            nl_addr_get_prefixlen(dst) != nl_addr_get_len(dst) * 8)
            return;
        std::string target = ip_text(dst);
        if (std::find(facts.gateways.begin(), facts.gateways.end(), target) == facts.gateways.end())
            return;
        NetRoute nr;
        nr.family = family_name(rtnl_route_get_family(r));
        nr.destination = target + "/" + std::to_string(nl_addr_get_prefixlen(dst));
        facts.routes.push_back(nr);
    });

    net::StackPaths stack{options.proc_root, options.netif_dir, options.dhcpcd_rundir};
    facts.dhcp_clients = net::find_dhcp_clients(stack, facts.uplink);
    facts.networkd = net::read_networkd(stack, facts.ifindex);
    facts.other_managers = net::find_other_managers(options.proc_root, facts.uplink);
    return facts;
}

} // namespace rescuevm
