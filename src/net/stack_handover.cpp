// SPDX-License-Identifier: GPL-2.0-or-later
// The hand-over steps: dispatch, systemd-networkd (runtime drop-in, networkctl), and running system programs.
#include "stack_handover.h"

#include "rescuevm/host/dhcp_clients.h"
#include "rescuevm/sys/files.h"
#include "rescuevm/sys/log.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <thread>

namespace rescuevm::net {

namespace {

auto logger() { return log::get("network"); }

std::string last_line(std::string text)
{
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.pop_back();
    auto nl = text.rfind('\n');
    return nl == std::string::npos ? text : text.substr(nl + 1);
}

std::string netif_dir() { return StackPaths{}.netif_dir; }

// The uplink's AdministrativeState as `networkctl status` reports it, or "" when this
// networkctl cannot say (no JSON output before systemd 250).
std::string networkctl_state(const std::string &uplink)
{
    auto r = run_command({"networkctl", "--json=short", "status", uplink}, std::chrono::seconds(10));
    if (!r)
        return "";
    auto j = nlohmann::json::parse(r->output, nullptr, false);
    if (j.is_object() && j.contains("AdministrativeState") && j["AdministrativeState"].is_string())
        return j["AdministrativeState"].get<std::string>();
    return "";
}

Result<void> networkd_let_go(const HandoverStep &step, const HandoverContext &c)
{
    std::string dir = step.dropin.substr(0, step.dropin.rfind('/'));
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        return fail("network: cannot create " + dir + " for the systemd-networkd drop-in: " + errno_text(errno));
    if (auto r = write_file_atomic(step.dropin, networkd_dropin_text(c.uplink, c.mac, c.macvtap), 0644); !r)
        return fail("network: cannot write the systemd-networkd drop-in: " + r.error().message);
    RESCUEVM_TRY(run_command({"networkctl", "reload"}, std::chrono::seconds(20)));
    std::string state;
    bool unmanaged = wait_until([&] {
        state = networkd_admin_state(netif_dir(), c.ifindex);
        return state == "unmanaged";
    }, std::chrono::seconds(10));
    std::string reported = networkctl_state(c.uplink);
    if (!unmanaged || (!reported.empty() && reported != "unmanaged"))
        return fail(fmt::format("network: systemd-networkd still manages {} (state {}) 10 s after {} told it not to: a "
                                ".network file sorting before it may match {}; look at networkctl status {}",
                                c.uplink, reported.empty() ? state : reported, step.dropin, c.uplink, c.uplink));
    logger()->info("systemd-networkd leaves {} alone: {} (networkctl status: {})", c.uplink, step.dropin,
                   reported.empty() ? "unmanaged" : reported);
    return {};
}

// Whether `ifindex` has an IPv6 address still in duplicate address detection
// (/proc/net/if_inet6: address, ifindex, prefix length, scope, flags, name; all hex).
bool ipv6_tentative(const std::string &proc_root, int ifindex)
{
    auto text = read_small_file(proc_root + "/net/if_inet6", "the IPv6 address list");
    if (!text || !*text)
        return false;
    std::istringstream in(**text);
    std::string address, index, prefix, scope, flags, name;
    while (in >> address >> index >> prefix >> scope >> flags >> name)
        if (std::strtoul(index.c_str(), nullptr, 16) == static_cast<unsigned long>(ifindex) &&
            (std::strtoul(flags.c_str(), nullptr, 16) & 0x40 /* IFA_F_TENTATIVE */))
            return true;
    return false;
}

Result<void> networkd_take_back(const HandoverStep &step, const HandoverContext &c)
{
    if (::unlink(step.dropin.c_str()) != 0 && errno != ENOENT)
        return fail("network: cannot remove " + step.dropin + ": " + errno_text(errno));
    RESCUEVM_TRY(run_command({"networkctl", "reload"}, std::chrono::seconds(20)));
    if (step.admin_state.empty() || step.admin_state == "unmanaged") {
        logger()->info("removed {}; systemd-networkd did not manage {} before", step.dropin, c.uplink);
        return {};
    }
    // networkd re-adds the link-local address as it takes the link back; a route via a
    // link-local gateway (fe80::1) it sets while that address is still tentative fails
    // ("Nexthop has invalid gateway") and leaves the link "failed": then once DAD is
    // over, `networkctl reconfigure` again (three tries).
    std::string state;
    for (int attempt = 1;; ++attempt) {
        RESCUEVM_TRY(run_command({"networkctl", "reconfigure", c.uplink}, std::chrono::seconds(20)));
        wait_until([&] {
            state = networkd_admin_state(netif_dir(), c.ifindex);
            return state == "configured" || state == "failed";
        }, std::chrono::seconds(10));
        if (state != "failed" || attempt == 3)
            break;
        logger()->warn("systemd-networkd failed to configure {} again (a route via a link-local gateway set "
                       "before its link-local address was ready?): networkctl reconfigure {} once more",
                       c.uplink, c.uplink);
        wait_until([&] { return !ipv6_tentative(c.proc_root, c.ifindex); }, std::chrono::seconds(5));
    }
    if (state.empty() || state == "unmanaged" || state == "failed")
        return fail(fmt::format("network: systemd-networkd did not take {} back (state {} after networkctl "
                                "reconfigure {}): look at networkctl status {} and its journal",
                                c.uplink, state.empty() ? "none" : state, c.uplink, c.uplink));
    logger()->info("systemd-networkd manages {} again ({}; {} removed)", c.uplink, state, step.dropin);
    return {};
}

} // namespace

Result<RunResult> run_command(const std::vector<std::string> &argv, std::chrono::milliseconds limit)
{
    std::string program;
    for (const char *dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"}) {
        std::string candidate = dir + argv.at(0);
        struct stat st{};
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
            program = candidate;
            break;
        }
    }
    std::string shown = fmt::format("{}", fmt::join(argv, " "));
    if (program.empty())
        return fail("network: " + argv.at(0) + " is not installed (looked in /usr/sbin, /usr/bin, /sbin, /bin), so `" +
                    shown + "` cannot run: install it in the rescue image");
    SpawnOptions options;
    options.argv = argv;
    options.argv[0] = program;
    options.clear_environment = true;
    options.env_set = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
    auto result = run_to_completion(options, limit);
    if (!result)
        return fail("network: `" + shown + "`: " + result.error().message);
    if (!result->ok())
        return fail("network: `" + shown + "` " + result->status.describe() +
                    (result->output.empty() ? std::string() : ": " + last_line(result->output)));
    logger()->debug("ran `{}`", shown);
    return result;
}

bool wait_until(const std::function<bool()> &done, std::chrono::milliseconds limit)
{
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (done())
            return true;
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

Result<void> let_go(const HandoverStep &step, const HandoverContext &context)
{
    if (step.kind == HandoverStep::Kind::networkd)
        return networkd_let_go(step, context);
    return let_go_dhcp_client(step, context);
}

Result<void> keep_off_macvtap(const HandoverStep &step, const HandoverContext &context)
{
    if (step.kind == HandoverStep::Kind::dhcpcd_manager)
        return keep_dhcpcd_off(step, context);
    return {};
}

Result<void> take_back(const HandoverStep &step, const HandoverContext &context)
{
    if (step.kind == HandoverStep::Kind::networkd)
        return networkd_take_back(step, context);
    return take_back_dhcp_client(step, context);
}

} // namespace rescuevm::net
