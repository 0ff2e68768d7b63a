// SPDX-License-Identifier: GPL-2.0-or-later
// Renders plans and inventories: JSON for machines, short tables for people.
#include "rescuevm/core/report.h"


#include "rescuevm/core/qemu_argv.h"

#include <fmt/format.h>

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

nlohmann::json network_json(const NetworkFacts &net, const Config &config)
{
    nlohmann::json out = network_facts_json(net);
    out["mode"] = to_string(config.network.mode);
    out["model"] = to_string(config.network.model);
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
            {"host", {{"memory_bytes", plan.host.memory_bytes}, {"cpus", plan.host.cpus}, {"kvm", plan.host.kvm_usable}}},
            {"checks", checks},
            {"warnings", plan.warnings},
            {"disks", disks},
            {"network", network_json(plan.host.network, plan.config)},
            {"vm", {{"memory_bytes", plan.vm_memory_bytes}, {"cpus", plan.vm_cpus},
                    {"accel", to_string(plan.config.vm.accel)}, {"firmware", to_string(plan.config.vm.firmware)},
                    {"bus", to_string(plan.config.disks.bus)}, {"image", plan.host.image.path}}},
            {"qemu", {{"binary", plan.config.paths.qemu}, {"argv", argv}}}};
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
    out += fmt::format("\nVM: {} RAM, {} CPUs, disks on {}\n", human_size(plan.vm_memory_bytes), plan.vm_cpus,
                       to_string(plan.config.disks.bus));
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
        {"dhcp_client", f.dhcp_client},
        {"macvtap_supported", f.macvtap_supported},
        {"problem", f.problem},
    };
}

} // namespace rescuevm
