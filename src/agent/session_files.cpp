// SPDX-License-Identifier: GPL-2.0-or-later
// Session files in runtime_dir: created before QEMU starts, removed when the session ends; the QEMU record.
#include "rescuevm/agent/session_files.h"

#include "rescuevm/configdrive/config_drive_iso.h"
#include "rescuevm/core/config_drive.h"
#include "rescuevm/host/admin_password.h"
#include "rescuevm/host/probes.h"
#include "rescuevm/sys/files.h"
#include "rescuevm/sys/process.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>

namespace rescuevm {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::size_t kMaxRecordBytes = 64 * 1024;

Result<void> copy_file_private(const std::string &from, const std::string &to)
{
    auto content = RESCUEVM_TRY(read_small_file(from, "UEFI variable template " + from, 64 << 20));
    if (!content)
        return fail(fmt::format("UEFI variable template {} is missing: reinstall the ovmf package", from));
    return write_file_atomic(to, *content, 0600);
}


} // namespace

Result<void> prepare_runtime_dir(const std::string &dir)
{
    if (::mkdir(dir.c_str(), 0700) == 0)
        return {};
    if (errno != EEXIST)
        return fail(fmt::format("runtime directory {}: cannot create it: {}: fix paths.runtime_dir", dir,
                                errno_text(errno)));
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return fail(fmt::format("runtime directory {} is not a directory: fix paths.runtime_dir", dir));
    return {};
}

void reset_session_files(const RuntimePaths &paths)
{
    for (const std::string &file : {paths.overlay(), paths.uefi_vars(), paths.config_drive()})
        ::unlink(file.c_str());
}

Result<void> prepare_session_files(const Plan &plan)
{
    const RuntimePaths &paths = plan.paths;
    RESCUEVM_TRY(prepare_runtime_dir(paths.dir));
    if (!plan.boot.direct_kernel && !fs::exists(paths.overlay())) {
        // The image stays untouched: every write of the VM goes to this overlay.
        SpawnOptions create;
        create.argv = {sibling_tool(plan.qemu, "qemu-img"), "create", "-q", "-f", "qcow2", "-F",
                       plan.boot.image_format, "-b", plan.boot.image, paths.overlay()};
        // Over NBD the overlay records no backing file: QEMU gets its backing only from the
        // -blockdev graph (backing=image), so nothing ever connects to a URL written in a file.
        if (plan.boot.nbd)
            create.argv = {sibling_tool(plan.qemu, "qemu-img"), "create", "-q", "-f", "qcow2", paths.overlay(),
                           std::to_string(plan.boot.image_size)};
        create.umask = 077;
        auto run = RESCUEVM_TRY(run_to_completion(create, 60s));
        if (!run.ok())
            return fail(fmt::format("cannot create the overlay {}: qemu-img {}: {}", paths.overlay(),
                                    run.status.describe(), run.output));
    }
    if (plan.firmware.kind == Firmware::uefi && !fs::exists(paths.uefi_vars()))
        RESCUEVM_TRY(copy_file_private(plan.firmware.vars_template, paths.uefi_vars()));

    auto password = RESCUEVM_TRY(read_admin_password(plan.guest.admin_password_file));
    auto uuid = RESCUEVM_TRY(fresh_instance_uuid());
    ConfigDriveInput input;
    input.instance_uuid = uuid;
    input.vm_name = plan.vm.name;
    input.admin_user = plan.guest.admin_user;
    input.admin_password = password ? &*password : nullptr;
    if (plan.network.mode == NetworkMode::macvtap)
        input.network = plan.network.uplink;
    RESCUEVM_TRY(build_config_drive(input, paths.dir));
    return {};
}

void remove_session_files(const RuntimePaths &paths)
{
    for (const std::string &file : {paths.overlay(), paths.uefi_vars(), paths.config_drive(), paths.qemu_record(),
                                    paths.qmp_socket(), paths.vnc_socket(), paths.control_socket(),
                                    paths.guest_serial_socket(), paths.guest_agent_socket()})
        ::unlink(file.c_str());
}

Result<void> save_qemu_record(const RuntimePaths &paths, const QemuRecord &record)
{
    nlohmann::json j = {{"pid", record.pid},   {"start_time", record.start_time}, {"session_uuid", record.session_uuid},
                        {"boots", record.boots}, {"argv", record.argv}};
    return write_file_atomic(paths.qemu_record(), j.dump() + "\n", 0600);
}

Result<std::optional<QemuRecord>> load_qemu_record(const RuntimePaths &paths)
{
    const std::string path = paths.qemu_record();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
        return errno == ENOENT ? Result<std::optional<QemuRecord>>(std::nullopt)
                               : fail(fmt::format("QEMU record {}: {}", path, errno_text(errno)));
    if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022))
        return fail(fmt::format("QEMU record {} is not a private root-owned file (uid {}, mode {:04o}): not trusted",
                                path, st.st_uid, st.st_mode & 07777));
    auto text = RESCUEVM_TRY(read_small_file(path, "QEMU record " + path, kMaxRecordBytes));
    if (!text)
        return std::optional<QemuRecord>{};
    auto j = nlohmann::json::parse(*text, nullptr, false);
    auto bad = [&](const std::string &why) {
        return fail(fmt::format("QEMU record {} is not usable: {}", path, why));
    };
    if (j.is_discarded() || !j.is_object())
        return bad("not a JSON object (a truncated write?)");
    QemuRecord r;
    if (!j.contains("pid") || !j["pid"].is_number_integer() || j["pid"].get<long long>() <= 1 ||
        j["pid"].get<long long>() > 4194304)
        return bad("no valid pid");
    r.pid = static_cast<pid_t>(j["pid"].get<long long>());
    if (!j.contains("start_time") || !j["start_time"].is_number_unsigned())
        return bad("no valid start_time");
    r.start_time = j["start_time"].get<std::uint64_t>();
    if (!j.contains("session_uuid") || !j["session_uuid"].is_string() ||
        !is_uuid(j["session_uuid"].get<std::string>()))
        return bad("no valid session_uuid");
    r.session_uuid = j["session_uuid"].get<std::string>();
    if (j.contains("boots") && j["boots"].is_number_unsigned() && j["boots"].get<std::uint64_t>() < 1'000'000)
        r.boots = j["boots"].get<unsigned>();
    if (j.contains("argv") && j["argv"].is_array())
        for (const auto &w : j["argv"])
            if (w.is_string())
                r.argv.push_back(w.get<std::string>());
    return std::optional<QemuRecord>(std::move(r));
}

void remove_qemu_record(const RuntimePaths &paths) { ::unlink(paths.qemu_record().c_str()); }

} // namespace rescuevm
