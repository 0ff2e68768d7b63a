// SPDX-License-Identifier: GPL-2.0-or-later
// Config: every setting of rescuevm, read from TOML and the kernel command line.
#pragma once

#include "rescuevm/core/error.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rescuevm {

enum class Accel { kvm, tcg };
enum class Firmware { uefi, bios };
enum class DiskBus { virtio_blk, virtio_scsi, nvme, sata };
enum class Display { vnc, none };
enum class NetworkMode { macvtap, none };
enum class Addressing { auto_, dhcp, static_ };
enum class NicModel { virtio_net, e1000e };
enum class OnGuestPoweroff { stay_off, restart };
enum class RestoreSignatures { never, on_stop };

struct Config {
    // Where the values came from, for messages ("built-in defaults" or a path).
    std::string source = "built-in defaults";
    // Where each key that is not a default was set, for messages:
    // "vm.memory" -> "config /etc/rescuevm/rescuevm.toml:12" or "kernel command line (/proc/cmdline)".
    std::map<std::string, std::string> set_by;

    struct Host {
        std::uint64_t min_memory = 16ULL << 30;
        bool operator==(const Host &) const = default;
    } host;

    struct Vm {
        // A file, or an NBD export: nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH.
        std::string image = "/srv/rescuevm/windows-rescue.qcow2";
        std::string image_tls;           // NBD: directory with ca-cert.pem, client-cert.pem, client-key.pem
        std::string image_tls_hostname;  // NBD: the name the server's certificate must carry ("": the URL's host)
        bool image_unauthenticated = false; // NBD without TLS, only when the operator says so
        // The most the overlay in runtime_dir may grow to; nullopt: auto (half of runtime_dir's free space, at most 8 GiB).
        std::optional<std::uint64_t> overlay_max;
        std::string kernel;  // direct kernel boot (test guests) instead of image
        std::string initrd;
        std::string append;
        std::optional<std::uint64_t> memory; // nullopt: auto
        std::optional<unsigned> cpus;        // nullopt: auto
        Accel accel = Accel::kvm;
        Firmware firmware = Firmware::uefi;
        bool secure_boot = false;
        Display display = Display::vnc;
        std::string name = "rescuevm";
        bool operator==(const Vm &) const = default;
    } vm;

    struct Disks {
        std::vector<std::string> match = {"sd*", "nvme*n*", "vd*", "xvd*", "hd*"};
        DiskBus bus = DiskBus::virtio_blk;
        bool operator==(const Disks &) const = default;
    } disks;

    struct Network {
        NetworkMode mode = NetworkMode::macvtap;
        std::string uplink = "auto";
        Addressing addressing = Addressing::auto_;
        NicModel model = NicModel::virtio_net;
        std::string resolv_conf = "/etc/resolv.conf";
        bool operator==(const Network &) const = default;
    } network;

    struct Supervisor {
        OnGuestPoweroff on_guest_poweroff = OnGuestPoweroff::stay_off;
        std::chrono::seconds shutdown_timeout{120};
        std::optional<std::chrono::seconds> max_session; // off by default
        RestoreSignatures restore_signatures = RestoreSignatures::never;
        bool operator==(const Supervisor &) const = default;
    } supervisor;

    struct Guest {
        std::string admin_user = "Administrator";
        std::string admin_password_file = "/run/rescuevm/admin-password";
        bool operator==(const Guest &) const = default;
    } guest;

    struct Paths {
        std::string runtime_dir = "/run/rescuevm";
        std::string qemu = "qemu-system-x86_64";
        std::string firmware_descriptors = "/usr/share/qemu/firmware";
        bool operator==(const Paths &) const = default;
    } paths;

    struct Log {
        std::string level = "info";
        std::string console; // empty: last console= of the kernel command line
        unsigned console_speed = 115200;
        bool operator==(const Log &) const = default;
    } log;

    // Boot switches from the kernel command line (rescuevm.enable, rescuevm.stage).
    struct Boot {
        bool enable = false;
        std::string stage;
        bool operator==(const Boot &) const = default;
    } boot;

    bool operator==(const Config &) const = default;
};

// Parses "16GiB", "512MiB", "1.5GiB", "17179869184", "4k"... into bytes.
Result<std::uint64_t> parse_size(const std::string &text);
// Parses "120s", "5m", "24h", "1d", "90" (seconds) into seconds.
Result<std::chrono::seconds> parse_duration(const std::string &text);
// "17.0 GiB" style rendering for messages.
std::string format_gib(std::uint64_t bytes);
// "64 MiB" below 1 GiB, else as format_gib: for sizes that may be small (the overlay's bound).
std::string format_size(std::uint64_t bytes);

// The texts a config is built from; the caller reads the files.
struct ConfigTexts {
    std::optional<std::string> toml;   // nullopt: no file, built-in defaults
    std::string toml_origin;           // the file's path, for messages
    std::optional<std::string> cmdline; // nullopt: no kernel command line
    std::string cmdline_path = "/proc/cmdline";
};

// The TOML text, then rescuevm.<section>.<key>= overrides from the command line
// (the command line wins), then the checks across keys. Errors name the file,
// line and key.
Result<Config> build_config(const ConfigTexts &texts);

// Pure parts, for tests.
Result<Config> parse_config_toml(const std::string &text, const std::string &origin);
Result<void> apply_kernel_cmdline(Config &config, const std::string &cmdline,
                                  const std::string &origin);

// Names as they appear in the config file and in JSON.
const char *to_string(Accel);
const char *to_string(Firmware);
const char *to_string(DiskBus);
const char *to_string(Display);
const char *to_string(NetworkMode);
const char *to_string(Addressing);
const char *to_string(NicModel);
const char *to_string(OnGuestPoweroff);
const char *to_string(RestoreSignatures);

} // namespace rescuevm
