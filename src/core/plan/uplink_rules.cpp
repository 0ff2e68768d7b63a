// SPDX-License-Identifier: GPL-2.0-or-later
// Pure rules about the uplink: which interface, whether it can be claimed, where its gateway is.
#include "rescuevm/core/uplink_rules.h"

#include "rescuevm/core/ip_address.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>

namespace rescuevm {

bool gateway_outside_prefix(const std::string &address, unsigned prefix,
                            const std::string &gateway)
{
    auto a = IpAddress::parse(address);
    auto g = IpAddress::parse(gateway);
    if (!a || !g || a->v6 != g->v6 || prefix > a->bits())
        return false;
    if (!a->same_network(*g, prefix))
        return true;
    // Inside the prefix, but a /32 or /128 holds only the address itself.
    return prefix == a->bits() && *a != *g;
}

std::string choose_uplink(const std::vector<DefaultRoute> &routes)
{
    for (const char *family : {"ipv4", "ipv6"}) {
        const DefaultRoute *best = nullptr;
        for (const auto &r : routes)
            if (r.family == family && (!best || r.metric < best->metric))
                best = &r;
        if (best)
            return best->dev;
    }
    return "";
}

bool uplink_uses_dhcp(const NetworkFacts &facts, Addressing addressing)
{
    switch (addressing) {
    case Addressing::dhcp: return true;
    case Addressing::static_: return false;
    case Addressing::auto_: break;
    }
    return !facts.dhcp_clients.empty() || facts.networkd.dhcp_lease || facts.dynamic_v4;
}

std::string uplink_problem(const NetworkFacts &c)
{
    std::string others = c.interfaces.empty()
                             ? std::string("none")
                             : fmt::format("{}", fmt::join(c.interfaces, ", "));
    if (!c.read_error.empty())
        return fmt::format("network: cannot read the host's network over netlink: {}", c.read_error);
    if (c.uplink.empty())
        return fmt::format("network: no default route, so network.uplink = \"auto\" finds no "
                           "uplink (interfaces: {}): set network.uplink to the server's NIC, "
                           "or network.mode = \"none\" to run the VM without network",
                           others);
    if (!c.found)
        return fmt::format("network: uplink {} does not exist (interfaces: {}): set "
                           "network.uplink to one of them, or \"auto\"",
                           c.uplink, others);
    if (!c.master.empty()) {
        if (c.master_kind == "bond")
            return fmt::format("network: {} is a member of bond {}: set network.uplink = \"{}\"",
                               c.uplink, c.master, c.master);
        if (c.master_kind == "bridge")
            return fmt::format("network: {} is a port of bridge {}: set network.uplink = \"{}\"",
                               c.uplink, c.master, c.master);
        return fmt::format("network: {} is enslaved to {} {}: set network.uplink = \"{}\"",
                           c.uplink, c.master_kind.empty() ? "device" : c.master_kind, c.master,
                           c.master);
    }
    if (c.kind == "macvtap" || c.kind == "macvlan")
        return fmt::format("network: uplink {} is itself a {}: set network.uplink to the "
                           "physical NIC under it",
                           c.uplink, c.kind);
    if (!c.up)
        return fmt::format("network: uplink {} is down: bring it up (ip link set {} up) "
                           "before starting, or set network.mode = \"none\"",
                           c.uplink, c.uplink);
    if (!c.stacked.empty())
        return fmt::format("network: uplink {} already carries {}: a passthru macvtap needs the NIC to "
                           "itself; delete them (ip link del ...) or set network.mode = \"none\"",
                           c.uplink, fmt::join(c.stacked, ", "));
    if (UplinkHandover handover = uplink_handover(c); !handover.problem.empty())
        return handover.problem;
    if (!c.macvtap_supported)
        return fmt::format("network: the kernel has no macvtap support ({}): boot a kernel "
                           "with CONFIG_MACVTAP, or set network.mode = \"none\"",
                           c.macvtap_missing_detail);
    return "";
}

} // namespace rescuevm
