// SPDX-License-Identifier: GPL-2.0-or-later
// The agent's use of the guest's own channels: its serial console and its guest agent (signs of life, facts, guest-shutdown, status).
#include "rescuevm/agent/agent.h"

#include "rescuevm/sys/log.h"

#include <fmt/format.h>

#include <algorithm>

namespace rescuevm {
namespace {

namespace sv = supervisor;
using namespace std::chrono_literals;

constexpr auto kSerialConnectDeadline = 30s; // QEMU makes its sockets as it starts
constexpr std::size_t kStatusLines = 10;

std::int64_t age_s(std::int64_t then_ms, std::int64_t now_ms)
{
    return then_ms < 0 ? -1 : (now_ms - then_ms) / 1000;
}

} // namespace

void Agent::start_guest_channels()
{
    console_.connect_qemu(kSerialConnectDeadline);
    guest_agent_.start();
}

void Agent::guest_output()
{
    // The first output of each boot is a sign of life; the policy needs no more than that.
    if (!state_.guest_alive && state_.vm == sv::VmState::running)
        feed(sv::GuestActivity{"it wrote to its serial console"});
}

std::vector<std::string> Agent::server_addresses() const
{
    std::vector<std::string> out;
    for (const auto &a : plan_.network.uplink.addresses)
        out.push_back(fmt::format("{}/{}", a.address, a.prefix));
    return out;
}

void Agent::guest_facts(bool first)
{
    const GuestFacts &f = guest_agent_.facts();
    std::vector<std::string> addresses;
    for (const auto &i : f.interfaces)
        for (const auto &a : i.addresses)
            if (!a.starts_with("127.") && !a.starts_with("::1/") && a != "::1")
                addresses.push_back(a);
    std::string listed = addresses.empty() ? "none" : fmt::format("{}", fmt::join(addresses, " "));
    std::string network;
    if (plan_.network.mode == NetworkMode::macvtap) {
        auto held = guest_server_addresses(f, server_addresses());
        network = held.empty() ? "; it does not hold the server's address yet"
                               : fmt::format("; it holds the server's address {}", fmt::join(held, " "));
    }
    auto log = log::get("guest-agent");
    if (first) {
        log->info("guest agent {}: {}, hostname {}, addresses {}{}",
                  f.agent_version.empty() ? "(version unknown)" : "qemu-ga " + f.agent_version, guest_os_line(f),
                  f.hostname.empty() ? "-" : f.hostname, listed, network);
    } else if (listed != guest_addresses_logged_) {
        log->info("the guest's addresses are now {}{}", listed, network);
    }
    guest_addresses_logged_ = listed;
}

void Agent::boot_screenshot()
{
    if (!qemu_)
        return;
    std::string path = plan_.paths.boot_progress_screenshot();
    qemu_->command("screendump", {{"filename", path}}, 30s, [path](Result<nlohmann::json> r) {
        if (r)
            log::get("supervisor")->info("screenshot of the guest without a sign of life saved to {}", path);
        else
            log::get("supervisor")->warn("screenshot to {} failed: {}, ignoring", path, r.error().message);
    });
}

void Agent::guest_agent_shutdown(const sv::GuestAgentShutdown &action)
{
    std::optional<std::uint64_t> client = action.reply ? replying_to_ : std::nullopt;
    std::string message = action.reply_message;
    guest_agent_.shutdown([this, client, message](bool ok, const std::string &detail) {
        if (ok && client)
            control_.respond(*client, control_ok(message));
        // A refusal goes on to the ACPI button, whose answer the waiting client gets.
        std::optional<std::uint64_t> saved = replying_to_;
        replying_to_ = ok ? std::nullopt : client;
        feed(sv::GuestAgentShutdownDone{ok, detail});
        replying_to_ = saved;
    });
}

StatusGuest Agent::guest_status() const
{
    std::int64_t now = now_ms();
    StatusGuest g;
    g.agent = guest_agent_.answering() ? "answering" : guest_agent_.ever_answered() ? "not answering" : "never answered";
    g.agent_answer_age_s = age_s(guest_agent_.last_answer_ms(), now);
    g.facts = guest_agent_.facts();
    if (plan_.network.mode == NetworkMode::macvtap && !g.facts.interfaces.empty()) {
        g.addresses_compared = true;
        g.holds_server_addresses = guest_server_addresses(g.facts, server_addresses());
    }
    g.console_output_age_s = age_s(console_.last_output_ms(), now);
    g.console_bytes = console_.bytes();
    g.console_clients = console_.clients();
    g.console_writer = console_.writer();
    g.console_log = plan_.paths.guest_console();
    g.console_last_lines = console_.last_lines(kStatusLines);
    g.boot_progress_warned = state_.boot_warned;
    return g;
}

} // namespace rescuevm
