// SPDX-License-Identifier: GPL-2.0-or-later
// Tests of plan_vm(): disk selection, natural order, checks, VM sizing.
#include "plan_fixtures.h"

#include <doctest/doctest.h>

#include <fnmatch.h>

#include <algorithm>

using namespace rescuevm;
using namespace rescuevm::fixtures;

namespace {
const Check &check(const Plan &p, const std::string &name)
{
    auto it = std::find_if(p.checks.begin(), p.checks.end(), [&](const Check &c) { return c.name == name; });
    REQUIRE(it != p.checks.end());
    return *it;
}
} // namespace

TEST_CASE("natural order of kernel names")
{
    std::vector<std::string> names = {"sdaa", "sdb", "sda", "sdz", "nvme0n10", "nvme0n2", "nvme1n1",
                                      "loop10", "loop2", "sr0", "vdb", "vda"};
    std::sort(names.begin(), names.end(), natural_less);
    CHECK(names == std::vector<std::string>{"loop2", "loop10", "nvme0n2", "nvme0n10", "nvme1n1", "sda", "sdb",
                                            "sdz", "sdaa", "sr0", "vda", "vdb"});
    CHECK_FALSE(natural_less("sda", "sda"));
    CHECK(natural_less("loop007", "loop8"));
}

TEST_CASE("glob patterns on kernel names")
{
    CHECK(glob_match("nvme*n*", "nvme0n1"));
    CHECK_FALSE(glob_match("nvme*n*", "nvme0"));
    CHECK(glob_match("loop[0-3]", "loop3"));
    CHECK_FALSE(glob_match("loop[0-3]", "loop4"));
}

TEST_CASE("selection: default patterns, virtual kinds, in use, order")
{
    std::vector<DiskInfo> disks = {disk("sdb", 10), disk("loop0", 1), disk("sda", 10), disk("nvme0n1", 10),
                                   disk("zram0", 1), disk("md127", 10), disk("sdc", 10), disk("sdd", 0)};
    disks[6].in_use = {"partition sdc1 mounted at /", "swap"};
    auto choices = select_disks(disks, Config{}.disks.match);
    std::vector<std::string> order;
    for (const auto &c : choices)
        order.push_back(c.disk.name);
    CHECK(order == std::vector<std::string>{"loop0", "md127", "nvme0n1", "sda", "sdb", "sdc", "sdd", "zram0"});
    auto by = [&](const std::string &n) {
        return *std::find_if(choices.begin(), choices.end(), [&](const DiskChoice &c) { return c.disk.name == n; });
    };
    CHECK(by("sda").selected);
    CHECK(by("nvme0n1").selected);
    CHECK_FALSE(by("loop0").selected);
    CHECK(by("loop0").reason == "excluded by disks.match");
    CHECK_FALSE(by("md127").selected);
    CHECK_FALSE(by("sdc").selected);
    CHECK(by("sdc").reason == "in use by the host: partition sdc1 mounted at /, swap");
    CHECK_FALSE(by("sdd").selected);
    CHECK(by("sdd").reason == "empty (size 0)");
}

TEST_CASE("selection: a broad glob does not pick virtual devices; naming them does")
{
    std::vector<DiskInfo> disks = {disk("loop3", 1), disk("sda", 1)};
    auto star = select_disks(disks, {"*"});
    CHECK(star[0].disk.name == "loop3");
    CHECK_FALSE(star[0].selected);
    CHECK(star[0].reason.find("not a physical disk") != std::string::npos);
    CHECK(star[1].selected);
    auto named = select_disks(disks, {"loop3"});
    CHECK(named[0].selected);
    CHECK(named[0].reason == "matches disks.match \"loop3\"");
    CHECK_FALSE(named[1].selected);
}

TEST_CASE("selection: in-use disks are never selected, whatever the patterns")
{
    std::vector<DiskInfo> disks = {disk("loop1", 1)};
    disks[0].in_use = {"held by md127"};
    auto c = select_disks(disks, {"loop1"});
    CHECK_FALSE(c[0].selected);
    CHECK(c[0].reason == "in use by the host: held by md127");
}

TEST_CASE("memory check: strictly more than host.min_memory")
{
    HostFacts h = server();
    Config c = config();
    h.memory_bytes = 16 * kGiB;
    auto p = plan_vm(h, c);
    CHECK_FALSE(check(p, "memory").ok);
    CHECK(check(p, "memory").message.find("16.0 GiB") != std::string::npos);
    CHECK_FALSE(p.ready());
    h.memory_bytes = 16 * kGiB + 4096;
    CHECK(check(plan_vm(h, c), "memory").ok);
    h.memory_bytes = 12 * kGiB;
    c.host.min_memory = 8 * kGiB;
    CHECK(check(plan_vm(h, c), "memory").ok);
}

