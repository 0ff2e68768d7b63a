// SPDX-License-Identifier: GPL-2.0-or-later
// Parses NBD URLs from vm.image and gives the NBD node's QEMU options. Pure.
#include "rescuevm/core/image_source.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>

namespace rescuevm {
namespace {

constexpr std::string_view kInet = "nbd://";
constexpr std::string_view kTcp = "nbd+tcp://";
constexpr std::string_view kUnix = "nbd+unix://";

bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Export names and socket paths: what a shell, a QEMU option list (after comma escaping) and a
// log line read the same. No '%' (no percent decoding: what is written is what is sent).
bool plain_chars(std::string_view s, std::string_view extra)
{
    for (char c : s)
        if (!is_alnum(c) && std::string_view("-._~/+@").find(c) == std::string_view::npos &&
            extra.find(c) == std::string_view::npos)
            return false;
    return true;
}

bool valid_dns_name(std::string_view host)
{
    if (host.empty() || host.size() > 253 || host.front() == '.' || host.back() == '.' || host.front() == '-')
        return false;
    for (char c : host)
        if (!is_alnum(c) && c != '-' && c != '.')
            return false;
    return host.find("..") == std::string_view::npos;
}

bool valid_ipv6(std::string_view host)
{
    if (host.size() < 2 || host.size() > 45)
        return false;
    for (char c : host)
        if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.')
            return false;
    return host.find(':') != std::string_view::npos;
}

} // namespace

bool is_nbd_url(std::string_view text)
{
    return text.starts_with(kInet) || text.starts_with(kTcp) || text.starts_with(kUnix);
}

Result<NbdUrl> parse_nbd_url(std::string_view text)
{
    NbdUrl url;
    std::string_view rest;
    if (text.starts_with(kUnix)) {
        url.unix_socket = true;
        rest = text.substr(kUnix.size());
    } else if (text.starts_with(kTcp)) {
        rest = text.substr(kTcp.size());
    } else if (text.starts_with(kInet)) {
        rest = text.substr(kInet.size());
    } else {
        return fail(fmt::format("\"{}\" is not an NBD URL: write nbd://HOST[:PORT]/EXPORT or "
                                "nbd+unix:///EXPORT?socket=PATH",
                                text));
    }
    std::string_view query;
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    if (rest.find('#') != std::string_view::npos)
        return fail(fmt::format("\"{}\": a fragment (#...) has no meaning in an NBD URL", text));
    auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (!plain_chars(path, ":"))
        return fail(fmt::format("\"{}\": the export name \"{}\" may hold only letters, digits and - . _ ~ / + @ : "
                                "(no percent escapes)",
                                text, path));
    url.export_name = std::string(path);

    if (url.unix_socket) {
        if (!authority.empty())
            return fail(fmt::format("\"{}\": nbd+unix:// takes no host: write nbd+unix:///EXPORT?socket=PATH", text));
        if (!query.starts_with("socket=") || query.find('&') != std::string_view::npos)
            return fail(fmt::format("\"{}\": nbd+unix:// needs exactly one query key, ?socket=PATH (the server's "
                                    "unix socket)",
                                    text));
        std::string_view socket = query.substr(7);
        if (!socket.starts_with('/') || !plain_chars(socket, ""))
            return fail(fmt::format("\"{}\": socket=\"{}\" must be an absolute path of letters, digits and "
                                    "- . _ ~ / + @",
                                    text, socket));
        url.socket = std::string(socket);
        return url;
    }
    if (!query.empty())
        return fail(fmt::format("\"{}\": nbd:// takes no query (?{})", text, query));
    if (authority.find('@') != std::string_view::npos)
        return fail(fmt::format("\"{}\": user names or passwords do not belong in the URL (NBD has none; TLS "
                                "client certificates go in vm.image_tls)",
                                text));
    std::string_view host = authority, port;
    bool port_given = false;
    if (authority.starts_with('[')) {
        auto close = authority.find(']');
        if (close == std::string_view::npos)
            return fail(fmt::format("\"{}\": an IPv6 address needs its closing ']'", text));
        host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty() && !after.starts_with(':'))
            return fail(fmt::format("\"{}\": after [{}] only :PORT may follow", text, host));
        port_given = !after.empty();
        port = port_given ? after.substr(1) : after;
        if (!valid_ipv6(host))
            return fail(fmt::format("\"{}\": [{}] is not an IPv6 address", text, host));
    } else {
        if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
            host = authority.substr(0, colon);
            port = authority.substr(colon + 1);
            port_given = true;
        }
        if (!valid_dns_name(host))
            return fail(fmt::format("\"{}\": \"{}\" is not a host name or address (an IPv6 address goes in "
                                    "brackets: nbd://[2001:db8::1]:10809/EXPORT)",
                                    text, host));
    }
    url.host = std::string(host);
    if (port_given) {
        unsigned p = 0;
        auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
            return fail(fmt::format("\"{}\": port \"{}\" is not a number from 1 to 65535", text, port));
        url.port = p;
    }
    return url;
}

std::string describe(const NbdUrl &url)
{
    if (url.unix_socket)
        return fmt::format("nbd+unix:///{}?socket={}", url.export_name, url.socket);
    bool v6 = url.host.find(':') != std::string::npos;
    return fmt::format("nbd://{}{}{}:{}/{}", v6 ? "[" : "", url.host, v6 ? "]" : "", url.port, url.export_name);
}

nlohmann::json nbd_node_json(const NbdUrl &url, const std::string &tls_creds_id, const std::string &tls_hostname)
{
    nlohmann::json node = {{"driver", "nbd"}, {"export", url.export_name}};
    if (url.unix_socket)
        node["server"] = {{"type", "unix"}, {"path", url.socket}};
    else
        node["server"] = {{"type", "inet"}, {"host", url.host}, {"port", std::to_string(url.port)}};
    if (!tls_creds_id.empty()) {
        node["tls-creds"] = tls_creds_id;
        if (!tls_hostname.empty())
            node["tls-hostname"] = tls_hostname;
    }
    return node;
}

} // namespace rescuevm
