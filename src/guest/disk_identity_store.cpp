// SPDX-License-Identifier: GPL-2.0-or-later
// Keeps the session's recorded disk identities as a JSON file (0600) in runtime_dir.
#include "rescuevm/disk_identity.h"
#include "rescuevm/unique_fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace rescuevm {

namespace {
constexpr int file_version = 1;
}

std::string identities_path(const std::string &runtime_dir)
{
    return runtime_dir + "/disk-identities.json";
}

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

void to_json(nlohmann::json &j, const DiskIdentity &d)
{
    j = {{"path", d.path}, {"name", d.name}, {"table", d.table}, {"disk_id", d.disk_id},
         {"partitions", d.partitions}, {"logical_block_size", d.logical_block_size},
         {"size_bytes", d.size_bytes}, {"backup_header_lba", d.backup_header_lba},
         {"last_lba", d.last_lba}};
}

void from_json(const nlohmann::json &j, DiskIdentity &d)
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
}

void to_json(nlohmann::json &j, const IdentityChange &c)
{
    j = {{"kind", to_string(c.kind)}, {"name", c.name}, {"path", c.path}, {"table", c.table},
         {"old", c.old_value}, {"new", c.new_value}, {"restorable", c.restorable},
         {"message", describe_change(c)}};
    if (c.partition != 0)
        j["partition"] = c.partition;
}

Result<void> save_identities(const std::string &path, const std::vector<DiskIdentity> &disks)
{
    nlohmann::json doc = {{"version", file_version}, {"disks", disks}};
    std::string text = doc.dump(2) + "\n";
    // Written aside and renamed, so a crash never leaves half a record behind.
    std::string tmp = path + ".tmp";
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd)
        return fail(fmt::format("{}: cannot create: {}", tmp, std::strerror(errno)));
    if (::fchmod(fd.get(), 0600) != 0)
        return fail(fmt::format("{}: cannot make it private: {}", tmp, std::strerror(errno)));
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(fmt::format("{}: cannot write: {}", tmp, std::strerror(errno)));
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0)
        return fail(fmt::format("{}: cannot sync: {}", tmp, std::strerror(errno)));
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        return fail(fmt::format("{}: cannot rename to {}: {}", tmp, path, std::strerror(errno)));
    return {};
}

Result<std::vector<DiskIdentity>> load_identities(const std::string &path)
{
    std::ifstream in(path);
    if (!in)
        return fail(fmt::format("{}: cannot read the recorded disk identities: {} (they are "
                                "recorded when the agent starts a session)",
                                path, std::strerror(errno)));
    std::stringstream text;
    text << in.rdbuf();
    try {
        auto doc = nlohmann::json::parse(text.str());
        if (doc.value("version", 0) != file_version)
            return fail(fmt::format("{}: unknown format version {}", path,
                                    doc.value("version", nlohmann::json()).dump()));
        return doc.at("disks").get<std::vector<DiskIdentity>>();
    } catch (const nlohmann::json::exception &e) {
        return fail(fmt::format("{}: not a valid disk identity record: {}", path, e.what()));
    }
}

} // namespace rescuevm
