// SPDX-License-Identifier: GPL-2.0-or-later
// UEFI firmware lookup through QEMU's firmware descriptors (docs/interop/firmware.json).
#include "rescuevm/host/probes.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace rescuevm {
namespace {

bool has(const nlohmann::json &array, const std::string &value)
{
    return array.is_array() && std::find(array.begin(), array.end(), value) != array.end();
}

bool targets_q35(const nlohmann::json &targets)
{
    if (!targets.is_array())
        return false;
    for (const auto &t : targets) {
        if (t.value("architecture", "") != "x86_64")
            continue;
        for (const auto &m : t.value("machines", nlohmann::json::array()))
            if (m.is_string() && m.get<std::string>().find("q35") != std::string::npos)
                return true;
    }
    return false;
}

} // namespace

FirmwareFacts find_uefi_firmware(const std::string &descriptor_dir, bool secure_boot)
{
    namespace fs = std::filesystem;
    FirmwareFacts best;
    int best_score = -1;
    std::error_code ec;
    std::vector<fs::path> files;
    for (const auto &entry : fs::directory_iterator(descriptor_dir, ec))
        if (entry.path().extension() == ".json")
            files.push_back(entry.path());
    if (ec) {
        best.problem = fmt::format("cannot read QEMU firmware descriptors in {}: {}: install the ovmf package, "
                                   "or set vm.firmware = \"bios\"", descriptor_dir, ec.message());
        return best;
    }
    std::sort(files.begin(), files.end()); // the numeric prefixes are the packager's priority
    for (const auto &file : files) {
        std::ifstream in(file);
        auto desc = nlohmann::json::parse(in, nullptr, false);
        if (desc.is_discarded() || !desc.is_object())
            continue;
        if (!has(desc.value("interface-types", nlohmann::json::array()), "uefi") ||
            !targets_q35(desc.value("targets", nlohmann::json::array())))
            continue;
        const auto &mapping = desc.value("mapping", nlohmann::json::object());
        if (mapping.value("device", "") != "flash" || !mapping.contains("executable") ||
            !mapping.contains("nvram-template"))
            continue;
        auto features = desc.value("features", nlohmann::json::array());
        bool sb = has(features, "secure-boot");
        if (sb != secure_boot || (secure_boot && !has(features, "enrolled-keys")))
            continue;
        std::string code = mapping["executable"].value("filename", "");
        std::string vars = mapping["nvram-template"].value("filename", "");
        if (code.empty() || vars.empty() || !fs::exists(code) || !fs::exists(vars))
            continue;
        int score = code.find("_4M") != std::string::npos ? 1 : 0; // 4M: room for Windows' variables
        if (score > best_score) {
            best_score = score;
            best = FirmwareFacts{true, file.string(), code, vars,
                                 mapping["executable"].value("format", "raw"), sb, ""};
        }
    }
    if (!best.found)
        best.problem = fmt::format("no {}UEFI firmware for x86_64 q35 described in {}: install the ovmf package, "
                                   "or set vm.firmware = \"bios\"",
                                   secure_boot ? "secure-boot " : "", descriptor_dir);
    return best;
}

} // namespace rescuevm
