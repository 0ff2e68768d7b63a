// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests for the server's console: [screen] config, plan_vm's screen decision, input device roles and input-linux objects, sysrq mask, viewer backoff, the console guard on a fake /proc/sys, the display reader and the viewer's scaler.
#include "plan_fixtures.h"
#include "rescuevm/agent/console_guard.h"
#include "rescuevm/core/config.h"
#include "rescuevm/core/console.h"
#include "rescuevm/core/plan.h"
#include "rescuevm/host/display.h"
#include "rescuevm/screen/scaler.h"

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

using namespace rescuevm;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const Check &check_named(const Plan &plan, const std::string &name)
{
    auto it = std::ranges::find_if(plan.checks, [&](const Check &c) { return c.name == name; });
    REQUIRE(it != plan.checks.end());
    return *it;
}

DrmCardFacts card(std::string name, std::string driver, bool boot_vga = false)
{
    return {name, "/dev/dri/" + name, std::move(driver), boot_vga, {"VGA-1 connected"}};
}

Config screen_config(ScreenMode mode)
{
    Config c = fixtures::config();
    c.screen.mode = mode;
    return c;
}

// Sets bits [from, to] of an evdev bitmap.
void set_bits(std::vector<std::uint8_t> &bits, unsigned from, unsigned to)
{
    if (bits.size() < to / 8 + 1)
        bits.resize(to / 8 + 1);
    for (unsigned n = from; n <= to; ++n)
        bits[n / 8] |= std::uint8_t(1u << (n % 8));
}

} // namespace

TEST_CASE("[screen] mode is read, checked against vm.display, and defaults to auto")
{
    CHECK(Config{}.screen.mode == ScreenMode::auto_);
    const std::pair<const char *, ScreenMode> modes[] = {
        {"auto", ScreenMode::auto_}, {"physical", ScreenMode::physical}, {"none", ScreenMode::none}};
    for (auto [text, mode] : modes) {
        auto c = parse_config_toml(std::string("[screen]\nmode = \"") + text + "\"\n", "t.toml");
        REQUIRE(c.has_value());
        CHECK(c->screen.mode == mode);
        CHECK(std::string(to_string(mode)) == text);
    }
    auto bad = parse_config_toml("[screen]\nmode = \"vga\"\n", "t.toml");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message.find("screen.mode") != std::string::npos);
    CHECK(bad.error().message.find("physical") != std::string::npos); // the choices are named

    auto no_vnc = parse_config_toml("[vm]\ndisplay = \"none\"\n[screen]\nmode = \"physical\"\n", "t.toml");
    REQUIRE_FALSE(no_vnc.has_value());
    CHECK(no_vnc.error().message.find("needs vm.display = \"vnc\"") != std::string::npos);
    // auto with display none is fine: the console simply stays the host's.
    CHECK(parse_config_toml("[vm]\ndisplay = \"none\"\n[screen]\nmode = \"auto\"\n", "t.toml").has_value());
}

TEST_CASE("plan: auto puts the screen on the boot VGA's DRM card, with the fbdev as fallback")
{
    HostFacts h = fixtures::server();
    h.display.drm = {card("card0", "i915"), card("card1", "ast", true)};
    h.display.fbdev = {{"fb0", "/dev/fb0", "astdrmfb"}};
    Plan p = plan_vm(h, screen_config(ScreenMode::auto_));
    CHECK(p.screen.physical);
    CHECK(p.screen.output == "drm");
    CHECK(p.screen.device == "/dev/dri/card1");
    CHECK(p.screen.driver == "ast");
    CHECK(p.screen.fallback == "/dev/fb0");
    CHECK(p.screen.vnc_socket == p.paths.vnc_socket());
    CHECK(check_named(p, "screen").ok);
    CHECK(p.ready());

    // No boot_vga flag: a BMC chip wins over the first card.
    h.display.drm = {card("card0", "nouveau"), card("card1", "mgag200")};
    CHECK(plan_vm(h, fixtures::config()).screen.device == "/dev/dri/card1");
    // Neither: the first card.
    h.display.drm = {card("card0", "nouveau"), card("card1", "radeon")};
    CHECK(plan_vm(h, fixtures::config()).screen.device == "/dev/dri/card0");
}

