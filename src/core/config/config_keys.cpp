// SPDX-License-Identifier: GPL-2.0-or-later
// The table of every config key: its section, name, type and what values are possible.
#include "config_values.h"

#include "rescuevm/core/image_source.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace rescuevm::config_detail {
namespace {

using Setter = Result<void> (*)(Config &, const RawValue &);

struct Key {
    std::string_view section, name;
    Setter set;
};

// One key = one field of one section, filled by a parser for its type.
template <auto Section, auto Field, auto Parse>
Result<void> assign(Config &config, const RawValue &value)
{
    (config.*Section).*Field = RESCUEVM_TRY(Parse(value));
    return {};
}

// The agent runs from systemd or an initramfs: a relative path has no meaning there.
Result<std::string> want_path(const RawValue &v)
{
    auto s = want_string(v);
    if (s && !s->starts_with('/'))
        return fail(fmt::format("\"{}\" is not an absolute path", *s));
    return s;
}

Result<std::string> want_name(const RawValue &v, std::size_t max_len, std::string_view extra);

// vm.image: an absolute path, or an NBD URL; empty when booting a kernel.
Result<std::string> want_image(const RawValue &v)
{
    std::string s = RESCUEVM_TRY(want_string(v));
    if (is_nbd_url(s)) {
        RESCUEVM_TRY(parse_nbd_url(s));
        return s;
    }
    if (s.empty() || s.starts_with('/'))
        return s;
    return fail(fmt::format("\"{}\" is neither an absolute path nor an NBD URL (nbd://HOST[:PORT]/EXPORT, "
                            "nbd+unix:///EXPORT?socket=PATH)",
                            s));
}

// A name the image server's certificate carries (DNS name or address); "" means the URL's host.
Result<std::string> want_tls_hostname(const RawValue &v)
{
    if (is_word(v, ""))
        return std::string();
    return want_name(v, 253, "-.:");
}

// The overlay's bound: "auto" or a size of at least 16 MiB (a floor against typos such as "8M" for "8G").
Result<std::optional<std::uint64_t>> want_overlay_max(const RawValue &v)
{
    if (is_word(v, "auto"))
        return std::nullopt;
    std::uint64_t size = RESCUEVM_TRY(want_size(v));
    if (size < (16ULL << 20))
        return fail(fmt::format("{} bytes: give at least \"16MiB\" (Windows writes gigabytes; a few MiB is a typo), "
                                "or \"auto\"",
                                size));
    return size;
}

// Empty means "not used" (vm.kernel, vm.initrd; vm.image when booting a kernel).
Result<std::string> want_optional_path(const RawValue &v)
{
    if (is_word(v, ""))
        return std::string();
    return want_path(v);
}

constexpr std::string_view alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

Result<std::string> want_name(const RawValue &v, std::size_t max_len, std::string_view extra)
{
    std::string s = RESCUEVM_TRY(want_string(v));
    if (s.empty() || s.size() > max_len)
        return fail(fmt::format("\"{}\" must be 1 to {} characters long", s, max_len));
    for (char c : s)
        if (alnum.find(c) == alnum.npos && extra.find(c) == extra.npos)
            return fail(fmt::format("\"{}\": character '{}' is not allowed", s, c));
    return s;
}

// Shows up in QEMU's -name, the config drive and the logs.
Result<std::string> want_vm_name(const RawValue &v) { return want_name(v, 63, "-_."); }

// Interface names are at most 15 bytes (IFNAMSIZ) and hold no '/' or blanks.
Result<std::string> want_uplink(const RawValue &v) { return want_name(v, 15, "-_.@:"); }

// Windows refuses " / \ [ ] : ; | = , + * ? < > in user names, and more than 20 characters.
Result<std::string> want_admin_user(const RawValue &v)
{
    return want_name(v, 20, "-_. !#$%&'()@^`{}~");
}

Result<std::optional<std::uint64_t>> want_vm_memory(const RawValue &v)
{
    if (is_word(v, "auto"))
        return std::nullopt;
    std::uint64_t m = RESCUEVM_TRY(want_size(v));
    if (m == 0)
        return fail("0 bytes: give a size or \"auto\"");
    return m;
}

Result<std::optional<unsigned>> want_cpus(const RawValue &v)
{
    if (is_word(v, "auto"))
        return std::nullopt;
    auto n = want_integer(v);
    if (!n)
        return fail("expected \"auto\" or an integer, got " + describe(v));
    if (*n < 1 || *n > 1024)
        return fail(fmt::format("{}: must be \"auto\" or 1 to 1024", *n));
    return static_cast<unsigned>(*n);
}

Result<std::vector<std::string>> want_disk_patterns(const RawValue &v)
{
    auto list = RESCUEVM_TRY(want_strings(v));
    if (list.empty())
        return fail("empty list: no disk could ever be passed through");
    for (const auto &p : list)
        if (p.empty() || p.find('/') != p.npos)
            return fail(fmt::format("pattern \"{}\": give a kernel name glob like \"sd*\", "
                                    "not a path",
                                    p));
    return list;
}

// Zero would kill QEMU without giving Windows time to close NTFS cleanly.
Result<std::chrono::seconds> want_shutdown_timeout(const RawValue &v)
{
    auto d = RESCUEVM_TRY(want_duration(v));
    if (d.count() == 0)
        return fail("0: the guest needs time to power down; give at least \"1s\"");
    return d;
}

Result<std::optional<std::chrono::seconds>> want_max_session(const RawValue &v)
{
    if (is_word(v, "off"))
        return std::nullopt;
    auto d = RESCUEVM_TRY(want_duration(v));
    if (d.count() == 0)
        return fail("0: write \"off\" for no limit");
    return d;
}

// A bare name is looked up in PATH; anything with a '/' must be absolute.
Result<std::string> want_program(const RawValue &v)
{
    std::string q = RESCUEVM_TRY(want_string(v));
    if (q.empty() || (q.find('/') != q.npos && q.front() != '/'))
        return fail(fmt::format("\"{}\": give a program name or an absolute path", q));
    return q;
}

Result<std::string> want_log_level(const RawValue &v)
{
    return want_one_of(v, {"trace", "debug", "info", "warning", "error"});
}

// "ttyS0" or "/dev/ttyS0": a terminal's name under /dev, nothing else (the agent
// appends its log there as root); the speed goes in log.console_speed, not after a comma.
Result<std::string> want_console(const RawValue &v)
{
    if (is_word(v, ""))
        return std::string();
    std::string name = RESCUEVM_TRY(want_name(v, 64, "/_-."));
    std::string_view base = name.starts_with("/dev/") ? std::string_view(name).substr(5) : std::string_view(name);
    bool plain = !base.empty() && std::isalpha(static_cast<unsigned char>(base[0]));
    for (char c : base)
        plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!plain)
        return fail(fmt::format("\"{}\" is not a terminal device name: give one like \"ttyS0\", \"ttyS1\", \"hvc0\" "
                                "or \"/dev/ttyS0\"",
                                name));
    return name;
}

