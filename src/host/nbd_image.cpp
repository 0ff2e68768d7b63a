// SPDX-License-Identifier: GPL-2.0-or-later
// The NBD image server as QEMU will see it: TLS files checked, then qemu-img and qemu-io connect read-only, bounded in time.
#include "rescuevm/host/nbd_image.h"

#include "rescuevm/core/config.h"
#include "rescuevm/core/signatures.h"
#include "rescuevm/host/probes.h"
#include "rescuevm/sys/files.h"
#include "rescuevm/sys/process.h"
#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

namespace rescuevm {
namespace {

constexpr std::uint64_t kMinPlausibleSize = 1 << 20; // smaller cannot hold a partitioned Windows disk

std::string lower(std::string s)
{
    std::ranges::transform(s, s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// The tool's own words, on one line and bounded, for the engineer reading the console.
std::string one_line(const std::string &text)
{
    std::string out;
    for (char c : text) {
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            continue;
        if (c == ' ' && (out.empty() || out.back() == ' '))
            continue;
        out += c;
    }
    while (!out.empty() && out.back() == ' ')
        out.pop_back();
    if (out.size() > 400)
        out = out.substr(0, 400) + "...";
    return out;
}

std::string server_name(const NbdUrl &url)
{
    if (url.unix_socket)
        return "the image server at socket " + url.socket;
    return fmt::format("the image server {}:{}", url.host, url.port);
}

// The same node QEMU gets (argv: -blockdev driver=nbd,...), as a json: filename so the format is probed.
SpawnOptions tool_run(const NbdImageQuery &q, std::vector<std::string> args)
{
    SpawnOptions o;
    std::string json = nlohmann::json{{"file", nbd_node_json(q.url, q.tls_dir.empty() ? "" : kImageTlsId,
                                                             q.tls_hostname)}}
                           .dump();
    o.argv = std::move(args);
    if (!q.tls_dir.empty()) {
        // qemu-img's own option syntax: a comma in the path would be doubled; refused before.
        o.argv.push_back("--object");
        o.argv.push_back(fmt::format("tls-creds-x509,id={},dir={},endpoint=client,verify-peer=on", kImageTlsId,
                                     q.tls_dir));
    }
    o.argv.push_back("json:" + json);
    o.clear_environment = true;
    o.env_set = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
    return o;
}

} // namespace

std::string tls_dir_problem(const std::string &dir, uid_t owner)
{
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0)
        return fmt::format("vm.image_tls {}: {}: create it with {}, {} and {} (QEMU's tls-creds-x509 names)", dir,
                           errno_text(errno), kTlsCaFile, kTlsCertFile, kTlsKeyFile);
    if (!S_ISDIR(st.st_mode))
        return fmt::format("vm.image_tls {} is not a directory (a symbolic link is refused too): give the directory "
                           "holding {}, {} and {}",
                           dir, kTlsCaFile, kTlsCertFile, kTlsKeyFile);
    if (st.st_uid != owner || (st.st_mode & 022))
        return fmt::format("vm.image_tls {} (uid {}, mode {:04o}) must be owned by root and writable by root only: "
                           "chown root: {}; chmod go-w {}",
                           dir, st.st_uid, st.st_mode & 07777, dir, dir);
    struct File {
        const char *name, *what;
        mode_t forbidden;
    };
    const File files[] = {
        {kTlsCaFile, "the CA certificate that signed the image server's certificate", 022},
        {kTlsCertFile, "this host's client certificate, signed by a CA the image server trusts", 022},
        {kTlsKeyFile, "the private key of client-cert.pem", 077},
    };
    for (const File &f : files) {
        std::string path = dir + "/" + f.name;
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
        if (!fd && errno == ENOENT)
            return fmt::format("vm.image_tls: {} is missing: put {} there", path, f.what);
        if (!fd || ::fstat(fd.get(), &st) != 0)
            return fmt::format("vm.image_tls: {}: {} (a symbolic link is refused): put {} there as a regular file",
                               path, errno_text(errno), f.what);
        if (!S_ISREG(st.st_mode) || st.st_size == 0)
            return fmt::format("vm.image_tls: {} is {}: put {} there", path,
                               S_ISREG(st.st_mode) ? "empty" : "not a regular file", f.what);
        if (st.st_uid != owner || (st.st_mode & f.forbidden))
            return fmt::format("vm.image_tls: {} (uid {}, mode {:04o}) must be owned by root{}: chown root: {}; "
                               "chmod {} {}",
                               path, st.st_uid, st.st_mode & 07777,
                               f.forbidden == 077 ? " and readable by root only (0600)" : " and writable by root only",
                               path, f.forbidden == 077 ? "0600" : "go-w", path);
    }
    return "";
}

std::string nbd_open_problem(const NbdImageQuery &q, const std::string &output)
{
    std::string said = one_line(output);
    std::string t = lower(output);
    std::string server = server_name(q.url);
    auto has = [&](std::string_view s) { return t.find(s) != std::string::npos; };
    std::string why;
    if (has("does not match the hostname"))
        why = fmt::format("{} shows a certificate that is not for \"{}\": set vm.image_tls_hostname to the name in "
                          "the server's certificate, or fix the host in vm.image",
                          server, q.tls_hostname);
    else if (has("our own certificate"))
        why = fmt::format("{}/{} is not signed by {}/{} (or has expired): put this host's client certificate and "
                          "the CA that signed it in vm.image_tls",
                          q.tls_dir, kTlsCertFile, q.tls_dir, kTlsCaFile);
    else if (has("known issuer") || has("signer not found") || has("not trusted") || has("failed validation"))
        why = fmt::format("{} shows a certificate not signed by the CA in {}/{} (unknown CA): put the CA that "
                          "signed the image server's certificate there",
                          server, q.tls_dir, kTlsCaFile);
    else if (has("expired") || has("not yet activated"))
        why = fmt::format("{}'s certificate is expired or not yet valid: renew it (or check this host's clock)",
                          server);
    else if (has("export") && (has("not present") || has("not available") || has("unknown export")))
        why = fmt::format("{} has no export \"{}\": fix the export name in vm.image (qemu-nbd --list, or "
                          "nbd-client -l, shows the server's exports)",
                          server, q.url.export_name);
    else if (has("tls negotiation required") || has("not permitted before tls"))
        why = fmt::format("{} requires TLS: set vm.image_tls to the directory of this host's client "
                          "credentials and remove vm.image_unauthenticated",
                          server);
    else if (has("starttls") || has("does not support tls"))
        why = fmt::format("{} does not offer TLS: enable TLS on the server (qemu-nbd --tls-creds), or, knowing "
                          "that nothing then proves where the image comes from, set vm.image_unauthenticated = true",
                          server);
    else if (has("tls channel") || has("connection abort") || has("connection reset") || has("handshake"))
        why = fmt::format("{} ended the TLS session: it does not accept this host's client certificate "
                          "{}/{}: have it signed by a CA the image server trusts",
                          server, q.tls_dir, kTlsCertFile);
    else if (has("connection refused") || has("no such file") || has("failed to connect") ||
             has("no route to host") || has("network is unreachable") || has("timed out") || has("killed"))
        why = fmt::format("{} does not answer: start the NBD server, check the network to it, or fix the {} in "
                          "vm.image",
                          server, q.url.unix_socket ? "socket path" : "host and port");
    else if (has("name or service not known") || has("address resolution") || has("temporary failure in name"))
        why = fmt::format("the image server's name \"{}\" does not resolve: fix the host in vm.image or this "
                          "host's DNS",
                          q.url.host);
    else
        why = fmt::format("{} could not be read: check the server and vm.image", server);
    return fmt::format("rescue image {}: {} (qemu-img: {})", q.image, why, said);
}

ImageFacts probe_nbd_image(const NbdImageQuery &q)
{
    ImageFacts facts;
    facts.path = q.image;
    facts.nbd = true;
    facts.transport = q.tls_dir.empty() ? "unauthenticated, no TLS"
                                        : fmt::format("TLS, server certificate checked for \"{}\"", q.tls_hostname);
    if (!q.tls_dir.empty()) {
        if (std::string problem = tls_dir_problem(q.tls_dir, q.expected_owner); !problem.empty()) {
            facts.problem = problem;
            return facts;
        }
        if (q.tls_dir.find(',') != std::string::npos) {
            facts.problem = fmt::format("vm.image_tls {}: a comma in the path cannot be passed to qemu-img; use "
                                        "another directory",
                                        q.tls_dir);
            return facts;
        }
    }
    auto started = std::chrono::steady_clock::now();
    auto run = run_to_completion(tool_run(q, {sibling_tool(q.qemu, "qemu-img"), "info", "--output=json"}),
                                 q.deadline, 64 * 1024);
    if (!run) {
        facts.problem = nbd_open_problem(q, run.error().message + " (timed out)");
        return facts;
    }
    if (!run->ok()) {
        facts.problem = nbd_open_problem(q, run->output);
        return facts;
    }
    facts.probe_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                    std::chrono::steady_clock::now() - started)
                                                    .count());
    // The JSON is the last thing printed; anything before it would be a warning.
    auto brace = run->output.find('{');
    auto info = nlohmann::json::parse(brace == std::string::npos ? std::string() : run->output.substr(brace), nullptr,
                                      false);
    if (info.is_discarded() || !info.is_object() || !info.contains("format") || !info["format"].is_string() ||
        !info.contains("virtual-size") || !info["virtual-size"].is_number_unsigned()) {
        facts.problem = fmt::format("rescue image {}: qemu-img info gave no format and size: {}", q.image,
                                    one_line(run->output));
        return facts;
    }
    facts.format = info["format"].get<std::string>();
    facts.virtual_size = info["virtual-size"].get<std::uint64_t>();
    if (facts.format != "raw" && facts.format != "qcow2") {
        facts.problem = fmt::format("rescue image {} holds a {} image: serve a raw or qcow2 Windows rescue image "
                                    "(qemu-nbd -f qcow2 FILE exports its disk as raw)",
                                    q.image, facts.format);
        return facts;
    }
    if (facts.virtual_size < kMinPlausibleSize) {
        facts.problem = fmt::format("rescue image {} is {} bytes: too small for a Windows disk; is the right file "
                                    "or export served?",
                                    q.image, facts.virtual_size);
        return facts;
    }
    // The disk id is for the collision warning only: unknown is not a refusal.
    auto head = run_to_completion(tool_run(q, {sibling_tool(q.qemu, "qemu-io"), "-r", "-c",
                                               fmt::format("read -v 0 {}", kImageHeadBytes)}),
                                  q.deadline, 128 * 1024);
    if (head && head->ok())
        facts.disk_id = disk_id_of_head(parse_qemu_io_dump(head->output, kImageHeadBytes));
    facts.probe_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                    std::chrono::steady_clock::now() - started)
                                                    .count());
    facts.found = true;
    return facts;
}

} // namespace rescuevm
