// SPDX-License-Identifier: GPL-2.0-or-later
// resolv.conf parsing: the nameservers the host uses, handed on to the guest.
#include "rescuevm/host/network_facts.h"

#include "rescuevm/core/ip_address.h"

#include <algorithm>
#include <sstream>

namespace rescuevm {

std::vector<std::string> parse_resolv_conf(std::string_view text)
{
    std::vector<std::string> servers;
    std::istringstream in{std::string(text)};
    std::string line;
    while (std::getline(in, line)) {
        // glibc accepts both comment characters, only at the start of a line.
        if (line.empty() || line[0] == '#' || line[0] == ';')
            continue;
        std::istringstream words(line);
        std::string keyword, value;
        if (!(words >> keyword >> value) || keyword != "nameserver")
            continue;
        if (!is_ip_address(value))
            continue;
        if (std::find(servers.begin(), servers.end(), value) == servers.end())
            servers.push_back(value);
    }
    return servers;
}

} // namespace rescuevm
