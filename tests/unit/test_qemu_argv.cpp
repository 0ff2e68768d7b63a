// SPDX-License-Identifier: GPL-2.0-or-later
// Golden tests of render_qemu_argv(): a plan in, the exact argv out (tests/unit/golden/*.argv).
#include "golden_cases.h"

#include "rescuevm/core/qemu_argv.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace rescuevm;
using namespace rescuevm::fixtures;

namespace {

const std::string kGoldenDir = FIXTURES_DIR "/../golden";

// The Session `plan` and `run` build, with a fixed uuid.
Session session(const Plan &plan)
{
    return session_for(plan, "3b1c9a52-7f0e-4d2b-9c61-2a5e8f4d7b10");
}

// Compares with the golden file, one word per line; RESCUEVM_UPDATE_GOLDEN=1 rewrites it.
void check_golden(const std::string &name, const std::vector<std::string> &argv)
{
    std::string path = kGoldenDir + "/" + name + ".argv";
    std::string actual;
    for (const auto &w : argv)
        actual += w + "\n";
    if (std::getenv("RESCUEVM_UPDATE_GOLDEN")) {
        std::ofstream(path) << actual;
        return;
    }
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "golden file missing: " << path << " (run with RESCUEVM_UPDATE_GOLDEN=1)");
    std::stringstream expected;
    expected << in.rdbuf();
    if (expected.str() == actual)
        return;
    // Show what changed, word by word.
    std::istringstream e(expected.str()), a(actual);
    std::string el, al;
    std::string diff;
    for (int line = 1; static_cast<bool>(std::getline(e, el)) | static_cast<bool>(std::getline(a, al)); ++line) {
        if (el != al)
            diff += "  line " + std::to_string(line) + ": expected [" + el + "] got [" + al + "]\n";
        el.clear();
        al.clear();
    }
    FAIL_CHECK("argv differs from " << path << ":\n" << diff);
}

std::vector<std::string> render(const Plan &plan, const Session &s)
{
    auto argv = render_qemu_argv(plan, s);
    REQUIRE_MESSAGE(argv.has_value(), (argv ? "" : argv.error().message));
    return *argv;
}

} // namespace

TEST_CASE("golden: every case of golden_cases.h renders its golden argv")
{
    for (const auto &g : golden_cases()) {
        CAPTURE(g.name);
        Plan p = plan_vm(g.host, g.config);
        REQUIRE_MESSAGE(p.ready(), g.name << " is not a ready plan");
        check_golden(g.name, render(p, session(p)));
    }
}

TEST_CASE("golden cases: TCG carries no Hyper-V flag; a serial's comma is doubled")
{
    for (const auto &g : golden_cases()) {
        Plan p = plan_vm(g.host, g.config);
        auto argv = render(p, session(p));
        if (g.name == "tcg_4kn_kernel")
            for (const auto &w : argv)
                CHECK(w.find("hv-") == std::string::npos);
        if (g.name == "uefi_kvm_sata_comma")
            CHECK(std::find(argv.begin(), argv.end(),
                            std::string("ide-hd,id=disk1,bus=ide.2,drive=disk1-file,logical_block_size=512,"
                                        "physical_block_size=4096,serial=WD,,COMMA")) != argv.end());
    }
}

TEST_CASE("SATA refuses a 4Kn disk, naming it")
{
    Config c = config();
    c.disks.bus = DiskBus::sata;
    HostFacts h = server();
    h.disks = {disk("sda", 100), disk("sdb", 100, 4096, 4096)};
    Plan p = plan_vm(h, c);
    auto argv = render_qemu_argv(p, session(p));
    REQUIRE_FALSE(argv.has_value());
    CHECK(argv.error().message.find("disk sdb has 4096-byte logical sectors") != std::string::npos);
}

TEST_CASE("values with a newline or NUL are refused; commas are doubled")
{
    CHECK(*qemu_escape("/srv/a,b.qcow2", "vm.image") == "/srv/a,,b.qcow2");
    auto bad = qemu_escape(std::string("a\nb"), "vm.image");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message.find("vm.image") != std::string::npos);
    CHECK_FALSE(qemu_escape(std::string("a\0b", 3), "x").has_value());

    Config c = config();
    HostFacts h = server();
    h.disks[0].path = "/dev/sd\nb";
    Plan p = plan_vm(h, c);
    CHECK_FALSE(render_qemu_argv(p, session(p)).has_value());
    CHECK_FALSE(p.ready()); // the "qemu" check of the plan says the same
}

TEST_CASE("guest serials: cut per bus, derived for NVMe only")
{
    DiskInfo d = disk("sda", 1, 512, 512, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789XYZ");
    CHECK(guest_serial(d, DiskBus::virtio_blk) == "ABCDEFGHIJKLMNOPQRST");
    CHECK(guest_serial(d, DiskBus::virtio_scsi) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
    DiskInfo none = disk("nvme2n1", 1);
    CHECK(guest_serial(none, DiskBus::virtio_blk).empty());
    CHECK(guest_serial(none, DiskBus::nvme) == "nvme2n1");
    none.wwn = "eui.0025388b71b2c3d4e5f60718293a4b5c";
    CHECK(guest_serial(none, DiskBus::nvme) == "c3d4e5f60718293a4b5c"); // the last 20 alphanumerics
}

TEST_CASE("shell quoting")
{
    CHECK(shell_quote({"qemu", "-name", "guest=a b", "it's"}) == "qemu -name 'guest=a b' 'it'\\''s'");
}
