// SPDX-License-Identifier: GPL-2.0-or-later
// The QEMU guest agent's protocol (qemu-ga on virtio-serial): requests, a bounded reader of untrusted replies, the facts they carry. Pure.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rescuevm {

// What the guest agent told about the guest. Every string came from the guest: cut to a
// bounded length and made printable (no control bytes, no terminal escapes) when parsed.
struct GuestInterface {
    std::string name, mac;
    std::vector<std::string> addresses; // "203.0.113.10/32", "fe80::1/64"
};
struct GuestFacts {
    std::string agent_version;          // guest-info "version"
    std::string os_name, os_version, os_version_id, os_id, kernel_release, machine; // guest-get-osinfo
    std::string hostname;               // guest-get-host-name
    std::vector<GuestInterface> interfaces; // guest-network-get-interfaces
};

// Bounds on what is kept from the guest.
inline constexpr std::size_t kGuestStringMax = 256;
inline constexpr std::size_t kGuestInterfacesMax = 32;
inline constexpr std::size_t kGuestAddressesMax = 32; // per interface

// One request line: {"execute":NAME[,"arguments":ARGS]}\n.
std::string qga_request(const std::string &name, const nlohmann::json &arguments = nullptr);

// The resynchronisation: a 0xFF byte (qemu-ga drops any half-read request when it sees it),
// then guest-sync-delimited, whose answer is 0xFF followed by {"return": id}.
std::string qga_sync_request(std::uint64_t id);

// Splits what the guest agent sends into JSON objects, bounded: a line longer than
// max_line is dropped whole (and counted), a 0xFF byte starts afresh (the sync delimiter),
// nesting deeper than max_depth is refused before parsing. Never throws.
class QgaReader {
public:
    explicit QgaReader(std::size_t max_line = 256 * 1024, unsigned max_depth = 16)
        : max_line_(max_line), max_depth_(max_depth)
    {
    }

    // Feeds bytes; complete objects are queued for next().
    void feed(std::string_view bytes);
    // The next complete JSON object, or nullopt.
    std::optional<nlohmann::json> next();
    // After a 0xFF: what came before it is dropped, and a reply that follows belongs to the sync.
    bool saw_delimiter() const { return delimiters_ > 0; }
    void reset();

    std::size_t buffered() const { return line_.size(); }
    std::size_t dropped_lines() const { return dropped_; }

private:
    void finish_line();

    std::size_t max_line_;
    unsigned max_depth_;
    std::string line_;
    bool skipping_ = false; // inside an over-long line: drop until its end
    std::size_t dropped_ = 0;
    unsigned delimiters_ = 0;
    std::vector<nlohmann::json> ready_;
};

// A reply is {"return": ...} or {"error": {"class", "desc"}}; anything else is not a reply.
struct QgaReply {
    bool ok = false;
    nlohmann::json value;   // "return"
    std::string error;      // "desc (class)", made printable
};
std::optional<QgaReply> qga_reply(const nlohmann::json &message);

// Whether a message is the answer to guest-sync-delimited with this id.
bool qga_is_sync_reply(const nlohmann::json &message, std::uint64_t id);

// The parsers take the "return" value of their command; missing or wrong fields stay empty.
void qga_parse_info(const nlohmann::json &value, GuestFacts &facts);
void qga_parse_osinfo(const nlohmann::json &value, GuestFacts &facts);
void qga_parse_host_name(const nlohmann::json &value, GuestFacts &facts);
void qga_parse_interfaces(const nlohmann::json &value, GuestFacts &facts);

// A guest string made safe for a log line or a terminal: printable ASCII and valid UTF-8
// only (anything else becomes '?'), cut at `max` bytes.
std::string guest_text(std::string_view text, std::size_t max = kGuestStringMax);

// Length (2-4) of the valid UTF-8 sequence of a printable character at text[i], or 0 (ASCII,
// invalid, overlong, surrogate, or an encoded C1 control U+0080..U+009F).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i);

// The guest's addresses (without prefix, loopback and link-local left out) that are also the
// server's (`server`: "203.0.113.10/32" or bare addresses). Compared as addresses, not text.
std::vector<std::string> guest_server_addresses(const GuestFacts &facts, const std::vector<std::string> &server);

// "Windows Server 2022 Datacenter (kernel 10.0.20348)": name, version unless the name has it, kernel.
std::string guest_os_line(const GuestFacts &facts);

} // namespace rescuevm
