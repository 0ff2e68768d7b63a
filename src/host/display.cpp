// SPDX-License-Identifier: GPL-2.0-or-later
// Reads the display devices from sysfs: DRM cards (driver, boot VGA, connector status) and fbdev framebuffers.
#include "rescuevm/host/display.h"

#include "rescuevm/core/plan.h"
#include "rescuevm/sys/files.h"

#include <dirent.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <climits>

namespace rescuevm {
namespace {

// The first line of a small sysfs attribute, or "".
std::string attribute(const std::string &path)
{
    auto text = read_small_file(path, path, 4096);
    if (!text || !*text)
        return "";
    std::string s = **text;
    s = s.substr(0, s.find('\n'));
    return s;
}

std::vector<std::string> entries(const std::string &dir, std::string &problem)
{
    std::vector<std::string> out;
    DIR *d = ::opendir(dir.c_str());
    if (!d) {
        if (errno != ENOENT)
            problem = fmt::format("cannot read {}: {}", dir, errno_text(errno));
        return out;
    }
    while (dirent *e = ::readdir(d))
        if (e->d_name[0] != '.')
            out.push_back(e->d_name);
    ::closedir(d);
    std::ranges::sort(out, natural_less);
    return out;
}

std::string link_name(const std::string &path)
{
    char buf[PATH_MAX];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
    if (n <= 0)
        return "";
    std::string target(buf, static_cast<std::size_t>(n));
    return target.substr(target.rfind('/') + 1);
}

} // namespace

DisplayFacts read_display_facts(const HostRoots &roots)
{
    DisplayFacts facts;
    std::string drm_dir = roots.sysfs + "/class/drm";
    std::vector<std::string> drm = entries(drm_dir, facts.problem);
    for (const std::string &name : drm) {
        // "card0" is a device; "card0-VGA-1" its connector; "renderD128" a render node.
        if (!name.starts_with("card") || name.find('-') != std::string::npos)
            continue;
        DrmCardFacts card;
        card.name = name;
        card.path = roots.devfs + "/dri/" + name;
        card.driver = link_name(drm_dir + "/" + name + "/device/driver");
        card.boot_vga = attribute(drm_dir + "/" + name + "/device/boot_vga") == "1";
        for (const std::string &conn : drm)
            if (conn.starts_with(name + "-")) {
                std::string status = attribute(drm_dir + "/" + conn + "/status");
                card.connectors.push_back(fmt::format("{} {}", conn.substr(name.size() + 1),
                                                      status.empty() ? "unknown" : status));
            }
        if (!card.connectors.empty())
            facts.drm.push_back(std::move(card));
    }
    std::string fb_dir = roots.sysfs + "/class/graphics";
    for (const std::string &name : entries(fb_dir, facts.problem)) {
        if (!name.starts_with("fb") || name.find_first_not_of("0123456789", 2) != std::string::npos)
            continue;
        facts.fbdev.push_back({name, roots.devfs + "/" + name, attribute(fb_dir + "/" + name + "/name")});
    }
    return facts;
}

} // namespace rescuevm
