// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of the rescue image over NBD: URLs, config keys, the overlay bound check, the argv, the probe's findings.
#include "plan_fixtures.h"

#include "rescuevm/core/image_source.h"
#include "rescuevm/core/qemu_argv.h"
#include "rescuevm/host/nbd_image.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

using namespace rescuevm;
using namespace rescuevm::fixtures;

namespace {

#define CHECK_HAS(text, part) CHECK_MESSAGE((text).find(part) != std::string::npos, (text))

std::string url_error(const std::string &text)
{
    auto r = parse_nbd_url(text);
    REQUIRE_FALSE(r.has_value());
    return r.error().message;
}

std::string config_error(const std::string &toml)
{
    auto r = parse_config_toml(toml, "/etc/rescuevm/rescuevm.toml");
    REQUIRE_FALSE(r.has_value());
    return r.error().message;
}

Config nbd_config()
{
    auto r = parse_config_toml("[vm]\nimage = \"nbd://images.example:10810/windows-2022\"\n"
                               "image_tls = \"/etc/rescuevm/image-tls\"\n",
                               "/etc/rescuevm/rescuevm.toml");
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    return *r;
}

HostFacts nbd_server()
{
    HostFacts h = server();
    h.image = {};
    h.image.found = true;
    h.image.nbd = true;
    h.image.path = "nbd://images.example:10810/windows-2022";
    h.image.format = "raw";
    h.image.virtual_size = 40 * kGiB;
    h.image.transport = "TLS, server certificate checked for \"images.example\"";
    h.image.probe_ms = 42;
    return h;
}

const Check &check_named(const Plan &plan, const std::string &name)
{
    auto it = std::find_if(plan.checks.begin(), plan.checks.end(), [&](const Check &c) { return c.name == name; });
    REQUIRE(it != plan.checks.end());
    return *it;
}

std::string joined(const std::vector<std::string> &argv)
{
    std::string out;
    for (const auto &w : argv)
        out += w + "\n";
    return out;
}

} // namespace

TEST_CASE("NBD URLs: inet with and without port, IPv6, unix socket, default export")
{
    auto a = parse_nbd_url("nbd://images.example:10810/windows-2022");
    REQUIRE(a);
    CHECK(a->host == "images.example");
    CHECK(a->port == 10810);
    CHECK(a->export_name == "windows-2022");
    CHECK_FALSE(a->unix_socket);
    auto b = parse_nbd_url("nbd://203.0.113.5/rescue/win");
    REQUIRE(b);
    CHECK(b->port == 10809);
    CHECK(b->export_name == "rescue/win");
    auto c = parse_nbd_url("nbd://[2001:db8::5]:10811/x");
    REQUIRE(c);
    CHECK(c->host == "2001:db8::5");
    CHECK(c->port == 10811);
    CHECK(describe(*c) == "nbd://[2001:db8::5]:10811/x");
    auto d = parse_nbd_url("nbd+unix:///rescue?socket=/run/nbd/images.sock");
    REQUIRE(d);
    CHECK(d->unix_socket);
    CHECK(d->socket == "/run/nbd/images.sock");
    CHECK(d->export_name == "rescue");
    auto e = parse_nbd_url("nbd://images.example");
    REQUIRE(e);
    CHECK(e->export_name.empty());
    CHECK(is_nbd_url("nbd+tcp://h/x"));
    CHECK_FALSE(is_nbd_url("/srv/nbd://x"));
}

TEST_CASE("NBD URLs that are refused say why")
{
    CHECK_HAS(url_error("nbd://user:pw@images.example/x"), "user names or passwords do not belong");
    CHECK_HAS(url_error("nbd://images.example:0/x"), "port \"0\" is not a number from 1 to 65535");
    CHECK_HAS(url_error("nbd://images.example:99999/x"), "port \"99999\"");
    CHECK_HAS(url_error("nbd://images.example:/x"), "port \"\"");
    CHECK_HAS(url_error("nbd://images..example/x"), "is not a host name or address");
    CHECK_HAS(url_error("nbd:///x"), "is not a host name or address");
    CHECK_HAS(url_error("nbd://[2001:db8::5/x"), "closing ']'");
    CHECK_HAS(url_error("nbd://h/a,b"), "export name \"a,b\" may hold only");
    CHECK_HAS(url_error("nbd://h/a%20b"), "no percent escapes");
    CHECK_HAS(url_error("nbd://h/x?socket=/y"), "nbd:// takes no query");
    CHECK_HAS(url_error("nbd+unix:///x"), "?socket=PATH");
    CHECK_HAS(url_error("nbd+unix:///x?socket=rel.sock"), "must be an absolute path");
    CHECK_HAS(url_error("nbd+unix://host/x?socket=/s"), "nbd+unix:// takes no host");
}

