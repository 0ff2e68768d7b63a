// SPDX-License-Identifier: GPL-2.0-or-later
// plan_screen(): whether the VM's screen goes to the server's own console, on which device, or why not. Pure.
#include "checks.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>

namespace rescuevm::plan_detail {
namespace {

// The VGA chips of server BMCs (and QEMU's stdvga): what KVM-over-IP captures.
constexpr std::array<std::string_view, 5> kBmcDrivers = {"ast", "mgag200", "bochs-drm", "bochs", "hibmc-drm"};

// The card a BMC shows: the firmware's boot VGA, else a BMC chip, else the first.
const DrmCardFacts *console_card(const DisplayFacts &display)
{
    if (display.drm.empty())
        return nullptr;
    auto it = std::ranges::find_if(display.drm, [](const DrmCardFacts &c) { return c.boot_vga; });
    if (it == display.drm.end())
        it = std::ranges::find_if(display.drm, [](const DrmCardFacts &c) {
            return std::ranges::find(kBmcDrivers, c.driver) != kBmcDrivers.end();
        });
    return it == display.drm.end() ? &display.drm.front() : &*it;
}

std::string fbdev_list(const DisplayFacts &display)
{
    std::string out;
    for (const auto &fb : display.fbdev)
        out += fmt::format("{}{} ({})", out.empty() ? "" : ", ", fb.path, fb.id.empty() ? "?" : fb.id);
    return out;
}

} // namespace

ScreenPlan plan_screen(const HostFacts &host, const Config &config)
{
    ScreenPlan s;
    s.mode = config.screen.mode;
    s.vnc_socket = RuntimePaths{config.paths.runtime_dir}.vnc_socket();
    const DisplayFacts &display = host.display;
    if (s.mode == ScreenMode::none) {
        s.notice = "screen.mode = \"none\": the server's console stays the host's; the VM's screen is on the VNC "
                   "socket only";
        return s;
    }
    if (config.vm.display == Display::none) {
        // screen.mode = "physical" with vm.display = "none" is refused by the config itself.
        s.notice = "vm.display = \"none\": no VNC socket to draw the server's console from; the console stays "
                   "the host's";
        return s;
    }
    const FbdevFacts *fb = display.fbdev.empty() ? nullptr : &display.fbdev.front();
    if (const DrmCardFacts *card = console_card(display)) {
        s.physical = true;
        s.output = "drm";
        s.device = card->path;
        s.driver = card->driver;
        s.fallback = fb ? fb->path : "";
        return s;
    }
    if (s.mode == ScreenMode::physical && fb) {
        s.physical = true;
        s.output = "fbdev";
        s.device = fb->path;
        s.driver = fb->id;
        return s;
    }
    std::string why = display.problem.empty() ? "" : fmt::format(" ({})", display.problem);
    if (fb)
        s.notice = fmt::format("no DRM display device, only {}{}: the VM's screen is on the VNC socket only; "
                               "load the console's DRM driver (ast, mgag200, bochs) or set screen.mode = "
                               "\"physical\" to draw on the framebuffer",
                               fbdev_list(display), why);
    else
        s.notice = fmt::format("no display device (no DRM card, no /dev/fb*){}: the VM's screen is on the VNC "
                               "socket only",
                               why);
    return s;
}

} // namespace rescuevm::plan_detail
