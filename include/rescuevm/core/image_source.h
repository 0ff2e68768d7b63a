// SPDX-License-Identifier: GPL-2.0-or-later
// Where the rescue image comes from: a local file or an NBD export (nbd://, nbd+unix://), parsed from vm.image. Pure.
#pragma once

#include "rescuevm/core/error.h"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace rescuevm {

// An NBD export as vm.image names it: nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH.
struct NbdUrl {
    bool unix_socket = false;
    std::string host;        // inet: a DNS name, an IPv4 address or an IPv6 address (without brackets)
    unsigned port = 10809;   // inet: the IANA NBD port unless given
    std::string socket;      // unix: absolute path of the server's socket
    std::string export_name; // "" is the server's default export
    bool operator==(const NbdUrl &) const = default;
};

// "nbd://" and "nbd+unix://" (also "nbd+tcp://") start an NBD URL; anything else is a path.
bool is_nbd_url(std::string_view text);

// Parses an NBD URL, or says what is wrong with it. Refuses user info, query keys other than
// socket=, percent escapes, and characters a QEMU option or a log line could misread.
Result<NbdUrl> parse_nbd_url(std::string_view text);

// "nbd://images.example:10809/windows" / "nbd+unix:///windows?socket=/run/x.sock": for messages.
std::string describe(const NbdUrl &url);

// The NBD block node's options as QEMU's JSON takes them (qemu-img 'json:{"file": ...}' and
// QMP): server address, export, and the TLS object's id and the checked server name when given.
nlohmann::json nbd_node_json(const NbdUrl &url, const std::string &tls_creds_id, const std::string &tls_hostname);

// The id of the tls-creds-x509 object the image's NBD client uses (QEMU and the probe alike).
inline constexpr const char *kImageTlsId = "image-tls";

// What the client side of TLS needs in vm.image_tls (QEMU's tls-creds-x509 file names).
inline constexpr const char *kTlsCaFile = "ca-cert.pem";
inline constexpr const char *kTlsCertFile = "client-cert.pem";
inline constexpr const char *kTlsKeyFile = "client-key.pem";

} // namespace rescuevm