TEST_CASE("config: an NBD vm.image needs TLS or an explicit vm.image_unauthenticated")
{
    Config c = nbd_config();
    CHECK(c.vm.image_tls == "/etc/rescuevm/image-tls");
    CHECK_FALSE(c.vm.overlay_max.has_value());
    CHECK_HAS(config_error("[vm]\nimage = \"nbd://h/x\"\n"),
              "config /etc/rescuevm/rescuevm.toml:2: vm.image: an NBD image needs TLS: set vm.image_tls");
    auto plain = parse_config_toml("[vm]\nimage = \"nbd://h/x\"\nimage_unauthenticated = true\n", "f");
    REQUIRE(plain);
    CHECK(plain->vm.image_unauthenticated);
    CHECK_HAS(config_error("[vm]\nimage = \"nbd://h/x\"\nimage_unauthenticated = true\nimage_tls = \"/t\"\n"),
              "vm.image_unauthenticated: true, but vm.image_tls is set too");
    CHECK_HAS(config_error("[vm]\nimage_tls = \"/t\"\n"), "vm.image_tls: only applies to an NBD vm.image");
    CHECK_HAS(config_error("[vm]\nimage = \"nbd+unix:///x?socket=/s\"\nimage_tls = \"/t\"\n"),
              "vm.image_tls_hostname: an nbd+unix:// URL has no host name");
    CHECK_HAS(config_error("[vm]\nimage = \"nbd://h/x\"\nimage_unauthenticated = true\nimage_tls_hostname = \"h\"\n"),
              "vm.image_tls_hostname: needs vm.image_tls");
    CHECK_HAS(config_error("[vm]\nimage = \"images/win.qcow2\"\n"),
              "vm.image: \"images/win.qcow2\" is neither an absolute path nor an NBD URL");
    CHECK_HAS(config_error("[vm]\nimage = \"nbd://h:70000/x\"\n"), "vm.image: \"nbd://h:70000/x\": port");
    CHECK_HAS(config_error("[vm]\noverlay_max = \"1MiB\"\n"), "vm.overlay_max: 1048576 bytes: give at least \"16MiB\"");
    auto sized = parse_config_toml("[vm]\noverlay_max = \"12GiB\"\n", "f");
    REQUIRE(sized);
    CHECK(*sized->vm.overlay_max == 12 * kGiB);
    Config cmd;
    REQUIRE(apply_kernel_cmdline(cmd, "rescuevm.vm.image=nbd://10.0.0.5/win rescuevm.vm.image_unauthenticated=1 "
                                      "rescuevm.vm.overlay_max=auto",
                                 "/proc/cmdline"));
    CHECK(cmd.vm.image == "nbd://10.0.0.5/win");
}

TEST_CASE("plan: the overlay bound is vm.overlay_max or half the free space up to 8 GiB, refused without room")
{
    HostFacts h = server();
    Config c = config();
    Plan p = plan_vm(h, c);
    CHECK(p.boot.overlay_max == 8 * kGiB); // 32 GiB free
    CHECK(p.supervision.overlay_max == 8 * kGiB);
    CHECK(check_named(p, "overlay").ok);
    h.runtime_dir.free_bytes = 3 * kGiB;
    p = plan_vm(h, c);
    CHECK(p.boot.overlay_max == 1536ULL << 20);
    CHECK_HAS(check_named(p, "overlay").message, "the VM may write up to 1.5 GiB to its disk 0");
    h.runtime_dir.free_bytes = 100ULL << 20;
    p = plan_vm(h, c);
    CHECK_FALSE(p.ready());
    CHECK_HAS(check_named(p, "overlay").message, "has only 100 MiB free");
    c.vm.overlay_max = 20 * kGiB;
    h.runtime_dir.free_bytes = 16 * kGiB;
    p = plan_vm(h, c);
    CHECK_FALSE(check_named(p, "overlay").ok);
    CHECK_HAS(check_named(p, "overlay").message, "has 16.0 GiB free, less than vm.overlay_max = 20.0 GiB");
    h.runtime_dir.free_bytes = 21 * kGiB;
    CHECK(check_named(plan_vm(h, c), "overlay").ok);
    c.vm.kernel = "/boot/vmlinuz";
    CHECK(check_named(plan_vm(h, c), "overlay").message == "direct kernel boot: no disk 0, no overlay");
}

