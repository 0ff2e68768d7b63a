// SPDX-License-Identifier: GPL-2.0-or-later
// Disk signatures as JSON: the record file's entries and the changes `signatures --json` and `status` show.
#include "rescuevm/core/signatures.h"

#include <nlohmann/json.hpp>

namespace rescuevm {

void to_json(nlohmann::json &j, const PartitionGuid &p)
{
    j = {{"number", p.number}, {"guid", p.guid}, {"type_guid", p.type_guid},
         {"first_lba", p.first_lba}, {"last_lba", p.last_lba}};
}

void from_json(const nlohmann::json &j, PartitionGuid &p)
{
    j.at("number").get_to(p.number);
    j.at("guid").get_to(p.guid);
    p.type_guid = j.value("type_guid", "");
    j.at("first_lba").get_to(p.first_lba);
    j.at("last_lba").get_to(p.last_lba);
}

void to_json(nlohmann::json &j, const DiskSignature &d)
{
    j = {{"path", d.path}, {"name", d.name}, {"table", d.table}, {"disk_id", d.disk_id},
         {"partitions", d.partitions}, {"logical_block_size", d.logical_block_size},
         {"size_bytes", d.size_bytes}, {"backup_header_lba", d.backup_header_lba},
         {"last_lba", d.last_lba},
         {"identity",
          {{"major", d.identity.major}, {"minor", d.identity.minor}, {"size_bytes", d.identity.size_bytes},
           {"logical_block_size", d.identity.logical_block_size},
           {"physical_block_size", d.identity.physical_block_size}, {"serial", d.identity.serial},
           {"wwn", d.identity.wwn}, {"backing_file", d.identity.backing_file}}}};
}

void from_json(const nlohmann::json &j, DiskSignature &d)
{
    j.at("path").get_to(d.path);
    j.at("name").get_to(d.name);
    j.at("table").get_to(d.table);
    j.at("disk_id").get_to(d.disk_id);
    j.at("partitions").get_to(d.partitions);
    j.at("logical_block_size").get_to(d.logical_block_size);
    d.size_bytes = j.value("size_bytes", std::uint64_t{0});
    d.backup_header_lba = j.value("backup_header_lba", std::uint64_t{0});
    d.last_lba = j.value("last_lba", std::uint64_t{0});
    d.identity.name = d.name;
    d.identity.path = d.path;
    if (auto it = j.find("identity"); it != j.end() && it->is_object()) {
        const auto &id = *it;
        d.identity.major = id.value("major", 0u);
        d.identity.minor = id.value("minor", 0u);
        d.identity.size_bytes = id.value("size_bytes", std::uint64_t{0});
        d.identity.logical_block_size = id.value("logical_block_size", 512u);
        d.identity.physical_block_size = id.value("physical_block_size", 512u);
        d.identity.serial = id.value("serial", "");
        d.identity.wwn = id.value("wwn", "");
        d.identity.backing_file = id.value("backing_file", "");
    }
}

void to_json(nlohmann::json &j, const SignatureChange &c)
{
    j = {{"kind", to_string(c.kind)}, {"name", c.name}, {"path", c.path}, {"table", c.table},
         {"old", c.old_value}, {"new", c.new_value}, {"restorable", c.restorable},
         {"message", describe_change(c)}};
    if (c.partition != 0)
        j["partition"] = c.partition;
}

} // namespace rescuevm
