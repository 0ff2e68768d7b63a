// SPDX-License-Identifier: GPL-2.0-or-later
// The plan and the disk inventory as JSON (the stable contract) and as text for people.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/plan.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace rescuevm {

nlohmann::json disk_json(const DiskChoice &choice);
// The `network` object of `plan --json` (uplink, mac, mtu, up, carrier, kind, master,
// addresses, link_local, gateways, routes, dns, dhcp, dhcp_client(s), networkd, other_managers, macvtap, problem).
nlohmann::json network_facts_json(const NetworkFacts &facts);
// The reverse, for facts read back from a record (untrusted): every field checked
// (interface name, MAC, addresses, routes), an error naming the first bad one.
Result<NetworkFacts> network_facts_from_json(const nlohmann::json &json);
// network_facts_json plus the plan's mode, NIC model, the uplink's problem ("" when none) and
// its hand-over (the steps and their description; null when network.mode = "none").
nlohmann::json network_json(const NetworkPlan &net);
nlohmann::json plan_json(const Plan &plan, const std::vector<std::string> &argv);

// Size for tables: "64.0 GiB", "512.0 MiB".
std::string human_size(std::uint64_t bytes);
std::string disks_table(const std::vector<DiskChoice> &disks);
std::string plan_text(const Plan &plan, const std::vector<std::string> &argv);

} // namespace rescuevm