TEST_CASE("plan: an NBD image is planned with its URL, TLS and reconnect; refused on nvme; warned without TLS")
{
    Config c = nbd_config();
    Plan p = plan_vm(nbd_server(), c);
    REQUIRE(p.ready());
    CHECK(p.boot.nbd);
    CHECK(p.boot.tls_hostname == "images.example");
    CHECK(p.supervision.image_over_network);
    CHECK_HAS(check_named(p, "image").message, "read over NBD (TLS, server certificate checked for \"images.example\"");
    c.vm.image_tls_hostname = "nbd.internal";
    CHECK(plan_vm(nbd_server(), c).boot.tls_hostname == "nbd.internal");
    c.disks.bus = DiskBus::nvme;
    p = plan_vm(nbd_server(), c);
    CHECK_FALSE(p.ready());
    CHECK_HAS(check_named(p, "image").message, "nvme device cannot pause the VM");
    Config plain;
    plain.vm.image = "nbd://images.example/w";
    plain.vm.image_unauthenticated = true;
    p = plan_vm(nbd_server(), plain);
    REQUIRE(p.ready());
    CHECK(p.boot.tls_dir.empty());
    REQUIRE_FALSE(p.warnings.empty());
    CHECK_HAS(p.warnings.back(), "without TLS");
    // A probe that failed is the image check's refusal, with its words.
    HostFacts down = nbd_server();
    down.image.found = false;
    down.image.problem = "rescue image nbd://images.example:10810/windows-2022: the image server does not answer";
    CHECK(check_named(plan_vm(down, nbd_config()), "image").message == down.image.problem);
}

