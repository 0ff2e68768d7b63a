// SPDX-License-Identifier: GPL-2.0-or-later
// GuestNetwork: which addresses, routes and DNS servers the guest is given, and which gateways need an on-link route.
#include "config_drive_network.h"

#include "rescuevm/core/ip_address.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <optional>

namespace rescuevm::guest_network {
namespace {

using Ip = IpAddress;

std::optional<Ip> parse_ip(const std::string &text)
{
    return IpAddress::parse(text);
}

std::optional<std::string> canonical_mac(const std::string &mac)
{
    if (mac.size() != 17)
        return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < mac.size(); ++i) {
        char c = mac[i];
        if (i % 3 == 2) {
            if (c != ':' && c != '-')
                return std::nullopt;
            out += ':';
        } else {
            if (!std::isxdigit(static_cast<unsigned char>(c)))
                return std::nullopt;
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    return out;
}

// Windows renames the adapter to the link id: keep the host's name when it is a
// plain interface name, so the customer sees "eno1" and knows which NIC it is.
std::string link_id_for(const std::string &uplink)
{
    bool plain = !uplink.empty() && uplink.size() <= 15 &&
                 std::all_of(uplink.begin(), uplink.end(), [](char c) {
                     return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
                 });
    return plain ? uplink : "uplink";
}

struct GatewayRoute {
    Ip destination;
    unsigned prefix = 0;
    Ip gateway;
};

std::vector<GatewayRoute> gateway_routes(const NetworkFacts &facts)
{
    std::vector<GatewayRoute> routes;
    auto add = [&](const GatewayRoute &r) {
        for (const auto &known : routes)
            if (known.prefix == r.prefix && known.destination.bytes == r.destination.bytes &&
                known.gateway.v6 == r.gateway.v6 && known.gateway.bytes == r.gateway.bytes)
                return;
        routes.push_back(r);
    };
    for (const auto &route : facts.routes) {
        if (route.gateway.empty())
            continue; // on-link routes: implied by the gateway handling below
        auto gateway = parse_ip(route.gateway);
        if (!gateway)
            continue;
        GatewayRoute r;
        r.gateway = *gateway;
        r.destination.v6 = gateway->v6;
        if (route.destination != "default" && !route.destination.empty()) {
            auto slash = route.destination.find('/');
            auto dest = parse_ip(route.destination.substr(0, slash));
            if (!dest || dest->v6 != gateway->v6)
                continue;
            unsigned prefix = dest->bits();
            if (slash != std::string::npos) {
                try {
                    prefix = static_cast<unsigned>(std::stoul(route.destination.substr(slash + 1)));
                } catch (...) {
                    continue;
                }
            }
            if (prefix > dest->bits())
                continue;
            r.prefix = prefix;
            r.destination = dest->network(prefix);
        }
        add(r);
    }
    // A reader that only filled `gateways`: each one is a default gateway.
    if (routes.empty())
        for (const auto &text : facts.gateways)
            if (auto gateway = parse_ip(text)) {
                GatewayRoute r;
                r.gateway = *gateway;
                r.destination.v6 = gateway->v6;
                add(r);
            }
    return routes;
}

} // namespace

bool GuestNetwork::any_gateway_outside_prefix() const
{
    for (const auto &address : addresses)
        for (const auto &route : address.routes)
            if (route.gateway_outside_prefix)
                return true;
    return false;
}

std::string netmask_text(bool ipv6, unsigned prefix)
{
    return IpAddress::netmask_text(ipv6, prefix);
}

std::string windows_mac(const std::string &mac)
{
    std::string out;
    for (char c : mac)
        out += c == ':' ? '-' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

GuestNetwork plan(const NetworkFacts &facts)
{
    GuestNetwork net;
    auto mac = canonical_mac(facts.mac);
    if (!facts.found || !mac)
        return net;
    net.present = true;
    net.mac = *mac;
    net.mtu = facts.mtu;
    net.link_id = link_id_for(facts.uplink);
    net.dhcp4 = facts.dhcp;

    std::vector<Ip> ips;
    for (const auto &address : facts.addresses) {
        auto ip = parse_ip(address.address);
        if (!ip || address.scope == "link" || ip->link_local() || address.prefix > ip->bits())
            continue;
        if (!ip->v6 && net.dhcp4)
            continue; // the guest asks the same DHCP server
        if (std::any_of(ips.begin(), ips.end(), [&](const Ip &k) { return k.v6 == ip->v6 && k.bytes == ip->bytes; }))
            continue;
        ips.push_back(*ip);
        net.addresses.push_back({ip->v6, ip->text(), address.prefix, {}});
    }

    for (const auto &route : gateway_routes(facts)) {
        // The address whose prefix holds the gateway, else the first of its family.
        std::optional<std::size_t> owner;
        for (std::size_t i = 0; i < ips.size() && !owner; ++i)
            if (ips[i].v6 == route.gateway.v6 && ips[i].same_network(route.gateway, net.addresses[i].prefix))
                owner = i;
        bool inside = owner.has_value();
        for (std::size_t i = 0; i < ips.size() && !owner; ++i)
            if (ips[i].v6 == route.gateway.v6)
                owner = i;
        if (!owner)
            continue; // DHCP's own routes, or no address of that family
        net.addresses[*owner].routes.push_back(
            {route.destination.text(), route.prefix, route.gateway.text(), !inside,
             !inside && !route.gateway.link_local()});
    }

    for (const auto &server : facts.dns)
        if (auto ip = parse_ip(server)) {
            std::string text = ip->text();
            if (std::find(net.dns.begin(), net.dns.end(), text) == net.dns.end())
                net.dns.push_back(text);
        }
    return net;
}

} // namespace rescuevm::guest_network
