// SPDX-License-Identifier: GPL-2.0-or-later
// user_data: the PowerShell script that applies what stock cloudbase-init cannot (a gateway outside the address's prefix).
#include "rescuevm/core/config_drive.h"

#include "config_drive_network.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace rescuevm {
namespace {

// The helpers every script with work to do starts with. Values reach the script
// only as IP/MAC text checked by guest_network::plan(), inside single quotes.
constexpr const char *kPrologue = R"ps1($ErrorActionPreference = 'Stop'
$script:failed = $false

$adapter = $null
foreach ($attempt in 1..30) {
    $adapter = Get-NetAdapter | Where-Object { $_.MacAddress -eq $mac } | Select-Object -First 1
    if ($adapter) { break }
    Start-Sleep -Seconds 2
}
if (-not $adapter) {
    Write-Output "rescuevm: no network adapter has the server's MAC $mac; trying again at next boot"
    exit 1002
}
$ifIndex = $adapter.ifIndex

function Invoke-Step([string]$what, [scriptblock]$action) {
    try {
        & $action
        Write-Output "rescuevm: ${what}: done"
    } catch {
        $script:failed = $true
        Write-Output "rescuevm: ${what}: failed: $_"
    }
}

# Each step is skipped when already in place, so running again changes nothing.
function Add-Address([string]$address, [int]$prefix) {
    if (Get-NetIPAddress -InterfaceIndex $ifIndex -IPAddress $address -ErrorAction SilentlyContinue) { return }
    New-NetIPAddress -InterfaceIndex $ifIndex -IPAddress $address -PrefixLength $prefix | Out-Null
}

function Add-Route([string]$destination, [string]$nextHop) {
    if (Get-NetRoute -InterfaceIndex $ifIndex -DestinationPrefix $destination -NextHop $nextHop -ErrorAction SilentlyContinue) { return }
    New-NetRoute -InterfaceIndex $ifIndex -DestinationPrefix $destination -NextHop $nextHop | Out-Null
}

)ps1";

std::string quoted(const std::string &text)
{
    return "'" + text + "'";
}

} // namespace

std::string user_data_ps1(const NetworkFacts &facts)
{
    guest_network::GuestNetwork net = guest_network::plan(facts);
    std::string out = "#ps1_sysnative\n";
    out += "# rescuevm: the server's network for the Windows rescue VM, read by cloudbase-init.\n";

    bool set_dns = !net.dhcp4 && !net.dns.empty();
    if (!net.present || (net.addresses.empty() && !set_dns)) {
        out += net.present ? "# The server uses DHCP: Windows does the same, nothing to set here.\n"
                           : "# The VM has no network: nothing to set here.\n";
        out += "exit 0\n";
        return out;
    }

    out += fmt::format("# Uplink {}, MAC {}. Stock cloudbase-init cannot set a default gateway outside\n"
                       "# the address's prefix (a /32 or /128 with the gateway elsewhere): Windows refuses\n"
                       "# it (cloudbase/cloudbase-init issue 166). This script sets the addresses, adds an\n"
                       "# on-link host route to such a gateway, then the routes through it.\n",
                       net.link_id, net.mac);
    out += fmt::format("$mac = {}\n", quoted(guest_network::windows_mac(net.mac)));
    out += kPrologue;

    bool any_ipv4 = std::any_of(net.addresses.begin(), net.addresses.end(), [](const auto &a) { return !a.ipv6; });
    if (any_ipv4)
        out += "Invoke-Step 'IPv4 DHCP off' { Set-NetIPInterface -InterfaceIndex $ifIndex -AddressFamily IPv4 -Dhcp Disabled }\n";

    std::set<std::string> onlink_done;
    for (const auto &address : net.addresses) {
        out += fmt::format("Invoke-Step 'address {0}/{1}' {{ Add-Address {2} {1} }}\n", address.address, address.prefix,
                           quoted(address.address));
        for (const auto &route : address.routes) {
            unsigned host_bits = address.ipv6 ? 128 : 32;
            if (route.needs_onlink_route && onlink_done.insert(route.gateway).second)
                out += fmt::format("Invoke-Step 'on-link route to gateway {0}' {{ Add-Route {1} {2} }}\n",
                                   route.gateway, quoted(fmt::format("{}/{}", route.gateway, host_bits)),
                                   quoted(address.ipv6 ? "::" : "0.0.0.0"));
            std::string destination = fmt::format("{}/{}", route.destination, route.prefix);
            out += fmt::format("Invoke-Step 'route {0} via {1}' {{ Add-Route {2} {3} }}\n", destination, route.gateway,
                               quoted(destination), quoted(route.gateway));
        }
    }

    if (set_dns) {
        std::string list;
        for (const auto &server : net.dns)
            list += (list.empty() ? "" : ", ") + quoted(server);
        out += fmt::format("Invoke-Step 'DNS servers' {{ Set-DnsClientServerAddress -InterfaceIndex $ifIndex "
                           "-ServerAddresses @({}) }}\n",
                           list);
    }

    if (net.any_gateway_outside_prefix()) {
        out += "\n# cloudbase-init's network plugin fails on such a gateway and, having failed, runs\n"
               "# again at every boot, removing the adapter's addresses and routes first. Exit code\n"
               "# 1002 asks cloudbase-init to run this script again at every boot too (after that\n"
               "# plugin), without a reboot.\n"
               "exit 1002\n";
    } else {
        out += "\n# 1002: a step failed, try again at next boot (no reboot).\n"
               "if ($script:failed) { exit 1002 }\n"
               "exit 0\n";
    }
    return out;
}

} // namespace rescuevm
