// SPDX-License-Identifier: GPL-2.0-or-later
// The guest agent's protocol: request lines, the bounded reader of what the guest sends, parsers of its facts. Pure.
#include "rescuevm/core/guest_agent_protocol.h"
#include "rescuevm/core/ip_address.h"

#include <fmt/format.h>

#include <algorithm>

namespace rescuevm {
namespace {

constexpr char kDelimiter = '\xff';

// The deepest nesting of [ and { outside strings; stops counting past `limit`.
unsigned nesting_depth(std::string_view text, unsigned limit)
{
    unsigned depth = 0, deepest = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
            if (deepest > limit)
                return deepest;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

std::string string_at(const nlohmann::json &object, const char *key)
{
    if (!object.is_object())
        return {};
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? guest_text(it->get_ref<const std::string &>()) : std::string();
}

} // namespace

std::size_t utf8_sequence_length(std::string_view s, std::size_t i)
{
    auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = b(i);
    std::size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || i + n > s.size())
        return 0;
    for (std::size_t k = 1; k < n; ++k)
        if ((b(i + k) & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && b(i + 1) < 0xA0) || (c == 0xED && b(i + 1) > 0x9F) || (c == 0xF0 && b(i + 1) < 0x90) ||
        (c == 0xF4 && b(i + 1) > 0x8F))
        return 0; // overlong, surrogate or past U+10FFFF
    if (c == 0xC2 && b(i + 1) < 0xA0)
        return 0; // C1 controls (U+0080..U+009F): terminals act on them
    return n;
}

std::string qga_request(const std::string &name, const nlohmann::json &arguments)
{
    nlohmann::json request = {{"execute", name}};
    if (!arguments.is_null())
        request["arguments"] = arguments;
    return request.dump() + "\n";
}

std::string qga_sync_request(std::uint64_t id)
{
    return std::string(1, kDelimiter) + qga_request("guest-sync-delimited", {{"id", id}});
}

void QgaReader::feed(std::string_view bytes)
{
    while (!bytes.empty()) {
        std::size_t stop = bytes.find_first_of(std::string_view("\n\xff", 2));
        std::string_view part = bytes.substr(0, stop);
        if (!skipping_) {
            if (line_.size() + part.size() > max_line_) {
                line_.clear();
                skipping_ = true;
                dropped_++;
            } else {
                line_.append(part);
            }
        }
        if (stop == std::string_view::npos)
            return;
        if (bytes[stop] == kDelimiter) {
            // Whatever came before belongs to no request of ours.
            line_.clear();
            skipping_ = false;
            ready_.clear();
            delimiters_++;
        } else if (skipping_) {
            skipping_ = false;
        } else {
            finish_line();
        }
        bytes.remove_prefix(stop + 1);
    }
}

void QgaReader::finish_line()
{
    std::string line;
    line.swap(line_);
    if (line.find_first_not_of(" \t\r") == std::string::npos)
        return;
    if (nesting_depth(line, max_depth_) > max_depth_) {
        dropped_++;
        return;
    }
    auto message = nlohmann::json::parse(line, nullptr, false);
    if (message.is_discarded() || !message.is_object()) {
        dropped_++;
        return;
    }
    if (ready_.size() >= 16) // a guest that chatters unasked is not queued without end
        ready_.erase(ready_.begin());
    ready_.push_back(std::move(message));
}

std::optional<nlohmann::json> QgaReader::next()
{
    if (ready_.empty())
        return std::nullopt;
    nlohmann::json first = std::move(ready_.front());
    ready_.erase(ready_.begin());
    return first;
}

void QgaReader::reset()
{
    line_.clear();
    skipping_ = false;
    delimiters_ = 0;
    ready_.clear();
}

std::optional<QgaReply> qga_reply(const nlohmann::json &message)
{
    if (!message.is_object())
        return std::nullopt;
    if (auto it = message.find("return"); it != message.end())
        return QgaReply{true, *it, {}};
    auto it = message.find("error");
    if (it == message.end())
        return std::nullopt;
    QgaReply r;
    std::string desc = string_at(*it, "desc"), klass = string_at(*it, "class");
    r.error = fmt::format("{} ({})", desc.empty() ? "no description" : desc, klass.empty() ? "Error" : klass);
    return r;
}

bool qga_is_sync_reply(const nlohmann::json &message, std::uint64_t id)
{
    auto reply = qga_reply(message);
    return reply && reply->ok && reply->value.is_number_unsigned() && reply->value.get<std::uint64_t>() == id;
}

void qga_parse_info(const nlohmann::json &value, GuestFacts &facts)
{
    facts.agent_version = string_at(value, "version");
}

void qga_parse_osinfo(const nlohmann::json &value, GuestFacts &facts)
{
    std::string pretty = string_at(value, "pretty-name");
    facts.os_name = pretty.empty() ? string_at(value, "name") : pretty;
    std::string version = string_at(value, "version");
    facts.os_version_id = string_at(value, "version-id");
    facts.os_version = version.empty() ? facts.os_version_id : version;
    facts.os_id = string_at(value, "id");
    std::string kernel = string_at(value, "kernel-version"), release = string_at(value, "kernel-release");
    // Windows: kernel-version "10.0", kernel-release "20348" (the build); Linux: a release string.
    facts.kernel_release = kernel.empty() || release.empty() ? kernel + release : kernel + "." + release;
    facts.machine = string_at(value, "machine");
}

void qga_parse_host_name(const nlohmann::json &value, GuestFacts &facts)
{
    facts.hostname = string_at(value, "host-name");
}

void qga_parse_interfaces(const nlohmann::json &value, GuestFacts &facts)
{
    facts.interfaces.clear();
    if (!value.is_array())
        return;
    for (const auto &entry : value) {
        if (facts.interfaces.size() >= kGuestInterfacesMax)
            break;
        if (!entry.is_object())
            continue;
        GuestInterface iface;
        iface.name = string_at(entry, "name");
        iface.mac = string_at(entry, "hardware-address");
        auto addresses = entry.find("ip-addresses");
        if (addresses != entry.end() && addresses->is_array()) {
            for (const auto &a : *addresses) {
                if (iface.addresses.size() >= kGuestAddressesMax)
                    break;
                auto ip = IpAddress::parse(string_at(a, "ip-address"));
                if (!ip)
                    continue;
                auto prefix = a.is_object() ? a.find("prefix") : a.end();
                bool has_prefix = prefix != a.end() && prefix->is_number_unsigned() &&
                                  prefix->get<std::uint64_t>() <= ip->bits();
                iface.addresses.push_back(has_prefix ? fmt::format("{}/{}", ip->text(), prefix->get<std::uint64_t>())
                                                     : ip->text());
            }
        }
        facts.interfaces.push_back(std::move(iface));
    }
}

std::string guest_text(std::string_view text, std::size_t max)
{
    std::string out;
    for (std::size_t i = 0; i < text.size() && out.size() < max;) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
            ++i;
        } else if (std::size_t n = c >= 0x80 ? utf8_sequence_length(text, i) : 0; n > 0 && out.size() + n <= max) {
            out.append(text.substr(i, n));
            i += n;
        } else {
            out += '?';
            i += n > 0 ? n : 1;
        }
    }
    return out;
}

std::vector<std::string> guest_server_addresses(const GuestFacts &facts, const std::vector<std::string> &server)
{
    auto parse = [](const std::string &text) { return IpAddress::parse(text.substr(0, text.find('/'))); };
    std::vector<std::string> out;
    for (const auto &iface : facts.interfaces)
        for (const auto &a : iface.addresses) {
            auto ip = parse(a);
            if (!ip || ip->link_local())
                continue;
            for (const auto &s : server)
                if (auto theirs = parse(s); theirs && *theirs == *ip &&
                                            std::find(out.begin(), out.end(), ip->text()) == out.end())
                    out.push_back(ip->text());
        }
    return out;
}

std::string guest_os_line(const GuestFacts &facts)
{
    std::string line = facts.os_name.empty() ? "unknown OS" : facts.os_name;
    const std::string &id = facts.os_version_id.empty() ? facts.os_version : facts.os_version_id;
    if (!facts.os_version.empty() && line.find(id) == std::string::npos)
        line += " " + facts.os_version;
    if (!facts.kernel_release.empty())
        line += " (kernel " + facts.kernel_release + ")";
    return line;
}

} // namespace rescuevm
