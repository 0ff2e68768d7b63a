// SPDX-License-Identifier: GPL-2.0-or-later
// Config drive content: the OpenStack "config-2" files that hand the server's network and the admin password to the guest. Pure.
#pragma once

#include "rescuevm/core/host_facts.h"
#include "rescuevm/core/secret.h"

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>

namespace rescuevm {

inline constexpr const char *kConfigDriveLabel = "config-2";
inline constexpr const char *kConfigDriveFileName = "config-2.iso";

// Everything one VM start puts on the config drive.
struct ConfigDriveInput {
    // Fresh per VM start: cloudbase-init and cloud-init key their once-per-instance
    // state on it, so a new one makes them apply network and password again.
    std::string instance_uuid;
    std::string vm_name;                    // Config::vm.name
    std::string admin_user = "Administrator"; // Config::guest.admin_user
    const Secret *admin_password = nullptr; // not owned; nullptr: no password set
    NetworkFacts network;                   // found == false: the guest gets no network
};

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex digits): the shape of an instance or VM uuid.
bool is_uuid(std::string_view text);

// openstack/latest/meta_data.json without the password: uuid, name,
// meta.admin_username; never hostname (a rename costs Windows a reboot).
nlohmann::json meta_data_json(const ConfigDriveInput &input);

// The meta_data.json file content, with "admin_pass" when a password is set.
// It is a Secret because it holds the password; it is wiped when dropped.
Secret meta_data_text(const ConfigDriveInput &input);

// openstack/latest/network_data.json: the uplink as a "phy" link with the
// server's MAC and MTU, one network per global address ("ipv4" / "ipv6", or
// one "ipv4_dhcp" when the host used DHCP) with its default route, DNS services.
nlohmann::json network_data_json(const NetworkFacts &network);

// openstack/latest/user_data: a "#ps1_sysnative" script for cloudbase-init that
// applies the static addresses to the adapter with the server's MAC and, for a
// gateway outside its address's prefix (a /32 or /128 with the gateway elsewhere),
// adds the on-link host route to the gateway before the route through it:
// Windows refuses such a gateway otherwise (cloudbase/cloudbase-init issue 166).
std::string user_data_ps1(const NetworkFacts &network);

} // namespace rescuevm
