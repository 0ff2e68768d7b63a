// SPDX-License-Identifier: GPL-2.0-or-later
// Renders plans and inventories: JSON for machines, short tables for people.
#include "rescuevm/core/report.h"

#include "rescuevm/core/ip_address.h"
#include "rescuevm/core/qemu_argv.h"
#include "rescuevm/core/uplink_rules.h"

#include <fmt/format.h>

#include <cctype>

namespace rescuevm {

nlohmann::json disk_json(const DiskChoice &choice)
{
    const DiskInfo &d = choice.disk;
    nlohmann::json parts = nlohmann::json::array();
    for (const auto &p : d.partitions)
        parts.push_back({{"name", p.name}, {"size_bytes", p.size_bytes}, {"fs_type", p.fs_type},
                         {"label", p.label}, {"part_type", p.part_type}, {"part_uuid", p.part_uuid},
                         {"windows_role", p.windows_role}});
    return {{"path", d.path},
            {"name", d.name},
            {"size_bytes", d.size_bytes},
            {"logical_block_size", d.logical_block_size},
            {"physical_block_size", d.physical_block_size},
            {"rotational", d.rotational},
            {"removable", d.removable},
            {"read_only", d.read_only},
            {"serial", d.serial},
            {"model", d.model},
            {"wwn", d.wwn},
            {"source", d.source},
            {"partition_table", d.partition_table},
            {"disk_id", d.disk_id},
            {"windows_dynamic", d.windows_dynamic},
            {"partitions", parts},
            {"in_use", d.in_use},
            {"selected", choice.selected},
            {"reason", choice.reason}};
}

nlohmann::json network_json(const NetworkPlan &net)
{
    nlohmann::json out = network_facts_json(net.uplink);
    out["mode"] = to_string(net.mode);
    out["model"] = to_string(net.model);
    out["problem"] = net.mode == NetworkMode::none ? "" : uplink_problem(net.uplink);
    nlohmann::json handover = nullptr;
    if (net.mode != NetworkMode::none) {
        UplinkHandover h = uplink_handover(net.uplink);
        nlohmann::json steps = nlohmann::json::array();
        for (const auto &s : h.steps)
            steps.push_back({{"kind", to_string(s.kind)}, {"program", s.program}, {"pid", s.pid}});
        handover = {{"steps", steps}, {"description", h.description}};
    }
    out["handover"] = handover;
    return out;
}

nlohmann::json plan_json(const Plan &plan, const std::vector<std::string> &argv)
{
    nlohmann::json checks = nlohmann::json::array();
    for (const auto &c : plan.checks)
        checks.push_back({{"name", c.name}, {"ok", c.ok}, {"message", c.message}});
    nlohmann::json disks = nlohmann::json::array();
    for (const auto &d : plan.disks)
        disks.push_back(disk_json(d));
    return {{"ready", plan.ready()},
            {"host", {{"memory_bytes", plan.host.memory_bytes}, {"cpus", plan.host.cpus}, {"kvm", plan.host.kvm}}},
            {"checks", checks},
            {"warnings", plan.warnings},
            {"disks", disks},
            {"network", network_json(plan.network)},
            {"vm", {{"memory_bytes", plan.vm.memory_bytes}, {"cpus", plan.vm.cpus},
                    {"accel", to_string(plan.vm.accel)}, {"firmware", to_string(plan.firmware.kind)},
                    {"bus", to_string(plan.disk_bus.bus)},
                    {"image", plan.boot.direct_kernel ? plan.boot.kernel : plan.boot.image},
                    {"image_format", plan.boot.image_format},
                    {"image_disk_id", plan.boot.image_disk_id}}},
            {"screen", {{"mode", to_string(plan.screen.mode)},
                        {"physical", plan.screen.physical},
                        {"output", plan.screen.output},
                        {"device", plan.screen.device},
                        {"driver", plan.screen.driver},
                        {"fallback", plan.screen.fallback},
                        {"notice", plan.screen.notice}}},
            {"qemu", {{"binary", plan.qemu}, {"argv", argv}}}};
}

std::string human_size(std::uint64_t bytes)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        ++u;
    }
    return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string disks_table(const std::vector<DiskChoice> &disks)
{
    std::string out = fmt::format("{:<10} {:>10} {:>9} {:<28} {:<5} {}\n", "DISK", "SIZE", "SECTORS",
                                  "MODEL / SERIAL", "TABLE", "PASSED?");
    for (const auto &c : disks) {
        const DiskInfo &d = c.disk;
        std::string ident = d.model.empty() && d.serial.empty() ? "-" : fmt::format("{} / {}", d.model, d.serial);
        if (ident.size() > 28)
            ident = ident.substr(0, 27) + "~";
        out += fmt::format("{:<10} {:>10} {:>9} {:<28} {:<5} {}\n", d.name, human_size(d.size_bytes),
                           fmt::format("{}/{}", d.logical_block_size, d.physical_block_size), ident,
                           d.partition_table.empty() ? "-" : d.partition_table,
                           (c.selected ? "yes: " : "no: ") + c.reason);
    }
    return out;
}

