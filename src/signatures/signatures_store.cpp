// SPDX-License-Identifier: GPL-2.0-or-later
// Keeps the session's recorded disk signatures as a JSON file (0600, written atomically) in runtime_dir.
#include "rescuevm/signatures/disk_signatures.h"

#include "rescuevm/sys/files.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace rescuevm {

namespace {
constexpr int file_version = 1;
}


Result<void> save_signatures(const std::string &path, const std::vector<DiskSignature> &disks)
{
    nlohmann::json doc = {{"version", file_version}, {"disks", disks}};
    return write_file_atomic(path, doc.dump(2) + "\n", 0600);
}

Result<std::vector<DiskSignature>> load_signatures(const std::string &path)
{
    auto text = RESCUEVM_TRY(read_small_file(path, "recorded disk signatures " + path));
    if (!text)
        return fail(fmt::format("{}: no recorded disk signatures (they are recorded when the agent starts a "
                                "session)",
                                path));
    try {
        auto doc = nlohmann::json::parse(*text);
        if (doc.value("version", 0) != file_version)
            return fail(fmt::format("{}: unknown format version {}", path,
                                    doc.value("version", nlohmann::json()).dump()));
        return doc.at("disks").get<std::vector<DiskSignature>>();
    } catch (const nlohmann::json::exception &e) {
        return fail(fmt::format("{}: not a valid disk signature record: {}", path, e.what()));
    }
}

} // namespace rescuevm
