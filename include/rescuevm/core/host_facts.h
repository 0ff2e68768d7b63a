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

// A DHCP client serving the uplink, as the readers found it: its process, what its
// command line names (broken out; the command line itself is not kept), its pid file
// and its control socket.
struct DhcpClientFacts {
    std::string name = {};        // "dhclient" | "dhcpcd" | "udhcpc" | "udhcpc6"
    int pid = 0;
    std::uint64_t start_time = 0; // /proc/<pid>/stat field 22: the same process later
    std::vector<std::string> interfaces = {}; // the interfaces it serves; empty: every interface
    bool manager = false;         // dhcpcd in manager mode: serves every (or several) interfaces
    std::string family = {};      // "ipv4" (-4), "ipv6" (-6), "" (its default)
    std::vector<std::string> flags = {}; // options without a value, as given ("-v", "-I", "-nw")
    std::vector<std::string> other_options = {}; // options with a value not broken out below, by name ("-sf")
    std::string pid_file = {};    // dhclient: -pf or its default; dhcpcd: the one it holds
    int pid_file_pid = 0;         // the pid pid_file holds (0: missing or unreadable)
    std::string lease_file = {};  // dhclient: -lf or its default
    std::string duid_file = {};   // dhclient: -df
    std::string config_file = {}; // dhclient: -cf
    std::string duid_type = {};   // dhclient: -D LL|LLT
    std::string control_socket = {}; // dhcpcd: the control socket it listens on ("" when none)
};

// systemd-networkd and the uplink, from /run/systemd/netif.
struct NetworkdFacts {
    bool running = false;         // a systemd-networkd runs in this network namespace
    std::string admin_state = {}; // the uplink's ADMIN_STATE: "configured", "unmanaged", ... ("" no state)
    std::string network_file = {}; // NETWORK_FILE: the .network file that configures it
    bool dhcp_lease = false;      // it holds a DHCPv4 lease for the uplink (netif/leases/<ifindex>)
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
    std::vector<DhcpClientFacts> dhcp_clients; // DHCP client processes serving the uplink
    NetworkdFacts networkd;
    // Network daemons rescuevm cannot hand the uplink over from: "NetworkManager pid 812".
    std::vector<std::string> other_managers;
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

// One DRM device with a display (/sys/class/drm/cardN): what can show the VM on the server's console.
struct DrmCardFacts {
    std::string name;             // "card0"
    std::string path;             // "/dev/dri/card0"
    std::string driver;           // kernel driver: "ast", "mgag200", "bochs-drm", "i915", ...
    bool boot_vga = false;        // the PCI device the firmware drew on (what a BMC captures)
    // Each connector as "VGA-1 connected" / "unknown" / "disconnected" (a BMC's VGA may say
    // unknown or disconnected and still be captured).
    std::vector<std::string> connectors;
};

// One fbdev framebuffer (/sys/class/graphics/fbN): efifb, vesafb, or a DRM driver's emulation.
struct FbdevFacts {
    std::string name;             // "fb0"
    std::string path;             // "/dev/fb0"
    std::string id;               // its fix.id: "EFI VGA", "VESA VGA", "bochs-drmdrmfb", "astdrmfb"
};

struct DisplayFacts {
    std::vector<DrmCardFacts> drm; // only cards with at least one connector
    std::vector<FbdevFacts> fbdev;
    std::string problem;          // what could not be read ("" when fine)
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
    DisplayFacts display;
};

} // namespace rescuevm
