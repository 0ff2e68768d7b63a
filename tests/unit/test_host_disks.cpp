// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of the host disk inventory over the fixture sysfs/proc tree (fixtures/host).
#include "rescuevm/host/disks.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/host/procfs.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace rescuevm;

namespace {

HostRoots fixture_roots()
{
    // The fixture has no device nodes: every disk logs "partition table and
    // filesystems unknown ..., ignoring". Expected here, so kept off the output.
    log::get("disks")->set_level(spdlog::level::err);
    HostRoots r;
    r.sysfs = FIXTURES_DIR "/host/sys";
    r.procfs = FIXTURES_DIR "/host/proc";
    r.devfs = FIXTURES_DIR "/host/dev";
    r.use_udev = false;
    return r;
}

const DiskInfo &disk(const std::vector<DiskInfo> &disks, const std::string &name)
{
    auto it = std::find_if(disks.begin(), disks.end(), [&](const DiskInfo &d) { return d.name == name; });
    REQUIRE_MESSAGE(it != disks.end(), "disk " << name << " not listed");
    return *it;
}

bool has(const std::vector<std::string> &v, const std::string &s)
{
    return std::find(v.begin(), v.end(), s) != v.end();
}

std::vector<std::string> names(const std::vector<DiskInfo> &disks)
{
    std::vector<std::string> n;
    for (const auto &d : disks)
        n.push_back(d.name);
    return n;
}

} // namespace

TEST_CASE("read_disks lists whole disks in kernel-name order, without partitions, hidden or empty devices")
{
    auto disks = read_disks(fixture_roots());
    REQUIRE(disks.has_value());
    CHECK(names(*disks) == std::vector<std::string>{"dm-0", "loop0", "md127", "nvme0n1", "sda", "sdb",
                                                    "sdc", "sr0", "vda", "zram0"});
}

TEST_CASE("read_disks reads sysfs attributes of a 512e SATA disk")
{
    auto disks = read_disks(fixture_roots());
    REQUIRE(disks.has_value());
    const auto &sda = disk(*disks, "sda");
    CHECK(sda.path == FIXTURES_DIR "/host/dev/sda");
    CHECK(sda.major == 8);
    CHECK(sda.minor == 0);
    CHECK(sda.size_bytes == 1953525168ULL * 512);
    CHECK(sda.logical_block_size == 512);
    CHECK(sda.physical_block_size == 4096);
    CHECK(sda.rotational);
    CHECK_FALSE(sda.removable);
    CHECK_FALSE(sda.read_only);
    CHECK(sda.model == "ST1000NM0033-9ZM");       // trailing blanks trimmed
    CHECK(sda.serial == "Z1W0ABCD");              // from VPD page 0x80, padding trimmed
    CHECK(sda.wwn == "0x5000c500a1b2c3d4");       // naa. written the way udev does
    CHECK(sda.source == "sysfs");
    REQUIRE(sda.partitions.size() == 2);
    CHECK(sda.partitions[0].name == "sda1");
    CHECK(sda.partitions[0].number == 1);
    CHECK(sda.partitions[0].major == 8);
    CHECK(sda.partitions[0].minor == 1);
    CHECK(sda.partitions[0].size_bytes == 1048576ULL * 512);
    CHECK(sda.partitions[1].name == "sda2");
}

TEST_CASE("read_disks reads a 4Kn disk's block sizes")
{
    auto disks = read_disks(fixture_roots());
    REQUIRE(disks.has_value());
    const auto &sdb = disk(*disks, "sdb");
    CHECK(sdb.logical_block_size == 4096);
    CHECK(sdb.physical_block_size == 4096);
    CHECK(sdb.size_bytes == 23437770752ULL * 512); // sysfs size is in 512-byte units even on 4Kn
    CHECK(sdb.serial == "8DG5XYZA");
}