TEST_CASE("golden: UEFI, NBD image with TLS on virtio-blk")
{
    Plan p = plan_vm(nbd_server(), nbd_config());
    REQUIRE(p.ready());
    auto argv = render_qemu_argv(p, session_for(p, "3b1c9a52-7f0e-4d2b-9c61-2a5e8f4d7b10"));
    REQUIRE(argv);
    std::string path = FIXTURES_DIR "/../golden/uefi_nbd_tls.argv";
    if (std::getenv("RESCUEVM_UPDATE_GOLDEN"))
        std::ofstream(path) << joined(*argv);
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "golden file missing: " << path << " (run with RESCUEVM_UPDATE_GOLDEN=1)");
    std::string expected((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(expected == joined(*argv));
    std::string text = joined(*argv);
    CHECK_HAS(text, "tls-creds-x509,id=image-tls,dir=/etc/rescuevm/image-tls,endpoint=client,verify-peer=on\n");
    CHECK_HAS(text, "driver=nbd,node-name=image-file,server.type=inet,server.host=images.example,server.port=10810,"
                    "export=windows-2022,tls-creds=image-tls,tls-hostname=images.example,reconnect-delay=10,"
                    "read-only=on\n");
    CHECK_HAS(text, "driver=raw,node-name=image,file=image-file,read-only=on\n");
    CHECK_HAS(text, "drive=overlay,iothread=iothread-disk0,bootindex=0,rerror=stop,werror=stop\n");
}

TEST_CASE("argv: NBD over a unix socket without TLS; the local image keeps its file node")
{
    Config c;
    c.vm.image = "nbd+unix:///rescue?socket=/run/nbd/x.sock";
    c.vm.image_unauthenticated = true;
    Plan p = plan_vm(nbd_server(), c);
    auto argv = render_qemu_argv(p, session_for(p, "3b1c9a52-7f0e-4d2b-9c61-2a5e8f4d7b10"));
    REQUIRE(argv);
    std::string text = joined(*argv);
    CHECK_HAS(text, "driver=nbd,node-name=image-file,server.type=unix,server.path=/run/nbd/x.sock,export=rescue,"
                    "reconnect-delay=10,read-only=on\n");
    CHECK(text.find("tls-creds") == std::string::npos);
    Plan local = plan_vm(server(), config());
    std::string l = joined(*render_qemu_argv(local, session_for(local, "3b1c9a52-7f0e-4d2b-9c61-2a5e8f4d7b10")));
    CHECK_HAS(l, "driver=file,node-name=image-file,filename=/srv/rescuevm/windows-rescue.qcow2,read-only=on\n");
    CHECK(l.find("driver=nbd") == std::string::npos);
}

TEST_CASE("the NBD probe names the fix for each failure qemu-img reports")
{
    NbdImageQuery q;
    q.image = "nbd://images.example:10810/win";
    q.url = *parse_nbd_url(q.image);
    q.tls_dir = "/etc/rescuevm/image-tls";
    q.tls_hostname = "images.example";
    struct Case {
        const char *said, *fix;
    } cases[] = {
        {"qemu-img: Could not open 'json:{}': Certificate does not match the hostname images.example",
         "shows a certificate that is not for \"images.example\": set vm.image_tls_hostname"},
        {"qemu-img: Could not open 'json:{}': The certificate hasn't got a known issuer",
         "not signed by the CA in /etc/rescuevm/image-tls/ca-cert.pem (unknown CA)"},
        {"qemu-img: Our own certificate /t/client-cert.pem failed validation against /t/ca-cert.pem: x",
         "/etc/rescuevm/image-tls/client-cert.pem is not signed by"},
        {"qemu-img: Could not open 'json:{}': Requested export not available\nserver reported: export 'win' not "
         "present",
         "has no export \"win\": fix the export name in vm.image"},
        {"qemu-img: Could not open 'json:{}': Failed to connect to '10.0.0.1:10810': Connection refused",
         "the image server images.example:10810 does not answer: start the NBD server"},
        {"qemu-img: Could not open 'json:{}': Failed to read option reply: Cannot read from TLS channel: Software "
         "caused connection abort",
         "ended the TLS session: it does not accept this host's client certificate"},
        {"qemu-img: Could not open 'json:{}': TLS negotiation required before option 7 (go)",
         "requires TLS: set vm.image_tls"},
        {"qemu-img: Could not open 'json:{}': Server does not support STARTTLS", "does not offer TLS"},
        {"qemu-img was killed: no answer within 5 s (timed out)", "does not answer"},
    };
    for (const auto &k : cases) {
        std::string m = nbd_open_problem(q, k.said);
        CHECK_HAS(m, k.fix);
        CHECK_HAS(m, "rescue image nbd://images.example:10810/win: ");
        CHECK(m.find('\n') == std::string::npos);
    }
}

TEST_CASE("vm.image_tls: missing, planted or readable credential files are refused with the fix")
{
    std::string tmpl = (std::filesystem::temp_directory_path() / "rescuevm-tls-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    std::string dir = tmpl;
    struct Cleanup {
        std::string d;
        ~Cleanup() { std::filesystem::remove_all(d); }
    } cleanup{dir};
    ::chmod(dir.c_str(), 0700);
    uid_t me = ::getuid();
    auto put = [&](const char *name, mode_t mode) {
        std::string p = dir + "/" + name;
        std::ofstream(p) << "-----BEGIN X-----\n";
        ::chmod(p.c_str(), mode);
    };
    CHECK_HAS(tls_dir_problem(dir + "/none", me), "create it with ca-cert.pem, client-cert.pem and client-key.pem");
    CHECK_HAS(tls_dir_problem(dir, me), "ca-cert.pem is missing: put the CA certificate");
    put("ca-cert.pem", 0644);
    CHECK_HAS(tls_dir_problem(dir, me), "client-cert.pem is missing: put this host's client certificate");
    put("client-cert.pem", 0644);
    CHECK_HAS(tls_dir_problem(dir, me), "client-key.pem is missing");
    put("client-key.pem", 0640);
    CHECK_HAS(tls_dir_problem(dir, me), "readable by root only (0600): chown root:");
    ::chmod((dir + "/client-key.pem").c_str(), 0600);
    CHECK(tls_dir_problem(dir, me).empty());
    ::chmod((dir + "/ca-cert.pem").c_str(), 0666);
    CHECK_HAS(tls_dir_problem(dir, me), "ca-cert.pem (uid");
    ::chmod((dir + "/ca-cert.pem").c_str(), 0644);
    CHECK_HAS(tls_dir_problem(dir, me + 1), "must be owned by root and writable by root only");
    std::filesystem::remove(dir + "/client-cert.pem");
    REQUIRE(::symlink((dir + "/ca-cert.pem").c_str(), (dir + "/client-cert.pem").c_str()) == 0);
    CHECK_HAS(tls_dir_problem(dir, me), "a symbolic link is refused");
    ::chmod(dir.c_str(), 0777);
    CHECK_HAS(tls_dir_problem(dir, me), "writable by root only: chown root:");
}
