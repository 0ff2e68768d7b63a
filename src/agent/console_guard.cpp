// SPDX-License-Identifier: GPL-2.0-or-later
// Console protection for a session: kernel.sysrq and kernel.ctrl-alt-del set, ctrl-alt-del.target masked at runtime, all recorded and given back.
#include "rescuevm/agent/console_guard.h"

#include "rescuevm/core/console.h"
#include "rescuevm/sys/files.h"
#include "rescuevm/sys/process.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>

namespace rescuevm {
namespace {

using namespace std::chrono_literals;

struct Record {
    unsigned sysrq = 0;
    unsigned ctrl_alt_del = 0;
    bool masked = false; // we masked ctrl-alt-del.target
};

Result<unsigned> read_sysctl(const ConsoleGuardPaths &p, const std::string &name)
{
    std::string path = p.proc_sys + "/kernel/" + name;
    auto text = RESCUEVM_TRY(read_small_file(path, path, 64));
    if (!text)
        return fail(fmt::format("{} is missing", path));
    unsigned v = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc())
        return fail(fmt::format("{}: \"{}\" is not a number", path, *text));
    return v;
}

Result<void> write_sysctl(const ConsoleGuardPaths &p, const std::string &name, unsigned value)
{
    std::string path = p.proc_sys + "/kernel/" + name;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    std::string text = fmt::format("{}\n", value);
    if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return fail(fmt::format("cannot set {} to {}: {}", path, value, errno_text(errno)));
    return {};
}

Result<std::optional<Record>> load(const std::string &path)
{
    auto text = RESCUEVM_TRY(read_small_file(path, "console record " + path, 4096));
    if (!text)
        return std::nullopt;
    auto j = nlohmann::json::parse(*text, nullptr, false);
    auto number = [&](const char *key) -> std::optional<unsigned> {
        if (!j.is_object() || !j.contains(key) || !j[key].is_number_unsigned() || j[key].get<std::uint64_t>() > 0xffff)
            return std::nullopt;
        return j[key].get<unsigned>();
    };
    auto sysrq = number("sysrq"), cad = number("ctrl_alt_del");
    if (!sysrq || !cad || !j.contains("masked") || !j["masked"].is_boolean())
        return fail(fmt::format("console record {} is damaged: remove it (the kernel settings stay as they are)", path));
    return Record{*sysrq, *cad, j["masked"].get<bool>()};
}

Result<void> save(const std::string &path, const Record &r)
{
    nlohmann::json j = {{"sysrq", r.sysrq}, {"ctrl_alt_del", r.ctrl_alt_del}, {"masked", r.masked}};
    return write_file_atomic(path, j.dump() + "\n", 0600);
}

Result<RunResult> systemctl(std::vector<std::string> args)
{
    SpawnOptions o;
    o.argv = {"systemctl"};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    return run_to_completion(o, 60s);
}

std::string trimmed(std::string s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

} // namespace

Result<std::vector<std::string>> protect_console(const ConsoleGuardPaths &p)
{
    std::vector<std::string> said;
    auto earlier = RESCUEVM_TRY(load(p.record));
    Record r;
    if (earlier) {
        r = *earlier; // this boot's originals, recorded by an earlier agent
    } else {
        r.sysrq = RESCUEVM_TRY(read_sysctl(p, "sysrq"));
        r.ctrl_alt_del = RESCUEVM_TRY(read_sysctl(p, "ctrl-alt-del"));
        RESCUEVM_TRY(save(p.record, r));
    }
    unsigned sysrq = restricted_sysrq(r.sysrq);
    RESCUEVM_TRY(write_sysctl(p, "sysrq", sysrq));
    RESCUEVM_TRY(write_sysctl(p, "ctrl-alt-del", kCtrlAltDelSignalsInit));
    said.push_back(fmt::format("kernel.sysrq {} -> {} (only log level and sync; no reboot, crash or kill from a "
                               "console keyboard or a serial break), kernel.ctrl-alt-del {} -> 0",
                               r.sysrq, sysrq, r.ctrl_alt_del));
    if (::access(p.systemd_dir.c_str(), F_OK) != 0) {
        said.push_back("no systemd: Ctrl-Alt-Del signals PID 1, which ignores it");
        return said;
    }
    auto state = RESCUEVM_TRY(systemctl({"is-enabled", kCtrlAltDelUnit}));
    std::string enabled = trimmed(state.output);
    if (enabled.starts_with("masked") && !r.masked) {
        said.push_back(fmt::format("{} is masked already ({})", kCtrlAltDelUnit, enabled));
    } else {
        auto mask = RESCUEVM_TRY(systemctl({"mask", "--runtime", kCtrlAltDelUnit}));
        if (!mask.ok())
            return fail(fmt::format("systemctl mask --runtime {}: {}: {}", kCtrlAltDelUnit, mask.status.describe(),
                                    trimmed(mask.output)));
        r.masked = true;
        RESCUEVM_TRY(save(p.record, r));
        said.push_back(fmt::format("{} masked until the agent stops (systemctl mask --runtime): Ctrl-Alt-Del on "
                                   "the console does not reboot the host",
                                   kCtrlAltDelUnit));
    }
    auto burst = systemctl({"show", "--property=CtrlAltDelBurstAction", "--value"});
    if (burst && burst->ok() && trimmed(burst->output) != "none")
        said.push_back(fmt::format("warning: systemd's CtrlAltDelBurstAction is {}: seven Ctrl-Alt-Del within 2 s "
                                   "on a keyboard the VM does not hold bypass the mask; the rescue image should "
                                   "set CtrlAltDelBurstAction=none (docs/runbook-boot.md)",
                                   trimmed(burst->output)));
    return said;
}

Result<std::vector<std::string>> release_console(const ConsoleGuardPaths &p)
{
    std::vector<std::string> said;
    auto record = RESCUEVM_TRY(load(p.record));
    if (!record)
        return said;
    RESCUEVM_TRY(write_sysctl(p, "sysrq", record->sysrq));
    RESCUEVM_TRY(write_sysctl(p, "ctrl-alt-del", record->ctrl_alt_del));
    said.push_back(fmt::format("kernel.sysrq and kernel.ctrl-alt-del back to {} and {}", record->sysrq,
                               record->ctrl_alt_del));
    if (record->masked && ::access(p.systemd_dir.c_str(), F_OK) == 0) {
        auto unmask = RESCUEVM_TRY(systemctl({"unmask", "--runtime", kCtrlAltDelUnit}));
        if (!unmask.ok())
            return fail(fmt::format("systemctl unmask --runtime {}: {}: {}", kCtrlAltDelUnit,
                                    unmask.status.describe(), trimmed(unmask.output)));
        said.push_back(fmt::format("{} unmasked", kCtrlAltDelUnit));
    }
    ::unlink(p.record.c_str());
    return said;
}

} // namespace rescuevm
