// SPDX-License-Identifier: GPL-2.0-or-later
// Owners for libnl objects and the few netlink helpers the net module shares.
#include "rescuevm/host/netlink.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netlink/errno.h>

namespace rescuevm::net {

std::string nl_error(int code)
{
    return nl_geterror(code);
}

Result<NlSocket> open_route_socket()
{
    NlSocket sock(nl_socket_alloc());
    if (!sock)
        return fail("network: cannot allocate a netlink socket: out of memory");
    int err = nl_connect(sock.get(), NETLINK_ROUTE);
    if (err < 0)
        return fail("network: cannot open a NETLINK_ROUTE socket: " + nl_error(err));
    return sock;
}

Result<NlCache> link_cache(nl_sock *sock)
{
    nl_cache *c = nullptr;
    int err = rtnl_link_alloc_cache(sock, AF_UNSPEC, &c);
    if (err < 0)
        return fail("network: cannot list links over netlink: " + nl_error(err));
    return NlCache(c);
}

Result<NlCache> addr_cache(nl_sock *sock)
{
    nl_cache *c = nullptr;
    int err = rtnl_addr_alloc_cache(sock, &c);
    if (err < 0)
        return fail("network: cannot list addresses over netlink: " + nl_error(err));
    return NlCache(c);
}

Result<NlCache> route_cache(nl_sock *sock)
{
    nl_cache *c = nullptr;
    int err = rtnl_route_alloc_cache(sock, AF_UNSPEC, 0, &c);
    if (err < 0)
        return fail("network: cannot list routes over netlink: " + nl_error(err));
    return NlCache(c);
}

std::string ip_text(const nl_addr *addr)
{
    if (!addr || nl_addr_get_len(addr) == 0)
        return "";
    char buf[INET6_ADDRSTRLEN] = {};
    int family = nl_addr_get_family(addr);
    if ((family != AF_INET && family != AF_INET6) ||
        !inet_ntop(family, nl_addr_get_binary_addr(addr), buf, sizeof buf))
        return "";
    return buf;
}

std::string mac_text(const nl_addr *addr)
{
    if (!addr)
        return "";
    auto *bytes = static_cast<const unsigned char *>(nl_addr_get_binary_addr(addr));
    std::string out;
    for (unsigned i = 0; i < nl_addr_get_len(addr); ++i)
        out += fmt::format("{}{:02x}", i ? ":" : "", bytes[i]);
    return out;
}

Result<NlAddr> parse_addr(const std::string &text, int family)
{
    nl_addr *a = nullptr;
    int err = nl_addr_parse(text.c_str(), family, &a);
    if (err < 0)
        return fail("network: \"" + text + "\" is not an address: " + nl_error(err));
    return NlAddr(a);
}

} // namespace rescuevm::net