TEST_CASE("auto memory: MemTotal minus max(4 GiB, 1/8), whole GiB")
{
    HostFacts h = server();
    Config c = config();
    CHECK(host_memory_reserve(64 * kGiB) == 8 * kGiB);
    CHECK(host_memory_reserve(24 * kGiB) == 4 * kGiB);
    h.memory_bytes = 64 * kGiB;
    CHECK(plan_vm(h, c).vm.memory_bytes == 56 * kGiB);
    h.memory_bytes = 24 * kGiB - 300 * (1ULL << 20); // 23.7 GiB: 19.7 left, rounded down
    CHECK(plan_vm(h, c).vm.memory_bytes == 19 * kGiB);
    h.memory_bytes = 256 * kGiB;
    CHECK(plan_vm(h, c).vm.memory_bytes == 224 * kGiB);
}

TEST_CASE("explicit memory must leave the host 2 GiB")
{
    HostFacts h = server();
    Config c = config();
    c.vm.memory = 62 * kGiB;
    auto ok = plan_vm(h, c);
    CHECK(check(ok, "vm-memory").ok);
    CHECK(ok.vm.memory_bytes == 62 * kGiB);
    c.vm.memory = 62 * kGiB + 1;
    auto bad = plan_vm(h, c);
    CHECK_FALSE(check(bad, "vm-memory").ok);
    CHECK(check(bad, "vm-memory").message.find("lower vm.memory") != std::string::npos);
    CHECK_FALSE(bad.ready());
}

TEST_CASE("auto cpus keep one core for the host above two")
{
    HostFacts h = server();
    Config c = config();
    h.cpus = 8;
    CHECK(plan_vm(h, c).vm.cpus == 7);
    h.cpus = 2;
    CHECK(plan_vm(h, c).vm.cpus == 2);
    h.cpus = 1;
    CHECK(plan_vm(h, c).vm.cpus == 1);
    c.vm.cpus = 3;
    CHECK(plan_vm(h, c).vm.cpus == 3);
}

TEST_CASE("kvm check: refused without /dev/kvm unless tcg")
{
    HostFacts h = server();
    Config c = config();
    h.kvm_usable = false;
    h.kvm_problem = "/dev/kvm: No such file or directory: load kvm_intel";
    auto p = plan_vm(h, c);
    CHECK_FALSE(check(p, "kvm").ok);
    CHECK(check(p, "kvm").message == h.kvm_problem);
    c.vm.accel = Accel::tcg;
    CHECK(check(plan_vm(h, c), "kvm").ok);
}

TEST_CASE("disks check: none selected, and SATA refuses 4Kn naming the disk")
{
    HostFacts h = server();
    Config c = config();
    c.disks.match = {"vd*"};
    auto none = plan_vm(h, c);
    CHECK_FALSE(check(none, "disks").ok);
    CHECK(check(none, "disks").message.find("no disk to pass through") != std::string::npos);
    c = config();
    h.disks.push_back(disk("sdc", 100, 4096, 4096));
    c.disks.bus = DiskBus::sata;
    auto sata = plan_vm(h, c);
    CHECK_FALSE(check(sata, "disks").ok);
    CHECK(check(sata, "disks").message.find("disk sdc has 4096-byte logical sectors") != std::string::npos);
}

TEST_CASE("image, firmware and network problems refuse the start with their message")
{
    HostFacts h = server();
    Config c = config();
    CHECK(plan_vm(h, c).ready());
    h.image = {false, "/srv/x.qcow2", "", 0, "", "rescue image /srv/x.qcow2: No such file or directory: put it there",
               false, "", 0};
    CHECK(check(plan_vm(h, c), "image").message == h.image.problem);
    h = server();
    h.firmware = {};
    h.firmware.problem = "no UEFI firmware";
    CHECK_FALSE(check(plan_vm(h, c), "firmware").ok);
    c.vm.firmware = Firmware::bios;
    CHECK(check(plan_vm(h, c), "firmware").ok);
    h = server();
    h.network.up = false; // the uplink is down
    CHECK_FALSE(check(plan_vm(h, config()), "network").ok);
    c = config();
    c.network.mode = NetworkMode::none;
    CHECK(check(plan_vm(h, c), "network").ok);
}

TEST_CASE("glob_match matches exactly as fnmatch(3) with no flags")
{
    const char *patterns[] = {"sd*", "nvme*n*", "vd?", "loop[0-9]", "loop[!0-3]", "loop[^0-3]*", "a[]]b",
                              "a[!]]b", "[a-c]*", "x\\*y", "*", "", "[", "a[b", "*[", "sd[a-]", "**n*1",
                              "sd\\a", "[z-a]"};
    const char *names[] = {"sda", "sdaa", "nvme0n1", "nvme10n12", "vda", "vdab", "loop3", "loop7", "loop37",
                           "a]b", "abb", "ab", "c0", "x*y", "xay", "", "[", "a[b", "sd-", "sdb", "n1"};
    for (const char *p : patterns)
        for (const char *n : names) {
            INFO("pattern \"", p, "\" name \"", n, "\"");
            CHECK(rescuevm::glob_match(p, n) == (::fnmatch(p, n, 0) == 0));
        }
}

