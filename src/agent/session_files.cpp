// SPDX-License-Identifier: GPL-2.0-or-later
// Session files in runtime_dir: created before QEMU starts, removed when the session ends.
#include "rescuevm/host/admin_password.h"
#include "rescuevm/agent/session_files.h"

#include "rescuevm/configdrive/config_drive_iso.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/sys/process.h"
#include "rescuevm/core/secret.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace rescuevm {
namespace {

namespace fs = std::filesystem;

// Runs a short helper (qemu-img) to completion; its output goes to qemu.log.
Result<void> run_helper(const std::vector<std::string> &argv, const std::string &log_path)
{
    SpawnOptions options;
    options.argv = argv;
    options.stdout_path = log_path;
    options.stderr_path = log_path;
    options.new_session = false;
    auto child = RESCUEVM_TRY(spawn(options));
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(child.pidfd.get()), &info, WEXITED) != 0)
        return fail(fmt::format("{}: {}", argv[0], std::strerror(errno)));
    if (info.si_code != CLD_EXITED || info.si_status != 0)
        return fail(fmt::format("{} failed (see {})", argv[0], log_path));
    return {};
}

Result<void> copy_file_private(const std::string &from, const std::string &to)
{
    std::error_code ec;
    fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
    if (ec)
        return fail(fmt::format("cannot copy {} to {}: {}", from, to, ec.message()));
    ::chmod(to.c_str(), 0600);
    return {};
}

std::string qemu_img_for(const std::string &qemu)
{
    auto slash = qemu.rfind('/');
    return slash == std::string::npos ? "qemu-img" : qemu.substr(0, slash + 1) + "qemu-img";
}

} // namespace

Result<void> prepare_runtime_dir(const std::string &dir)
{
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
        return fail(fmt::format("runtime directory {}: {}: fix paths.runtime_dir", dir, ec.message()));
    if (::chmod(dir.c_str(), 0700) != 0)
        return fail(fmt::format("runtime directory {}: {}", dir, std::strerror(errno)));
    return {};
}

Result<PreparedFiles> prepare_session_files(const Plan &plan, const RuntimePaths &paths)
{
    const Config &cfg = plan.config;
    RESCUEVM_TRY(prepare_runtime_dir(paths.dir));
    if (cfg.vm.kernel.empty() && !fs::exists(paths.overlay())) {
        // The image stays untouched: every write of the VM goes to this overlay.
        RESCUEVM_TRY(run_helper({qemu_img_for(cfg.paths.qemu), "create", "-q", "-f", "qcow2", "-F", plan.host.image.format,
                                 "-b", plan.host.image.path, paths.overlay()},
                                paths.qemu_log()));
        ::chmod(paths.overlay().c_str(), 0600);
    }
    if (cfg.vm.firmware == Firmware::uefi && !fs::exists(paths.uefi_vars()))
        RESCUEVM_TRY(copy_file_private(plan.host.firmware.vars_template, paths.uefi_vars()));

    auto password = RESCUEVM_TRY(read_admin_password(cfg.guest.admin_password_file));
    auto uuid = RESCUEVM_TRY(fresh_instance_uuid());
    ConfigDriveInput input;
    input.instance_uuid = uuid;
    input.vm_name = cfg.vm.name;
    input.admin_user = cfg.guest.admin_user;
    input.admin_password = password ? &*password : nullptr;
    if (cfg.network.mode == NetworkMode::macvtap)
        input.network = plan.host.network;
    RESCUEVM_TRY(build_config_drive(input, paths.dir));
    return PreparedFiles{true};
}

void remove_session_files(const RuntimePaths &paths)
{
    for (const std::string &file : {paths.overlay(), paths.uefi_vars(), paths.config_drive(), paths.qemu_record(),
                                    paths.qmp_socket(), paths.vnc_socket(), paths.control_socket()})
        ::unlink(file.c_str());
}

void save_qemu_record(const RuntimePaths &paths, const QemuRecord &record)
{
    nlohmann::json j = {{"pid", record.pid}, {"start_time", record.start_time}, {"session_uuid", record.session_uuid},
                        {"boots", record.boots}};
    std::string tmp = paths.qemu_record() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << j.dump() << "\n";
    }
    ::chmod(tmp.c_str(), 0600);
    if (::rename(tmp.c_str(), paths.qemu_record().c_str()) != 0)
        log::get("supervisor")->warn("cannot write {}: {}; a restarted agent will not find this VM, ignoring",
                                     paths.qemu_record(), std::strerror(errno));
}

std::optional<QemuRecord> load_qemu_record(const RuntimePaths &paths)
{
    std::ifstream in(paths.qemu_record());
    if (!in)
        return std::nullopt;
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return std::nullopt;
    QemuRecord r;
    r.pid = j.value("pid", 0);
    r.start_time = j.value("start_time", std::uint64_t{0});
    r.session_uuid = j.value("session_uuid", "");
    r.boots = j.value("boots", 0u);
    if (r.pid <= 0)
        return std::nullopt;
    return r;
}

void remove_qemu_record(const RuntimePaths &paths) { ::unlink(paths.qemu_record().c_str()); }

} // namespace rescuevm
