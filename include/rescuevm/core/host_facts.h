// SPDX-License-Identifier: GPL-2.0-or-later
// HostFacts: what the readers found on the machine; the only input plan_vm() needs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rescuevm {

struct PartitionInfo {
    std::string name;             // kernel name, e.g. "sda1", "loop3p1"
    unsigned major = 0, minor = 0;
    unsigned number = 0;          // partition number in the table (sda1: 1); 0 if unknown
    std::uint64_t size_bytes = 0;
    std::string fs_type;          // libblkid TYPE: "ntfs", "BitLocker", "vfat", "swap", ...
    std::string label;            // libblkid LABEL
    std::string part_type;        // GPT type GUID or MBR type ("0x7")
    std::string part_uuid;        // GPT partition GUID / MBR "sig-NN"
    // Windows role recognised from the above: "ntfs", "bitlocker", "efi-system",
    // "microsoft-reserved", "ldm-metadata", "ldm-data", "windows-recovery", or "".
    std::string windows_role;
};

struct DiskInfo {
    std::string name;             // kernel name: "sda", "nvme0n1", "loop3"
    std::string path;             // "/dev/sda"
    unsigned major = 0, minor = 0;
    std::uint64_t size_bytes = 0;
    std::uint32_t logical_block_size = 512;
    std::uint32_t physical_block_size = 512;
    bool rotational = false;
    bool removable = false;
    bool read_only = false;
    std::string model;
    std::string serial;
    std::string wwn;
    std::string source;           // "udev" or "sysfs": where the attributes came from
    std::string partition_table;  // libblkid PTTYPE: "gpt", "dos", or ""
    std::string disk_id;          // libblkid PTUUID: MBR signature or GPT disk GUID
    std::string fs_type;          // libblkid TYPE of the whole disk when it has no table ("swap")
    std::string backing_file;     // loop devices: the file behind it (sysfs loop/backing_file)
    std::vector<PartitionInfo> partitions;
    bool windows_dynamic = false; // LDM (MBR type 0x42 or GPT LDM metadata partition)
    // Why the host is using it, one entry per use, in words:
    // "partition loop3p1 mounted at /mnt/x", "swap", "held by md127", "mounted at /".
    std::vector<std::string> in_use;
};

struct NetAddress {
    std::string family;           // "ipv4" | "ipv6"
    std::string address;          // "203.0.113.10"
    unsigned prefix = 0;          // 32
    std::string scope;            // "global" | "link"
};

struct NetRoute {
    std::string family;           // "ipv4" | "ipv6"
    std::string destination;      // "default" or "203.0.113.1/32"
    std::string gateway;          // "" when on-link
    bool gateway_outside_prefix = false; // /32 + gateway elsewhere (OVH, Hetzner)
};

struct NetworkFacts {
    bool found = false;
    std::string requested = "auto"; // network.uplink as configured
    std::string uplink;           // interface name ("" when none was found)
    int ifindex = 0;
    std::string mac;              // "52:54:00:12:34:56"
    unsigned mtu = 1500;
    bool up = false;
    bool carrier = false;         // IFF_LOWER_UP: a cable (or veth peer) is there
    std::string kind;             // "" (physical), "veth", "bond", "bridge", ...
    std::string master;           // bond/bridge it is enslaved to, or ""
    std::string master_kind;      // "bond", "bridge", "team", ...
    std::vector<std::string> stacked; // macvlan/macvtap devices already on it: "macvtap rvtap1"
    std::vector<std::string> interfaces; // other candidates, for messages
    std::vector<NetAddress> addresses;
    std::vector<NetAddress> link_local; // fe80::/10 and 169.254/16: not handed to the guest
    std::vector<NetRoute> routes; // default routes and the on-link routes they need
    std::vector<std::string> gateways;
    std::vector<std::string> dns;
    bool dhcp = false;            // decided by plan_vm (network.addressing); readers leave it
    bool dynamic_v4 = false;      // an IPv4 address with a finite lifetime (a lease)
    std::string dhcp_client;      // e.g. "dhclient pid 123", for the log
    std::string networkd;         // "systemd-networkd (lease ...)" when networkd serves it
    bool macvtap_supported = false; // the kernel has (or can load) macvtap
    std::string macvtap_missing_detail; // e.g. "no /sys/class/macvtap, no macvtap.ko for 6.1.0"
    std::string read_error;       // netlink could not be read at all
};

// An OVMF build found through QEMU's firmware descriptors (interop JSON).
struct FirmwareFacts {
    bool found = false;
    std::string descriptor;       // the JSON file it came from
    std::string code;             // OVMF_CODE*.fd
    std::string vars_template;    // OVMF_VARS*.fd
    std::string format = "raw";
    bool secure_boot = false;
    std::string problem;
};

struct ImageFacts {
    bool found = false;
    std::string path;
    std::string format;           // "qcow2" | "raw"
    std::uint64_t virtual_size = 0;
    std::string disk_id;          // partition-table id of the disk inside the image (qcow2 read through)
    std::string problem;          // what is wrong, as found ("" when usable)
    bool nbd = false;             // served by an NBD server (vm.image is an nbd:// URL)
    std::string transport;        // NBD: "TLS, server certificate checked for NAME" or "unauthenticated"
    std::uint64_t probe_ms = 0;   // NBD: how long the probe took
};

// guest.admin_password_file as found: present, or why it cannot be used.
struct SecretFileFacts {
    std::string path;
    bool present = false;         // a usable file is there
    std::string problem;          // what is wrong with it, with the fix ("" when fine or absent)
};

// One component of paths.runtime_dir, from / down: who could replace or plant files there.
struct PathComponent {
    std::string path;
    bool exists = false;
    bool directory = false;
    bool symlink = false;
    unsigned uid = 0;
    unsigned mode = 0;            // st_mode & 07777
};

struct RuntimeDirFacts {
    std::vector<PathComponent> components; // "/", "/run", "/run/rescuevm"
    std::uint64_t free_bytes = 0;          // on the file system that holds it (or its nearest parent)
};

struct HostFacts {
    std::uint64_t memory_bytes = 0; // MemTotal
    unsigned cpus = 0;              // online CPUs
    bool kvm_usable = false;
    std::string kvm_problem;        // why /dev/kvm cannot be used
    bool io_uring = true;           // QEMU's aio=io_uring usable
    bool vhost_net = false;         // /dev/vhost-net exists
    std::vector<DiskInfo> disks;    // every block device of type disk
    NetworkFacts network;
    FirmwareFacts firmware;
    ImageFacts image;
    SecretFileFacts admin_password;
    RuntimeDirFacts runtime_dir;
};

} // namespace rescuevm