TEST_CASE("plan: without a DRM device auto says so in one line and the VM runs as before")
{
    HostFacts h = fixtures::server();
    h.display.fbdev = {{"fb0", "/dev/fb0", "EFI VGA"}};
    Plan p = plan_vm(h, fixtures::config());
    CHECK_FALSE(p.screen.physical);
    CHECK(p.screen.notice.find("no DRM display device, only /dev/fb0 (EFI VGA)") != std::string::npos);
    CHECK(p.screen.notice.find('\n') == std::string::npos);
    CHECK(check_named(p, "screen").ok);
    CHECK(p.ready());

    h.display.fbdev.clear();
    p = plan_vm(h, fixtures::config());
    CHECK_FALSE(p.screen.physical);
    CHECK(p.screen.notice.find("no display device") != std::string::npos);
    CHECK(p.ready());
}

TEST_CASE("plan: physical draws on the fbdev without DRM, and is refused with no display at all")
{
    HostFacts h = fixtures::server();
    h.display.fbdev = {{"fb0", "/dev/fb0", "VESA VGA"}};
    Plan p = plan_vm(h, screen_config(ScreenMode::physical));
    CHECK(p.screen.physical);
    CHECK(p.screen.output == "fbdev");
    CHECK(p.screen.device == "/dev/fb0");
    CHECK(p.ready());

    h.display.fbdev.clear();
    p = plan_vm(h, screen_config(ScreenMode::physical));
    CHECK_FALSE(p.screen.physical);
    const Check &c = check_named(p, "screen");
    CHECK_FALSE(c.ok);
    CHECK(c.message.find("or \"none\"") != std::string::npos); // says the way out
    CHECK_FALSE(p.ready());
}

TEST_CASE("plan: none leaves the console alone even with a DRM device")
{
    HostFacts h = fixtures::server();
    h.display.drm = {card("card0", "ast", true)};
    Plan p = plan_vm(h, screen_config(ScreenMode::none));
    CHECK_FALSE(p.screen.physical);
    CHECK(p.screen.device.empty());
    CHECK(p.screen.notice.find("screen.mode = \"none\"") != std::string::npos);
    CHECK(p.ready());
}

TEST_CASE("input devices: classified from evdev bits like udev's input_id")
{
    InputCapabilities kbd;
    kbd.bustype = 0x03;
    set_bits(kbd.key_bits, 1, 127);
    InputDeviceFacts k = classify_input("/dev/input/event3", "AMI Virtual Keyboard", kbd);
    CHECK(k.keyboard);
    CHECK(k.bus == "usb");
    CHECK(input_role(k) == InputRole::keyboard);

    InputCapabilities tablet; // QEMU's usb-tablet: absolute X/Y and buttons, no pen: a mouse
    tablet.bustype = 0x03;
    set_bits(tablet.key_bits, 0x110, 0x112);
    set_bits(tablet.abs_bits, 0, 1);
    InputDeviceFacts t = classify_input("/dev/input/event4", "QEMU QEMU USB Tablet", tablet);
    CHECK(t.mouse);
    CHECK_FALSE(t.tablet);
    CHECK_FALSE(t.keyboard);
    CHECK(input_role(t) == InputRole::pointer);

    InputCapabilities pen = tablet;
    set_bits(pen.key_bits, 0x140, 0x140);
    InputDeviceFacts pt = classify_input("/dev/input/event5", "pen", pen);
    CHECK(pt.tablet);
    CHECK(input_role(pt) == InputRole::pointer);

    InputCapabilities mouse;
    mouse.bustype = 0x11;
    set_bits(mouse.key_bits, 0x110, 0x111);
    set_bits(mouse.rel_bits, 0, 1);
    CHECK(input_role(classify_input("/dev/input/event6", "PS/2 mouse", mouse)) == InputRole::pointer);

    InputCapabilities power; // the ACPI power button: KEY_POWER (116) on the host bus
    power.bustype = 0x19;
    set_bits(power.key_bits, 116, 116);
    InputDeviceFacts pw = classify_input("/dev/input/event0", "Power Button", power);
    CHECK(pw.keys);
    CHECK_FALSE(pw.keyboard);
    CHECK(input_role(pw) == InputRole::leave); // the provider's clean power-off stays the host's

    InputCapabilities sysctl = power; // a BMC keyboard's system-control interface: USB keys
    sysctl.bustype = 0x03;
    CHECK(input_role(classify_input("/dev/input/event7", "AMI Virtual Keyboard System Control", sysctl)) ==
          InputRole::keys);

    CHECK(input_role(classify_input("/dev/input/event8", "nothing", {})) == InputRole::leave);
}

