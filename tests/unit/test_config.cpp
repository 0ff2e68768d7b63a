// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests for the config: TOML keys, every error path, kernel command line overrides.
#include "rescuevm/host/config_file.h"
#include "rescuevm/core/config.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using namespace rescuevm;
using namespace std::chrono_literals;

namespace {

// The settings alone, without where they came from.
Config settings_of(Config c)
{
    c.source = Config{}.source;
    c.set_by.clear();
    return c;
}

std::string error_of(const Result<Config> &r)
{
    REQUIRE_FALSE(r.has_value());
    return r.error().message;
}

std::string toml_error(const std::string &text)
{
    return error_of(parse_config_toml(text, "/etc/rescuevm/rescuevm.toml"));
}

std::string cmdline_error(const std::string &cmdline, Config config = {})
{
    auto r = apply_kernel_cmdline(config, cmdline, "/proc/cmdline");
    REQUIRE_FALSE(r.has_value());
    return r.error().message;
}

Config with_cmdline(const std::string &cmdline, Config config = {})
{
    auto r = apply_kernel_cmdline(config, cmdline, "/proc/cmdline");
    if (!r)
        FAIL(r.error().message);
    return config;
}

#define CHECK_HAS(text, part) CHECK_MESSAGE((text).find(part) != std::string::npos, (text))

struct TempDir {
    std::filesystem::path path;
    TempDir()
    {
        std::string tmpl = (std::filesystem::temp_directory_path() / "rescuevm-test-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string write(const std::string &name, const std::string &text) const
    {
        std::ofstream(path / name) << text;
        return (path / name).string();
    }
};

} // namespace

TEST_CASE("an empty file gives the built-in defaults")
{
    auto c = parse_config_toml("", "/x.toml");
    REQUIRE(c.has_value());
    CHECK(settings_of(*c) == Config{});
    CHECK(c->source == "/x.toml");
    CHECK(Config{}.host.min_memory == 16ULL << 30);
    CHECK(Config{}.supervisor.shutdown_timeout == 120s);
}

TEST_CASE("every kind of key is read")
{
    auto c = parse_config_toml(R"(
[host]
min_memory = 8589934592
[vm]
kernel = "/boot/vmlinuz"
append = "console=ttyS0"
memory = "1.5GiB"
cpus = 2
accel = "tcg"
firmware = "bios"
display = "none"
[disks]
match = ["loop*"]
bus = "nvme"
[network]
mode = "none"
uplink = "eth0"
addressing = "static"
model = "e1000e"
[supervisor]
on_guest_poweroff = "restart"
shutdown_timeout = 30
max_session = "24h"
restore_signatures = "on-stop"
[guest]
admin_user = "rescue"
[paths]
runtime_dir = "/tmp/rvm"
qemu = "/usr/bin/qemu-system-x86_64"
[log]
level = "debug"
console = "ttyS1"
console_speed = 9600
)",
                               "t.toml");
    REQUIRE_MESSAGE(c.has_value(), c.error().message);
    CHECK(c->host.min_memory == 8ULL << 30);
    CHECK(c->vm.memory == 3ULL << 29);
    CHECK(c->vm.cpus == 2u);
    CHECK(c->vm.accel == Accel::tcg);
    CHECK(c->vm.firmware == Firmware::bios);
    CHECK(c->disks.match == std::vector<std::string>{"loop*"});
    CHECK(c->disks.bus == DiskBus::nvme);
    CHECK(c->network.addressing == Addressing::static_);
    CHECK(c->supervisor.shutdown_timeout == 30s);
    CHECK(c->supervisor.max_session == 24h);
    CHECK(c->supervisor.restore_signatures == RestoreSignatures::on_stop);
    CHECK(c->log.console_speed == 9600u);
    CHECK(c->set_by.at("vm.cpus") == "config t.toml:8");
}

TEST_CASE("an error names the file, the line and the key")
{
    std::string twelve_lines = "[disks]\n" + std::string(10, '\n') + "bus = \"ahci\"\n";
    CHECK(toml_error(twelve_lines) == "config /etc/rescuevm/rescuevm.toml:12: disks.bus: "
                                      "\"ahci\" is not one of virtio-blk, virtio-scsi, nvme, sata");
}

TEST_CASE("unknown sections, unknown keys and wrong types are errors")
{
    const std::string at = "config /etc/rescuevm/rescuevm.toml:";
    CHECK_HAS(toml_error("[vm]\n\n[vmm]\nx = 1\n"), at + "3: vmm: unknown section; sections are host, vm, disks, network, supervisor, guest, paths, log");
    CHECK_HAS(toml_error("name = \"x\"\n"), at + "1: name: a setting outside any section");
    CHECK_HAS(toml_error("[vm]\nmemroy = \"4GiB\"\n"), at + "2: vm.memroy: unknown key; [vm] has image");
    CHECK_HAS(toml_error("[vm.extra]\nx = 1\n"), at + "1: vm.extra: unknown key");
    CHECK_HAS(toml_error("[vm]\ncpus = \"four\"\n"), at + "2: vm.cpus: expected \"auto\" or an integer, got string \"four\"");
    CHECK_HAS(toml_error("[vm]\ncpus = \"4\"\n"), at + "2: vm.cpus: expected \"auto\" or an integer, got string \"4\"");
    CHECK_HAS(toml_error("[vm]\nsecure_boot = \"yes\"\n"), at + "2: vm.secure_boot: expected true or false");
    CHECK_HAS(toml_error("[disks]\nmatch = \"sd*\"\n"), at + "2: disks.match: expected an array of strings");
    CHECK_HAS(toml_error("[disks]\nmatch = [\"sd*\", 3]\n"), at + "2: disks.match: item 2: expected a string, got integer 3");
    CHECK_HAS(toml_error("[host]\nmin_memory = 1.5\n"), at + "2: host.min_memory: expected a size like \"16GiB\" or a number of bytes, got a float");
    CHECK_HAS(toml_error("[vm]\nimage = 7\n"), at + "2: vm.image: expected a string, got integer 7");
    CHECK_HAS(toml_error("[log]\nlevel = 2026-11-22\n"), at + "2: log.level: expected a string, got a date");
}

TEST_CASE("impossible values are errors")
{
    const std::string at = "config /etc/rescuevm/rescuevm.toml:2: ";
    struct Row {
        const char *toml, *says;
    };
    const Row rows[] = {
        {"[host]\nmin_memory = \"16GB\"", "host.min_memory: \"16GB\": decimal units are not accepted; write \"16GiB\""},
        {"[host]\nmin_memory = -1", "host.min_memory: -1: a size cannot be negative"},
        {"[vm]\nmemory = \"0\"", "vm.memory: 0 bytes"},
        {"[vm]\ncpus = 0", "vm.cpus: 0: must be \"auto\" or 1 to 1024"},
        {"[vm]\naccel = \"KVM\"", "vm.accel: \"KVM\" is not one of kvm, tcg"},
        {"[vm]\nname = \"a b\"", "vm.name: \"a b\": character ' ' is not allowed"},
        {"[vm]\nappend = \"a\\nb\"", "vm.append: string \"a\\nb\": control characters"},
        {"[vm]\nimage = \"a\\u0000b\"", "vm.image: string \"a\\x00b\": control characters"},
        {"[vm]\nkernel = \"vmlinuz\"", "vm.kernel: \"vmlinuz\" is not an absolute path"},
        {"[disks]\nmatch = []", "disks.match: empty list"},
        {"[disks]\nmatch = [\"\"]", "disks.match: pattern \"\""},
        {"[disks]\nmatch = [\"/dev/sda\"]", "disks.match: pattern \"/dev/sda\": give a kernel name glob"},
        {"[network]\nuplink = \"a-very-long-interface\"", "network.uplink: \"a-very-long-interface\" must be 1 to 15"},
        {"[supervisor]\nshutdown_timeout = \"2 weeks\"", "supervisor.shutdown_timeout: \"2 weeks\" is not a duration"},
        {"[supervisor]\nshutdown_timeout = 0", "supervisor.shutdown_timeout: 0: the guest needs time"},
        {"[supervisor]\nshutdown_timeout = -3", "supervisor.shutdown_timeout: \"-3\": a duration cannot be negative"},
        {"[supervisor]\nmax_session = \"0s\"", "supervisor.max_session: 0: write \"off\""},
        {"[guest]\nadmin_user = \"a/b\"", "guest.admin_user: \"a/b\": character '/' is not allowed"},
        {"[paths]\nruntime_dir = \"run/rescuevm\"", "paths.runtime_dir: \"run/rescuevm\" is not an absolute path"},
        {"[paths]\nqemu = \"bin/qemu\"", "paths.qemu: \"bin/qemu\": give a program name or an absolute path"},
        {"[log]\nlevel = \"warn\"", "log.level: \"warn\" is not one of trace, debug, info, warning, error"},
        {"[log]\nconsole = \"ttyS0,115200\"", "log.console: \"ttyS0,115200\": character ','"},
        {"[log]\nconsole_speed = 12345", "log.console_speed: 12345 is not a serial speed"},
    };
    for (const Row &row : rows) {
        CAPTURE(row.toml);
        CHECK_HAS(toml_error(row.toml), at + row.says);
    }
}

TEST_CASE("settings that contradict each other are errors at the key's line")
{
    CHECK_HAS(toml_error("[vm]\nfirmware = \"bios\"\nsecure_boot = true\n"),
              "config /etc/rescuevm/rescuevm.toml:3: vm.secure_boot: needs vm.firmware = \"uefi\"");
    CHECK_HAS(toml_error("[vm]\ninitrd = \"/boot/initrd\"\n"),
              "config /etc/rescuevm/rescuevm.toml:2: vm.initrd: needs vm.kernel");
    CHECK_HAS(toml_error("[vm]\nimage = \"\"\n"), "vm.image: empty, and no vm.kernel either");
}

TEST_CASE("bad TOML syntax names the file and the line")
{
    CHECK_HAS(toml_error("[vm]\ncpus = 2\nimage = \n"), "config /etc/rescuevm/rescuevm.toml:3: TOML syntax error");
    CHECK_HAS(toml_error("[vm]\ncpus = 2\ncpus = 3\n"), "config /etc/rescuevm/rescuevm.toml:3: TOML syntax error");
}

TEST_CASE("kernel command line overrides win over the file")
{
    auto file = parse_config_toml("[host]\nmin_memory = \"8GiB\"\n[vm]\ncpus = 4\n", "t.toml");
    REQUIRE(file.has_value());
    Config c = with_cmdline("BOOT_IMAGE=/vmlinuz rescuevm.host.min_memory=4GiB quiet\n", *file);
    CHECK(c.host.min_memory == 4ULL << 30);
    CHECK(c.vm.cpus == 4u);
    CHECK(c.set_by.at("host.min_memory") == "kernel command line (/proc/cmdline)");
    CHECK(c.set_by.at("vm.cpus") == "config t.toml:4");
}

TEST_CASE("kernel command line values are parsed by the key's type")
{
    Config c = with_cmdline("rescuevm.disks.match=loop*,sd* rescuevm.vm.cpus=2 rescuevm.vm.memory=auto "
                            "rescuevm.vm.secure-boot=1 rescuevm.supervisor.max_session=off "
                            "rescuevm.log.console= rescuevm.vm.accel=tcg");
    CHECK(c.disks.match == std::vector<std::string>{"loop*", "sd*"});
    CHECK(c.vm.cpus == 2u);
    CHECK_FALSE(c.vm.memory.has_value());
    CHECK(c.vm.secure_boot);
    CHECK_FALSE(c.supervisor.max_session.has_value());
    CHECK(c.vm.accel == Accel::tcg);
}

TEST_CASE("kernel command line quoting works like the kernel's")
{
    Config c = with_cmdline("rescuevm.vm.kernel=/k rescuevm.vm.append=\"console=ttyS0 quiet\" "
                            "\"rescuevm.guest.admin_user=Admin One\"");
    CHECK(c.vm.append == "console=ttyS0 quiet");
    CHECK(c.guest.admin_user == "Admin One");
}

TEST_CASE("boot switches fill Config.boot")
{
    Config c = with_cmdline("console=ttyS0,115200n8 rescuevm.enable=1 rescuevm.stage=initramfs");
    CHECK(c.boot.enable);
    CHECK(c.boot.stage == "initramfs");
    CHECK_FALSE(with_cmdline("rescuevm.enable=0").boot.enable);
    CHECK_HAS(cmdline_error("rescuevm.enable=yes"),
              "kernel command line (/proc/cmdline): rescuevm.enable: \"yes\" is not 1 or 0");
    CHECK_HAS(cmdline_error("rescuevm.stage=\"a b\""), "rescuevm.stage: \"a b\" is not a stage name");
}

TEST_CASE("kernel command line errors name the parameter")
{
    const std::string at = "kernel command line (/proc/cmdline): ";
    CHECK_HAS(cmdline_error("quiet rescuevm.foo.bar=1"), at + "rescuevm.foo.bar: unknown key: there is no section [foo]");
    CHECK_HAS(cmdline_error("rescuevm.vm.nope=1"), at + "rescuevm.vm.nope: unknown key; [vm] has image");
    CHECK_HAS(cmdline_error("rescuevm.debug=1"), at + "rescuevm.debug: unknown parameter");
    CHECK_HAS(cmdline_error("rescuevm.vm.cpus"), at + "rescuevm.vm.cpus: needs a value");
    CHECK_HAS(cmdline_error("rescuevm.enable"), at + "rescuevm.enable: needs a value");
    CHECK_HAS(cmdline_error("rescuevm.vm.nope"), at + "rescuevm.vm.nope: unknown key");
    CHECK_HAS(cmdline_error("rescuevm.vm.cpus=many"), at + "rescuevm.vm.cpus: expected \"auto\" or an integer, got string \"many\"");
    CHECK_HAS(cmdline_error("rescuevm.disks.match="), at + "rescuevm.disks.match: empty list");
    CHECK_HAS(cmdline_error("rescuevm.disks.match=sd*,,vd*"), at + "rescuevm.disks.match: pattern \"\"");
    CHECK_HAS(cmdline_error("rescuevm.vm.firmware=bios rescuevm.vm.secure_boot=1"),
              at + "vm.secure_boot: needs vm.firmware");
}

TEST_CASE("parameters that are not rescuevm's are left alone")
{
    Config c = with_cmdline("BOOT_IMAGE=/boot/vmlinuz root=UUID=abc ro quiet foo.bar=1 rescue "
                            "\"x=a b\" -- rescuevm.vm.cpus=banana");
    CHECK(settings_of(c) == Config{});
    CHECK(c.set_by.empty());
}

TEST_CASE("load_config: default file missing, explicit file missing, both sources")
{
    TempDir dir;
    std::string none = (dir.path / "absent").string();

    auto defaults = load_config({.config_path = none, .config_path_explicit = false, .kernel_cmdline_path = none});
    REQUIRE(defaults.has_value());
    CHECK(defaults->source == "built-in defaults");
    CHECK(*defaults == Config{});

    auto missing = load_config({.config_path = none, .config_path_explicit = true, .kernel_cmdline_path = none});
    CHECK_HAS(error_of(missing), "config " + none + ": no such file");

    std::string file = dir.write("rescuevm.toml", "[vm]\naccel = \"tcg\"\ncpus = 3\n");
    std::string cmdline = dir.write("cmdline", "quiet rescuevm.vm.cpus=1 rescuevm.enable=1\n");
    auto both = load_config({.config_path = file, .config_path_explicit = true, .kernel_cmdline_path = cmdline});
    REQUIRE_MESSAGE(both.has_value(), both.error().message);
    CHECK(both->source == file);
    CHECK(both->vm.accel == Accel::tcg);
    CHECK(both->vm.cpus == 1u);
    CHECK(both->boot.enable);

    std::string bad = dir.write("bad-cmdline", "rescuevm.vm.cpus=0\n");
    CHECK_HAS(error_of(load_config({.config_path = file, .config_path_explicit = false, .kernel_cmdline_path = bad})),
              "kernel command line (" + bad + "): rescuevm.vm.cpus: 0: must be");
}

TEST_CASE("the example config parses, sets every key, and holds the defaults")
{
    std::string path = std::string(FIXTURES_DIR) + "/../../../examples/rescuevm.toml";
    auto c = load_config({.config_path = path, .config_path_explicit = true, .kernel_cmdline_path = "/nonexistent"});
    REQUIRE_MESSAGE(c.has_value(), c.error().message);
    CHECK(settings_of(*c) == Config{});
    CHECK(c->set_by.size() == 32); // every key of the table in src/config/config_keys.cpp
}

TEST_CASE("to_string gives the names of the config file")
{
    CHECK(std::string(to_string(DiskBus::virtio_scsi)) == "virtio-scsi");
    CHECK(std::string(to_string(Addressing::static_)) == "static");
    CHECK(std::string(to_string(Addressing::auto_)) == "auto");
    CHECK(std::string(to_string(OnGuestPoweroff::stay_off)) == "stay-off");
    CHECK(std::string(to_string(RestoreSignatures::on_stop)) == "on-stop");
    CHECK(std::string(to_string(NicModel::virtio_net)) == "virtio-net");
    CHECK(std::string(to_string(Accel::kvm)) == "kvm");
    CHECK(std::string(to_string(Firmware::uefi)) == "uefi");
    CHECK(std::string(to_string(Display::none)) == "none");
    CHECK(std::string(to_string(NetworkMode::macvtap)) == "macvtap");
}