Result<unsigned> want_console_speed(const RawValue &v)
{
    // Rates termios can set on a serial console.
    constexpr std::int64_t speeds[] = {1200,   2400,   4800,   9600,   19200,  38400, 57600,
                                       115200, 230400, 460800, 500000, 576000, 921600};
    std::int64_t n = RESCUEVM_TRY(want_integer(v));
    if (std::ranges::find(speeds, n) == std::end(speeds))
        return fail(fmt::format("{} is not a serial speed (e.g. 9600, 57600, 115200)", n));
    return static_cast<unsigned>(n);
}

using C = Config;
const Key keys[] = {
    {"host", "min_memory", assign<&C::host, &C::Host::min_memory, want_size>},

    {"vm", "image", assign<&C::vm, &C::Vm::image, want_image>},
    {"vm", "image_tls", assign<&C::vm, &C::Vm::image_tls, want_optional_path>},
    {"vm", "image_tls_hostname", assign<&C::vm, &C::Vm::image_tls_hostname, want_tls_hostname>},
    {"vm", "image_unauthenticated", assign<&C::vm, &C::Vm::image_unauthenticated, want_bool>},
    {"vm", "overlay_max", assign<&C::vm, &C::Vm::overlay_max, want_overlay_max>},
    {"vm", "kernel", assign<&C::vm, &C::Vm::kernel, want_optional_path>},
    {"vm", "initrd", assign<&C::vm, &C::Vm::initrd, want_optional_path>},
    {"vm", "append", assign<&C::vm, &C::Vm::append, want_string>},
    {"vm", "memory", assign<&C::vm, &C::Vm::memory, want_vm_memory>},
    {"vm", "cpus", assign<&C::vm, &C::Vm::cpus, want_cpus>},
    {"vm", "accel", assign<&C::vm, &C::Vm::accel, want_enum<Accel>>},
    {"vm", "firmware", assign<&C::vm, &C::Vm::firmware, want_enum<Firmware>>},
    {"vm", "secure_boot", assign<&C::vm, &C::Vm::secure_boot, want_bool>},
    {"vm", "display", assign<&C::vm, &C::Vm::display, want_enum<Display>>},
    {"vm", "name", assign<&C::vm, &C::Vm::name, want_vm_name>},

    {"disks", "match", assign<&C::disks, &C::Disks::match, want_disk_patterns>},
    {"disks", "bus", assign<&C::disks, &C::Disks::bus, want_enum<DiskBus>>},

    {"network", "mode", assign<&C::network, &C::Network::mode, want_enum<NetworkMode>>},
    {"network", "uplink", assign<&C::network, &C::Network::uplink, want_uplink>},
    {"network", "addressing", assign<&C::network, &C::Network::addressing, want_enum<Addressing>>},
    {"network", "model", assign<&C::network, &C::Network::model, want_enum<NicModel>>},
    {"network", "resolv_conf", assign<&C::network, &C::Network::resolv_conf, want_path>},

    {"supervisor", "on_guest_poweroff",
     assign<&C::supervisor, &C::Supervisor::on_guest_poweroff, want_enum<OnGuestPoweroff>>},
    {"supervisor", "shutdown_timeout",
     assign<&C::supervisor, &C::Supervisor::shutdown_timeout, want_shutdown_timeout>},
    {"supervisor", "max_session",
     assign<&C::supervisor, &C::Supervisor::max_session, want_max_session>},
    {"supervisor", "restore_signatures",
     assign<&C::supervisor, &C::Supervisor::restore_signatures, want_enum<RestoreSignatures>>},

    {"guest", "admin_user", assign<&C::guest, &C::Guest::admin_user, want_admin_user>},
    {"guest", "admin_password_file", assign<&C::guest, &C::Guest::admin_password_file, want_path>},

    {"paths", "runtime_dir", assign<&C::paths, &C::Paths::runtime_dir, want_path>},
    {"paths", "qemu", assign<&C::paths, &C::Paths::qemu, want_program>},
    {"paths", "firmware_descriptors", assign<&C::paths, &C::Paths::firmware_descriptors, want_path>},

    {"log", "level", assign<&C::log, &C::Log::level, want_log_level>},
    {"log", "console", assign<&C::log, &C::Log::console, want_console>},
    {"log", "console_speed", assign<&C::log, &C::Log::console_speed, want_console_speed>},
};