TEST_CASE("input-linux objects: exclusive grab, repeat only for keyboards, ids by node")
{
    InputDeviceFacts d{"/dev/input/event12", "kbd", "usb", true, true, false, false};
    InputObject o = input_linux_object(d, InputRole::keyboard);
    CHECK(o.id == "rv-input-event12");
    CHECK(o.id.starts_with(kInputObjectPrefix));
    CHECK(o.args["qom-type"] == "input-linux");
    CHECK(o.args["id"] == o.id);
    CHECK(o.args["evdev"] == "/dev/input/event12");
    CHECK(o.args["grab_all"] == true);
    CHECK(o.args["repeat"] == true);
    CHECK(o.args["grab-toggle"] == "ctrl-scrolllock");
    CHECK(input_linux_object(d, InputRole::pointer).args["repeat"] == false);
    CHECK(input_linux_object(d, InputRole::keys).args["repeat"] == false);
}

TEST_CASE("kernel.sysrq is restricted to log level and sync; nothing that reboots, crashes or kills")
{
    CHECK(restricted_sysrq(1) == 2 + 16);
    CHECK(restricted_sysrq(0) == 0);
    CHECK(restricted_sysrq(438) == 2 + 16); // Debian's default (0x1b6)
    CHECK(restricted_sysrq(176) == 16);     // 128 reboot + 32 remount + 16 sync
    for (unsigned v : {1u, 2u, 4u, 8u, 16u, 32u, 64u, 128u, 256u, 438u, 511u})
        CHECK((restricted_sysrq(v) & (4 | 8 | 32 | 64 | 128 | 256)) == 0);
    CHECK(kCtrlAltDelSignalsInit == 0);
}

TEST_CASE("the viewer restarts after 1 s, doubling, at most 30 s")
{
    CHECK(viewer_restart_delay(1) == 1000ms);
    CHECK(viewer_restart_delay(2) == 2000ms);
    CHECK(viewer_restart_delay(5) == 16000ms);
    CHECK(viewer_restart_delay(6) == 30000ms);
    CHECK(viewer_restart_delay(100) == 30000ms);
}