TEST_CASE("plan refuses what run could never start: cpus past q35, memory too small, long socket paths")
{
    HostFacts h = server();
    Config c = config();
    c.vm.cpus = 1024;
    CHECK_FALSE(check(plan_vm(h, c), "vm-cpus").ok);
    CHECK(check(plan_vm(h, c), "vm-cpus").message.find("at most 288") != std::string::npos);
    c.vm.cpus = 16; // more than the host's 8: allowed, with a warning
    auto over = plan_vm(h, c);
    CHECK(check(over, "vm-cpus").ok);
    CHECK(std::any_of(over.warnings.begin(), over.warnings.end(),
                      [](const std::string &w) { return w.find("more than the host's 8 CPUs") != std::string::npos; }));
    c = config();
    c.vm.memory = 1;
    CHECK_FALSE(check(plan_vm(h, c), "vm-memory").ok);
    CHECK(check(plan_vm(h, c), "vm-memory").message.find("too small") != std::string::npos);
    c = config();
    c.paths.runtime_dir = "/run/" + std::string(100, 'x');
    CHECK_FALSE(check(plan_vm(h, c), "runtime-dir").ok);
    CHECK(check(plan_vm(h, c), "runtime-dir").message.find("unix socket path") != std::string::npos);
}

TEST_CASE("plan refuses a runtime_dir a non-root user could write or own, allows root's sticky /tmp")
{
    HostFacts h = server();
    Config c = config();
    auto comp = [](std::string path, unsigned uid, unsigned mode, bool dir = true) {
        PathComponent p;
        p.path = std::move(path);
        p.exists = true;
        p.directory = dir;
        p.uid = uid;
        p.mode = mode;
        return p;
    };
    c.paths.runtime_dir = "/tmp/rv";
    h.runtime_dir.components = {comp("/", 0, 0755), comp("/tmp", 0, 01777), comp("/tmp/rv", 0, 0700)};
    CHECK(check(plan_vm(h, c), "runtime-dir").ok);
    h.runtime_dir.components.back().uid = 1000;
    CHECK_FALSE(check(plan_vm(h, c), "runtime-dir").ok);
    CHECK(check(plan_vm(h, c), "runtime-dir").message.find("owned by uid 1000") != std::string::npos);
    h.runtime_dir.components.back() = comp("/tmp/rv", 0, 0777);
    CHECK(check(plan_vm(h, c), "runtime-dir").message.find("writable by users other than root") != std::string::npos);
    c.paths.runtime_dir = "/srv/rv";
    h.runtime_dir.components = {comp("/", 0, 0755), comp("/srv", 0, 0777), comp("/srv/rv", 0, 0700)};
    CHECK_FALSE(check(plan_vm(h, c), "runtime-dir").ok);
    h.runtime_dir.components = {comp("/", 0, 0755), comp("/srv", 0, 0755)}; // created by the agent later
    h.runtime_dir.components.push_back(PathComponent{"/srv/rv", false, false, false, 0, 0});
    CHECK(check(plan_vm(h, c), "runtime-dir").ok);
}

TEST_CASE("plan refuses what the uplink claim would refuse: networkd, macvtaps already on the NIC")
{
    HostFacts h = server();
    h.network.networkd = "systemd-networkd (lease /run/systemd/netif/leases/2)";
    CHECK_FALSE(check(plan_vm(h, config()), "network").ok);
    CHECK(check(plan_vm(h, config()), "network").message.find("managed by systemd-networkd") != std::string::npos);
    h = server();
    h.network.stacked = {"macvtap macvtap0"};
    CHECK(check(plan_vm(h, config()), "network").message.find("already carries macvtap macvtap0") !=
          std::string::npos);
}

TEST_CASE("the password check and the image collision warning come from the facts")
{
    HostFacts h = server();
    h.admin_password = {"/run/rescuevm/admin-password", false, "is owned by uid 1000 with mode 0644: run `chown ...`"};
    CHECK_FALSE(check(plan_vm(h, config()), "password").ok);
    h.admin_password = {"/run/rescuevm/admin-password", true, ""};
    CHECK(check(plan_vm(h, config()), "password").message.find("password set") != std::string::npos);
    h.image.disk_id = "f4d0c979-f72a-4dda-92c2-7a811e2a6b31";
    h.disks[0].partition_table = "gpt";
    h.disks[0].disk_id = "f4d0c979-f72a-4dda-92c2-7a811e2a6b31";
    auto plan = plan_vm(h, config());
    CHECK(std::any_of(plan.warnings.begin(), plan.warnings.end(),
                      [](const std::string &w) { return w.find("rescue image") != std::string::npos; }));
}