const Key *find(std::string_view section, std::string_view key)
{
    for (const Key &k : keys)
        if (k.section == section && k.name == key)
            return &k;
    return nullptr;
}

} // namespace

bool is_section(std::string_view section)
{
    return std::ranges::any_of(keys, [&](const Key &k) { return k.section == section; });
}

bool is_key(std::string_view section, std::string_view key)
{
    return find(section, key) != nullptr;
}

std::string keys_of(std::string_view section)
{
    std::string out;
    for (const Key &k : keys)
        if (k.section == section)
            out += fmt::format("{}{}", out.empty() ? "" : ", ", k.name);
    return out;
}

std::string section_names()
{
    std::string out;
    std::string_view previous;
    for (const Key &k : keys) // grouped by section in the table
        if (std::exchange(previous, k.section) != k.section)
            out += fmt::format("{}{}", out.empty() ? "" : ", ", k.section);
    return out;
}

Result<void> set_key(Config &config, std::string_view section, std::string_view key,
                     const RawValue &value)
{
    const Key *k = find(section, key);
    if (!k)
        return fail(fmt::format("unknown key; [{}] has {}", section, keys_of(section)));
    return k->set(config, value);
}

Result<void> validate_combination(const Config &c)
{
    auto where = [&](const std::string &key) {
        auto it = c.set_by.find(key);
        return fmt::format("{}: {}: ", it == c.set_by.end() ? c.source : it->second, key);
    };
    if (c.vm.secure_boot && c.vm.firmware != Firmware::uefi)
        return fail(where("vm.secure_boot") + "needs vm.firmware = \"uefi\" (it is \"bios\")");
    if (c.vm.kernel.empty() && c.vm.image.empty())
        return fail(where("vm.image") + "empty, and no vm.kernel either: the VM has nothing to boot");
    bool nbd = c.vm.kernel.empty() && is_nbd_url(c.vm.image);
    if (!nbd) {
        std::pair<const char *, bool> given[] = {{"vm.image_tls", !c.vm.image_tls.empty()},
                                                 {"vm.image_tls_hostname", !c.vm.image_tls_hostname.empty()},
                                                 {"vm.image_unauthenticated", c.vm.image_unauthenticated}};
        for (auto [key, set] : given)
            if (set)
                return fail(where(key) + (c.vm.kernel.empty() ? "only applies to an NBD vm.image (nbd://...)"
                                                              : "only applies to an NBD vm.image, not to vm.kernel"));
    } else {
        auto url = parse_nbd_url(c.vm.image); // checked when vm.image was set
        if (c.vm.image_tls.empty() && !c.vm.image_unauthenticated)
            return fail(where("vm.image") + "an NBD image needs TLS: set vm.image_tls to a directory with " +
                        kTlsCaFile + ", " + kTlsCertFile + " and " + kTlsKeyFile +
                        ", or accept an unauthenticated image server with vm.image_unauthenticated = true");
        if (!c.vm.image_tls.empty() && c.vm.image_unauthenticated)
            return fail(where("vm.image_unauthenticated") + "true, but vm.image_tls is set too: choose one");
        if (c.vm.image_unauthenticated && !c.vm.image_tls_hostname.empty())
            return fail(where("vm.image_tls_hostname") + "needs vm.image_tls (no TLS, no certificate to check)");
        if (url && url->unix_socket && !c.vm.image_tls.empty() && c.vm.image_tls_hostname.empty())
            return fail(where("vm.image_tls_hostname") +
                        "an nbd+unix:// URL has no host name to check the server's certificate against: "
                        "set vm.image_tls_hostname to the name in it");
    }
    if (c.vm.kernel.empty() && !c.vm.initrd.empty())
        return fail(where("vm.initrd") + "needs vm.kernel (direct kernel boot)");
    if (c.vm.kernel.empty() && !c.vm.append.empty())
        return fail(where("vm.append") + "needs vm.kernel (direct kernel boot)");
    return {};
}

} // namespace rescuevm::config_detail