TEST_CASE("read_disks reads NVMe, virtio, loop and CD attributes")
{
    auto disks = read_disks(fixture_roots());
    REQUIRE(disks.has_value());
    const auto &nvme = disk(*disks, "nvme0n1");
    CHECK(nvme.model == "Samsung SSD 970 EVO Plus 1TB");
    CHECK(nvme.serial == "S4EWNX0N123456");
    CHECK(nvme.wwn == "eui.0025388b71b5b4f1");
    CHECK_FALSE(nvme.rotational);
    REQUIRE(nvme.partitions.size() == 2);
    CHECK(nvme.partitions[1].name == "nvme0n1p2");
    CHECK(disk(*disks, "vda").serial == "QM00001");
    CHECK(disk(*disks, "loop0").backing_file == "/srv/images/disk.img");
    const auto &sr0 = disk(*disks, "sr0");
    CHECK(sr0.removable);
    CHECK(sr0.read_only);
    CHECK(sr0.logical_block_size == 2048);
}

TEST_CASE("read_disks tolerates libblkid failures: no device nodes, empty table facts")
{
    auto disks = read_disks(fixture_roots());
    REQUIRE(disks.has_value());
    const auto &sda = disk(*disks, "sda");
    CHECK(sda.partition_table.empty());
    CHECK(sda.disk_id.empty());
    CHECK(sda.partitions[0].fs_type.empty());
}

TEST_CASE("in-use: a partition mounted through another path is found by device number")
{
    auto disks = read_disks(fixture_roots());
    REQUIRE(disks.has_value());
    // mountinfo says /dev/disk/by-uuid/0b6d1f2c and /dev/root, never /dev/sda1 or /dev/nvme0n1p2.
    CHECK(has(disk(*disks, "sda").in_use, "partition sda1 mounted at /srv data"));
    const auto &nvme = disk(*disks, "nvme0n1").in_use;
    CHECK(has(nvme, "partition nvme0n1p2 mounted at /"));
    CHECK(has(nvme, "partition nvme0n1p2 mounted at /var/lib/docker"));
    CHECK(disk(*disks, "md127").in_use == std::vector<std::string>{"mounted at /data"});
}

TEST_CASE("in-use: swap on a partition and on a whole device")
{
    auto disks = read_disks(fixture_roots());
    REQUIRE(disks.has_value());
    CHECK(has(disk(*disks, "sda").in_use, "partition sda2 is swap"));
    CHECK(disk(*disks, "zram0").in_use == std::vector<std::string>{"swap"});
}

TEST_CASE("in-use: holders of the disk and of its partitions")
{
    auto disks = read_disks(fixture_roots());
    REQUIRE(disks.has_value());
    CHECK(disk(*disks, "loop0").in_use == std::vector<std::string>{"held by dm-0 (vg0-data)"});
    CHECK(disk(*disks, "sdc").in_use == std::vector<std::string>{"partition sdc1 held by md127"});
}

TEST_CASE("in-use: disks nobody uses have no reasons")
{
    auto disks = read_disks(fixture_roots());
    REQUIRE(disks.has_value());
    CHECK(disk(*disks, "sdb").in_use.empty());
    CHECK(disk(*disks, "vda").in_use.empty());
    CHECK(disk(*disks, "sda").in_use.size() == 2);
}

TEST_CASE("read_disks fails, naming the file, when mountinfo cannot be read")
{
    auto roots = fixture_roots();
    roots.procfs = FIXTURES_DIR "/host-bad-meminfo/proc";
    auto disks = read_disks(roots);
    REQUIRE_FALSE(disks.has_value());
    CHECK(disks.error().message.find("host-bad-meminfo/proc/self/mountinfo") != std::string::npos);
    CHECK(disks.error().message.find("which disks the host uses") != std::string::npos);
}

TEST_CASE("read_disks with no block devices at all is an empty list")
{
    auto roots = fixture_roots();
    roots.sysfs = FIXTURES_DIR "/host/proc"; // no block/ directory here
    auto disks = read_disks(roots);
    REQUIRE(disks.has_value());
    CHECK(disks->empty());
}