std::string plan_text(const Plan &plan, const std::vector<std::string> &argv)
{
    std::string out = "Disks:\n" + disks_table(plan.disks) + "\nChecks:\n";
    for (const auto &c : plan.checks)
        out += fmt::format("  [{}] {:<10} {}\n", c.ok ? " ok " : "FAIL", c.name, c.message);
    for (const auto &w : plan.warnings)
        out += fmt::format("  [WARN] {}\n", w);
    out += fmt::format("\nVM: {} RAM, {} CPUs, disks on {}\n", human_size(plan.vm.memory_bytes), plan.vm.cpus,
                       to_string(plan.disk_bus.bus));
    if (plan.screen.physical)
        out += fmt::format("Screen: the server's console ({} {}), the host's keyboards and mice in the VM; VNC "
                           "socket {}\n",
                           plan.screen.device, plan.screen.driver, plan.screen.vnc_socket);
    else
        out += fmt::format("Screen: {}\n", plan.screen.notice);
    out += "\nQEMU command line:\n" + shell_quote(argv) + "\n";
    out += plan.ready() ? "\nVerdict: ready to start the VM.\n"
                        : "\nVerdict: REFUSED: fix the failed checks above, then run again.\n";
    return out;
}

nlohmann::json network_facts_json(const NetworkFacts &f)
{
    auto addresses = [](const std::vector<NetAddress> &list) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto &a : list)
            out.push_back({{"family", a.family}, {"address", a.address}, {"prefix", a.prefix},
                           {"scope", a.scope}});
        return out;
    };
    nlohmann::json routes = nlohmann::json::array();
    for (const auto &r : f.routes)
        routes.push_back({{"family", r.family},
                          {"destination", r.destination},
                          {"gateway", r.gateway},
                          {"gateway_outside_prefix", r.gateway_outside_prefix}});
    nlohmann::json clients = nlohmann::json::array();
    for (const auto &c : f.dhcp_clients)
        clients.push_back({{"name", c.name}, {"pid", c.pid}, {"manager", c.manager}, {"interfaces", c.interfaces},
                           {"family", c.family}, {"pid_file", c.pid_file}, {"lease_file", c.lease_file},
                           {"control_socket", c.control_socket}});
    return {
        {"uplink", f.uplink},
        {"found", f.found},
        {"ifindex", f.ifindex},
        {"mac", f.mac},
        {"mtu", f.mtu},
        {"up", f.up},
        {"carrier", f.carrier},
        {"kind", f.kind},
        {"master", f.master},
        {"addresses", addresses(f.addresses)},
        {"link_local", addresses(f.link_local)},
        {"gateways", f.gateways},
        {"routes", routes},
        {"dns", f.dns},
        {"dhcp", f.dhcp},
        {"dhcp_client", f.dhcp_clients.empty() ? std::string()
                                               : fmt::format("{} pid {}", f.dhcp_clients[0].name, f.dhcp_clients[0].pid)},
        {"dhcp_clients", clients},
        {"dynamic_v4", f.dynamic_v4},
        {"networkd", {{"running", f.networkd.running},
                      {"admin_state", f.networkd.admin_state},
                      {"network_file", f.networkd.network_file},
                      {"dhcp_lease", f.networkd.dhcp_lease}}},
        {"other_managers", f.other_managers},
        {"stacked", f.stacked},
        {"macvtap_supported", f.macvtap_supported},
    };
}

namespace {

Result<std::string> json_string(const nlohmann::json &j, const char *key, std::size_t max = 256)
{
    if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>().size() > max)
        return fail(fmt::format("\"{}\" is missing or not a short string", key));
    return j[key].get<std::string>();
}

bool json_bool(const nlohmann::json &j, const char *key)
{
    return j.contains(key) && j[key].is_boolean() && j[key].get<bool>();
}

Result<std::vector<NetAddress>> json_addresses(const nlohmann::json &j, const char *key)
{
    std::vector<NetAddress> out;
    if (!j.contains(key) || !j[key].is_array() || j[key].size() > 64)
        return fail(fmt::format("\"{}\" is not a list of addresses", key));
    for (const auto &a : j[key]) {
        if (!a.is_object())
            return fail(fmt::format("\"{}\" holds something that is not an address", key));
        NetAddress na;
        na.family = RESCUEVM_TRY(json_string(a, "family"));
        na.address = RESCUEVM_TRY(json_string(a, "address"));
        na.scope = RESCUEVM_TRY(json_string(a, "scope"));
        auto ip = IpAddress::parse(na.address);
        if (!ip || (na.family == "ipv6") != ip->v6 || !a.contains("prefix") || !a["prefix"].is_number_unsigned() ||
            a["prefix"].get<unsigned>() > ip->bits())
            return fail(fmt::format("\"{}\": {} is not a valid address with its prefix", key, na.address));
        na.prefix = a["prefix"].get<unsigned>();
        out.push_back(na);
    }
    return out;
}

