// SPDX-License-Identifier: GPL-2.0-or-later
// Owners for libnl objects and the few netlink helpers the net module shares.
#pragma once

#include "rescuevm/core/error.h"

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include <memory>
#include <string>

namespace rescuevm::net {

struct NlDeleter {
    void operator()(nl_sock *s) const { nl_socket_free(s); }
    void operator()(nl_cache *c) const { nl_cache_free(c); }
    void operator()(nl_addr *a) const { nl_addr_put(a); }
    void operator()(rtnl_link *l) const { rtnl_link_put(l); }
    void operator()(rtnl_addr *a) const { rtnl_addr_put(a); }
    void operator()(rtnl_route *r) const { rtnl_route_put(r); }
};

using NlSocket = std::unique_ptr<nl_sock, NlDeleter>;
using NlCache = std::unique_ptr<nl_cache, NlDeleter>;
using NlAddr = std::unique_ptr<nl_addr, NlDeleter>;
using NlLink = std::unique_ptr<rtnl_link, NlDeleter>;
using NlRtAddr = std::unique_ptr<rtnl_addr, NlDeleter>;
using NlRoute = std::unique_ptr<rtnl_route, NlDeleter>;

// A connected NETLINK_ROUTE socket.
Result<NlSocket> open_route_socket();

// One dump each; `what` names the request in errors.
Result<NlCache> link_cache(nl_sock *sock);
Result<NlCache> addr_cache(nl_sock *sock);
Result<NlCache> route_cache(nl_sock *sock);

// "203.0.113.10" (no prefix) or "" for a null/empty address.
std::string ip_text(const nl_addr *addr);
// "52:54:00:12:34:56".
std::string mac_text(const nl_addr *addr);
// Parses "203.0.113.1" or "2001:db8::/64" for the given family.
Result<NlAddr> parse_addr(const std::string &text, int family);

// libnl error code to words.
std::string nl_error(int code);

} // namespace rescuevm::net