TEST_CASE("parse_mountinfo: device numbers, optional fields, escapes, bad lines skipped")
{
    auto m = parse_mountinfo("36 35 98:0 /mnt1 /mnt/parent\\040dir rw,noatime master:1 shared:2 - ext3 /dev/root rw\n"
                             "garbage line\n"
                             "37 35 x:y / /bad rw - ext4 /dev/sdz rw\n"
                             "38 35 0:21 / /run rw - tmpfs tmpfs rw\n");
    REQUIRE(m.size() == 2);
    CHECK(m[0].major == 98);
    CHECK(m[0].minor == 0);
    CHECK(m[0].mount_point == "/mnt/parent dir");
    CHECK(m[0].fs_type == "ext3");
    CHECK(m[0].source == "/dev/root");
    CHECK(m[1].mount_point == "/run");
    CHECK(m[1].fs_type == "tmpfs");
}

TEST_CASE("parse_swaps: header skipped, type kept, escapes decoded")
{
    auto s = parse_swaps("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
                         "/dev/sda2                               partition\t8388604\t\t0\t\t-2\n"
                         "/swap\\040file                           file\t\t1048572\t\t0\t\t-3\n");
    REQUIRE(s.size() == 2);
    CHECK(s[0].path == "/dev/sda2");
    CHECK(s[0].type == "partition");
    CHECK(s[1].path == "/swap file");
    CHECK(s[1].type == "file");
}

TEST_CASE("windows_role recognises Windows partitions by type GUID, MBR type and filesystem")
{
    CHECK(windows_role("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", "ntfs") == "ntfs");
    CHECK(windows_role("0x7", "ntfs") == "ntfs");
    CHECK(windows_role("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", "BitLocker") == "bitlocker");
    CHECK(windows_role("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "vfat") == "efi-system");
    CHECK(windows_role("0xef", "vfat") == "efi-system");
    CHECK(windows_role("e3c9e316-0b5c-4db8-817d-f92df00215ae", "") == "microsoft-reserved");
    CHECK(windows_role("5808c8aa-7e8f-42e0-85d2-e1e90434cfb3", "") == "ldm-metadata");
    CHECK(windows_role("af9b60a0-1431-4f62-bc68-3311714a69ad", "") == "ldm-data");
    CHECK(windows_role("de94bba4-06d1-4d40-a16a-bfd50179d6ac", "ntfs") == "windows-recovery");
    CHECK(windows_role("0x83", "ext4") == "");
    CHECK(windows_role("", "") == "");
}

TEST_CASE("apply_udev_properties takes udev's identity and keeps sysfs values udev lacks")
{
    DiskInfo d;
    d.model = "sysfs model";
    d.serial = "sysfs serial";
    d.wwn = "0x1111";
    apply_udev_properties(d, {{"ID_MODEL", "Samsung_SSD_970"},
                              {"ID_MODEL_ENC", "Samsung\\x20SSD\\x20970\\x20\\x20"},
                              {"ID_SERIAL_SHORT", "S4EW123"}});
    CHECK(d.model == "Samsung SSD 970");
    CHECK(d.serial == "S4EW123");
    CHECK(d.wwn == "0x1111");

    apply_udev_properties(d, {{"ID_MODEL", "Other_Model"}, {"ID_WWN", "0x5000c5"},
                              {"ID_WWN_WITH_EXTENSION", "0x5000c5ffff"}, {"ID_SERIAL_SHORT", ""}});
    CHECK(d.model == "Other_Model");
    CHECK(d.wwn == "0x5000c5ffff");
    CHECK(d.serial == "S4EW123"); // empty property: keep what we had
}

TEST_CASE("kvm_problem names the node, the error and the fix")
{
    HostRoots r = fixture_roots();
    r.devfs = FIXTURES_DIR "/no-such-dev";
    auto missing = kvm_problem(r);
    CHECK(missing.find(FIXTURES_DIR "/no-such-dev/kvm: No such file or directory") == 0);
    CHECK(missing.find("kvm_intel or kvm_amd") != std::string::npos);
    CHECK(missing.find("vm.accel = \"tcg\"") != std::string::npos);

    auto not_kvm = kvm_problem(fixture_roots()); // a plain file named kvm
    CHECK(not_kvm.find("not a KVM device") != std::string::npos);
}

TEST_CASE("read_cpu_count is at least one")
{
    CHECK(read_cpu_count() >= 1);
}