Result<std::vector<std::string>> json_ips(const nlohmann::json &j, const char *key)
{
    std::vector<std::string> out;
    if (!j.contains(key) || !j[key].is_array() || j[key].size() > 64)
        return fail(fmt::format("\"{}\" is not a list", key));
    for (const auto &v : j[key]) {
        if (!v.is_string() || !IpAddress::parse(v.get<std::string>()))
            return fail(fmt::format("\"{}\" holds something that is not an IP address", key));
        out.push_back(v.get<std::string>());
    }
    return out;
}

} // namespace

Result<NetworkFacts> network_facts_from_json(const nlohmann::json &j)
{
    if (!j.is_object())
        return fail("not an object");
    NetworkFacts f;
    f.found = json_bool(j, "found");
    f.uplink = RESCUEVM_TRY(json_string(j, "uplink", 15));
    for (char c : f.uplink)
        if (!std::isalnum(static_cast<unsigned char>(c)) && std::string_view("_-.@:").find(c) == std::string_view::npos)
            return fail("\"uplink\" is not an interface name");
    f.mac = RESCUEVM_TRY(json_string(j, "mac", 17));
    if (f.mac.size() != 17)
        return fail("\"mac\" is not a MAC address");
    for (std::size_t i = 0; i < f.mac.size(); ++i)
        if (i % 3 == 2 ? f.mac[i] != ':' : !std::isxdigit(static_cast<unsigned char>(f.mac[i])))
            return fail("\"mac\" is not a MAC address");
    if (j.contains("ifindex") && j["ifindex"].is_number_integer())
        f.ifindex = j["ifindex"].get<int>();
    if (j.contains("mtu") && j["mtu"].is_number_unsigned() && j["mtu"].get<unsigned>() >= 68 &&
        j["mtu"].get<unsigned>() <= 65535)
        f.mtu = j["mtu"].get<unsigned>();
    f.up = json_bool(j, "up");
    f.carrier = json_bool(j, "carrier");
    f.kind = RESCUEVM_TRY(json_string(j, "kind", 32));
    f.addresses = RESCUEVM_TRY(json_addresses(j, "addresses"));
    f.link_local = RESCUEVM_TRY(json_addresses(j, "link_local"));
    f.gateways = RESCUEVM_TRY(json_ips(j, "gateways"));
    f.dns = RESCUEVM_TRY(json_ips(j, "dns"));
    if (!j.contains("routes") || !j["routes"].is_array() || j["routes"].size() > 64)
        return fail("\"routes\" is not a list");
    for (const auto &r : j["routes"]) {
        if (!r.is_object())
            return fail("\"routes\" holds something that is not a route");
        NetRoute nr;
        nr.family = RESCUEVM_TRY(json_string(r, "family"));
        nr.destination = RESCUEVM_TRY(json_string(r, "destination"));
        nr.gateway = RESCUEVM_TRY(json_string(r, "gateway"));
        nr.gateway_outside_prefix = json_bool(r, "gateway_outside_prefix");
        std::string dest = nr.destination.substr(0, nr.destination.find('/'));
        if ((nr.destination != "default" && !IpAddress::parse(dest)) ||
            (!nr.gateway.empty() && !IpAddress::parse(nr.gateway)))
            return fail("\"routes\" holds a route that does not parse");
        f.routes.push_back(nr);
    }
    f.dhcp = json_bool(j, "dhcp");
    f.dynamic_v4 = json_bool(j, "dynamic_v4");
    // Which clients served the uplink (for the addressing decision); how to hand them
    // over is in the claim record, never taken from here.
    if (j.contains("dhcp_clients") && j["dhcp_clients"].is_array() && j["dhcp_clients"].size() <= 16)
        for (const auto &c : j["dhcp_clients"]) {
            DhcpClientFacts client;
            if (c.is_object())
                client.name = RESCUEVM_TRY(json_string(c, "name", 16));
            f.dhcp_clients.push_back(client);
        }
    if (j.contains("networkd") && j["networkd"].is_object())
        f.networkd.dhcp_lease = json_bool(j["networkd"], "dhcp_lease");
    f.macvtap_supported = json_bool(j, "macvtap_supported");
    return f;
}

} // namespace rescuevm