TEST_CASE("display reader: DRM cards with connectors, boot VGA, driver, fbdev ids from sysfs")
{
    fs::path root = fs::temp_directory_path() / ("rv-display-" + std::to_string(::getpid()));
    fs::remove_all(root);
    auto write = [&](const fs::path &p, const std::string &text) {
        fs::create_directories(p.parent_path());
        std::ofstream(p) << text;
    };
    fs::path drm = root / "sys/class/drm";
    fs::create_directories(root / "sys/bus/pci/drivers/bochs-drm");
    fs::create_directories(drm / "card0/device");
    fs::create_symlink(root / "sys/bus/pci/drivers/bochs-drm", drm / "card0/device/driver");
    write(drm / "card0/device/boot_vga", "1\n");
    write(drm / "card0-Virtual-1/status", "connected\n");
    write(drm / "card0-VGA-2/status", "unknown\n");
    fs::create_directories(drm / "card1/device"); // render-only: no connector
    fs::create_directories(drm / "renderD128");
    write(root / "sys/class/graphics/fb0/name", "bochs-drmdrmfb\n");
    fs::create_directories(root / "sys/class/graphics/fbcon");

    HostRoots roots;
    roots.sysfs = (root / "sys").string();
    roots.devfs = (root / "dev").string();
    DisplayFacts f = read_display_facts(roots);
    CHECK(f.problem.empty());
    REQUIRE(f.drm.size() == 1);
    CHECK(f.drm[0].name == "card0");
    CHECK(f.drm[0].path == roots.devfs + "/dri/card0");
    CHECK(f.drm[0].driver == "bochs-drm");
    CHECK(f.drm[0].boot_vga);
    CHECK(f.drm[0].connectors == std::vector<std::string>{"VGA-2 unknown", "Virtual-1 connected"});
    REQUIRE(f.fbdev.size() == 1);
    CHECK(f.fbdev[0].path == roots.devfs + "/fb0");
    CHECK(f.fbdev[0].id == "bochs-drmdrmfb");

    // A machine without any (this test machine has none): empty, no problem.
    roots.sysfs = (root / "nothing").string();
    DisplayFacts none = read_display_facts(roots);
    CHECK(none.drm.empty());
    CHECK(none.fbdev.empty());
    CHECK(none.problem.empty());
    fs::remove_all(root);
}

TEST_CASE("scaler: fitted keeping the aspect ratio, centred, black bars")
{
    using namespace screen;
    CHECK(fit_keeping_aspect({1280, 800}, {1280, 800}) == Rect{0, 0, 1280, 800});
    CHECK(fit_keeping_aspect({1024, 768}, {1920, 1080}) == Rect{240, 0, 1440, 1080});
    CHECK(fit_keeping_aspect({1920, 1080}, {1024, 768}) == Rect{0, 96, 1024, 576});
    CHECK(fit_keeping_aspect({640, 480}, {0, 0}).empty());
    CHECK(unite({}, {1, 2, 3, 4}) == Rect{1, 2, 3, 4});
    CHECK(unite({0, 0, 2, 2}, {4, 4, 2, 2}) == Rect{0, 0, 6, 6});
    CHECK(clip({10, 10, 100, 100}, {50, 40}) == Rect{10, 10, 40, 30});
    CHECK(clip({60, 0, 1, 1}, {50, 40}).empty());
}

TEST_CASE("scaler: draws only the damaged part, upscaled by nearest neighbour, in XRGB8888 and RGB565")
{
    using namespace screen;
    // A 4x2 source scaled onto a 10x4 screen: placed 8x4 at x=1.
    const Size src{4, 2}, scr{10, 4};
    std::vector<std::uint32_t> pixels(8);
    for (unsigned i = 0; i < 8; ++i)
        pixels[i] = 0x00010101u * (i + 1);
    Scaler s(src, scr);
    CHECK(s.placement() == Rect{1, 0, 8, 4});
    std::vector<std::uint32_t> screen(40, 0xdeadbeef);
    s.clear_borders(reinterpret_cast<std::uint8_t *>(screen.data()), 40, PixelFormat::xrgb8888);
    for (unsigned y = 0; y < 4; ++y) {
        CHECK(screen[y * 10] == 0);
        CHECK(screen[y * 10 + 9] == 0);
        CHECK(screen[y * 10 + 1] == 0xdeadbeef); // inside: untouched by clear_borders
    }
    // Only source pixel (1,0) changed: the 2x2 screen block at (3,0) is drawn, nothing else.
    Rect damage{1, 0, 1, 1};
    CHECK(s.covered(damage) == Rect{3, 0, 2, 2});
    s.draw(reinterpret_cast<const std::uint8_t *>(pixels.data()), 16, damage,
           reinterpret_cast<std::uint8_t *>(screen.data()), 40, PixelFormat::xrgb8888);
    for (unsigned y = 0; y < 4; ++y)
        for (unsigned x = 1; x < 9; ++x) {
            bool in = x >= 3 && x < 5 && y < 2;
            CAPTURE(x);
            CAPTURE(y);
            CHECK(screen[y * 10 + x] == (in ? 0x00020202u : 0xdeadbeefu));
        }
    // The whole picture: every screen pixel shows its source pixel.
    s.draw(reinterpret_cast<const std::uint8_t *>(pixels.data()), 16, {0, 0, 4, 2},
           reinterpret_cast<std::uint8_t *>(screen.data()), 40, PixelFormat::xrgb8888);
    for (unsigned y = 0; y < 4; ++y)
        for (unsigned x = 1; x < 9; ++x)
            CHECK(screen[y * 10 + x] == pixels[(y / 2) * 4 + (x - 1) / 2]);

    // RGB565: magenta stays magenta, at 2 bytes a pixel.
    std::vector<std::uint32_t> magenta(4, 0x00ff00ffu);
    std::vector<std::uint16_t> fb(4, 0);
    Scaler same({2, 2}, {2, 2});
    same.draw(reinterpret_cast<const std::uint8_t *>(magenta.data()), 8, {0, 0, 2, 2},
              reinterpret_cast<std::uint8_t *>(fb.data()), 4, PixelFormat::rgb565);
    CHECK(std::ranges::all_of(fb, [](std::uint16_t p) { return p == 0xf81f; }));
    // Identity scale copies rows as they are.
    std::vector<std::uint32_t> out(4, 0);
    same.draw(reinterpret_cast<const std::uint8_t *>(pixels.data()), 16, {0, 0, 2, 2},
              reinterpret_cast<std::uint8_t *>(out.data()), 8, PixelFormat::xrgb8888);
    CHECK(out == std::vector<std::uint32_t>{pixels[0], pixels[1], pixels[4], pixels[5]});
}

