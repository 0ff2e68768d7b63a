// SPDX-License-Identifier: GPL-2.0-or-later
// The plan and the disk inventory as JSON (the stable contract) and as text for people.
#pragma once

#include "rescuevm/core/plan.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace rescuevm {

nlohmann::json disk_json(const DiskChoice &choice);
// The `network` object of `plan --json` (uplink, mac, mtu, up, carrier, kind, master,
// addresses, link_local, gateways, routes, dns, dhcp, dhcp_client, macvtap, problem).
nlohmann::json network_facts_json(const NetworkFacts &facts);
nlohmann::json network_json(const NetworkFacts &net, const Config &config);
nlohmann::json plan_json(const Plan &plan, const std::vector<std::string> &argv);

// Size for tables: "64.0 GiB", "512.0 MiB".
std::string human_size(std::uint64_t bytes);
std::string disks_table(const std::vector<DiskChoice> &disks);
std::string plan_text(const Plan &plan, const std::vector<std::string> &argv);

} // namespace rescuevm
