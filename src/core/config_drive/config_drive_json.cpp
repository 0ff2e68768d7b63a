// SPDX-License-Identifier: GPL-2.0-or-later
// The JSON files of the config drive: meta_data.json (with the password kept out of nlohmann::json) and network_data.json.
#include "rescuevm/core/config_drive.h"

#include "config_drive_network.h"

#include <fmt/format.h>

#include <cctype>
#include <nlohmann/json.hpp>

namespace rescuevm {
namespace {

// Appends text as the inside of a JSON string, straight into the Secret: no
// std::string copy of the password is ever made.
void append_json_escaped(Secret &out, std::string_view text)
{
    for (char c : text) {
        unsigned char u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out.append('\\');
            out.append(c);
        } else if (u < 0x20) {
            static const char hex[] = "0123456789abcdef";
            const char escaped[] = {'\\', 'u', '0', '0', hex[u >> 4], hex[u & 0xf]};
            out.append(std::string_view(escaped, sizeof escaped));
        } else {
            out.append(c);
        }
    }
}

} // namespace

nlohmann::json meta_data_json(const ConfigDriveInput &input)
{
    // cloud-init requires "uuid" (its instance-id); cloudbase-init reads uuid,
    // admin_pass and meta.admin_username. "hostname" is left out on purpose.
    return nlohmann::json{
        {"uuid", input.instance_uuid},
        {"name", input.vm_name},
        {"meta", {{"admin_username", input.admin_user}}},
    };
}

Secret meta_data_text(const ConfigDriveInput &input)
{
    std::string public_part = meta_data_json(input).dump();
    Secret text;
    text.append('{');
    if (input.admin_password != nullptr && !input.admin_password->empty()) {
        text.append("\"admin_pass\":\"");
        append_json_escaped(text, input.admin_password->reveal());
        text.append('"');
        if (public_part != "{}")
            text.append(',');
    }
    text.append(std::string_view(public_part).substr(1)); // past the '{'
    text.append('\n');
    return text;
}

nlohmann::json network_data_json(const NetworkFacts &facts)
{
    guest_network::GuestNetwork net = guest_network::plan(facts);
    nlohmann::json links = nlohmann::json::array();
    nlohmann::json networks = nlohmann::json::array();
    nlohmann::json services = nlohmann::json::array();
    if (!net.present)
        return {{"links", links}, {"networks", networks}, {"services", services}};

    links.push_back({{"id", net.link_id},
                     {"type", "phy"},
                     {"ethernet_mac_address", net.mac},
                     {"mtu", net.mtu}});

    auto next_id = [&] { return fmt::format("network{}", networks.size()); };
    if (net.dhcp4)
        networks.push_back({{"id", next_id()}, {"type", "ipv4_dhcp"}, {"link", net.link_id}});
    for (const auto &address : net.addresses) {
        nlohmann::json routes = nlohmann::json::array();
        for (const auto &route : address.routes)
            routes.push_back({{"network", route.destination},
                              {"netmask", guest_network::netmask_text(address.ipv6, route.prefix)},
                              {"gateway", route.gateway}});
        networks.push_back({{"id", next_id()},
                            {"type", address.ipv6 ? "ipv6" : "ipv4"},
                            {"link", net.link_id},
                            {"ip_address", address.address},
                            {"netmask", guest_network::netmask_text(address.ipv6, address.prefix)},
                            {"routes", routes}});
    }
    for (const auto &server : net.dns)
        services.push_back({{"type", "dns"}, {"address", server}});
    return {{"links", links}, {"networks", networks}, {"services", services}};
}

bool is_uuid(std::string_view uuid)
{
    if (uuid.size() != 36)
        return false;
    for (std::size_t i = 0; i < uuid.size(); ++i) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? uuid[i] != '-' : !std::isxdigit(static_cast<unsigned char>(uuid[i])))
            return false;
    }
    return true;
}

} // namespace rescuevm