TEST_CASE("console guard: sysrq and ctrl-alt-del restricted, recorded, given back; an earlier record wins")
{
    fs::path root = fs::temp_directory_path() / ("rv-console-guard-" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root / "sys/kernel");
    auto put = [&](const char *name, const std::string &v) { std::ofstream(root / "sys/kernel" / name) << v << "\n"; };
    auto get = [&](const char *name) {
        std::ifstream in(root / "sys/kernel" / name);
        std::string v;
        in >> v;
        return v;
    };
    put("sysrq", "438");
    put("ctrl-alt-del", "1");
    ConsoleGuardPaths paths{(root / "console-guard.json").string(), (root / "sys").string(),
                            (root / "no-systemd").string()};
    auto said = protect_console(paths);
    REQUIRE_MESSAGE(said.has_value(), said.error().message);
    CHECK(get("sysrq") == "18");
    CHECK(get("ctrl-alt-del") == "0");
    CHECK(fs::exists(paths.record));
    CHECK((fs::status(paths.record).permissions() & fs::perms::others_read) == fs::perms::none);
    REQUIRE(said->size() == 2);
    CHECK((*said)[0].find("kernel.sysrq 438 -> 18") != std::string::npos);
    CHECK((*said)[1].find("no systemd") != std::string::npos);

    // A second agent (after a crash) finds the restricted values: the record keeps the originals.
    REQUIRE(protect_console(paths).has_value());
    auto back = release_console(paths);
    REQUIRE_MESSAGE(back.has_value(), back.error().message);
    CHECK(get("sysrq") == "438");
    CHECK(get("ctrl-alt-del") == "1");
    CHECK_FALSE(fs::exists(paths.record));
    // Nothing recorded: nothing to give back, nothing touched.
    put("sysrq", "1");
    auto none = release_console(paths);
    REQUIRE(none.has_value());
    CHECK(none->empty());
    CHECK(get("sysrq") == "1");

    // A damaged record is an error naming it, and nothing is written.
    std::ofstream(paths.record) << "{\"sysrq\": \"x\"}";
    auto damaged = protect_console(paths);
    REQUIRE_FALSE(damaged.has_value());
    CHECK(damaged.error().message.find("damaged") != std::string::npos);
    CHECK(get("sysrq") == "1");
    fs::remove_all(root);
}
