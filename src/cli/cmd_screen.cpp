// SPDX-License-Identifier: GPL-2.0-or-later
// `rescuevm screen`: the console viewer the agent runs (and supervises) to show the VM on the server's own screen.
#include "rescuevm/cli/cli.h"
#include "rescuevm/screen/viewer.h"

#include <charconv>
#include <iostream>

namespace rescuevm {
namespace {

bool parse_unsigned(const std::string &text, unsigned long long &out)
{
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

int screen_usage(const std::string &message)
{
    std::cerr << "rescuevm screen: " << message
              << "\nusage: rescuevm screen --vnc SOCKET [--drm /dev/dri/cardN] [--fbdev /dev/fbN] [--vt N|none]\n"
                 "                       [--memory WxH] [--frames N] [--seconds N]\n";
    return kExitUsage;
}

} // namespace

int cmd_screen(const CliOptions &cli)
{
    screen::ViewerOptions o;
    const auto &a = cli.args;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const std::string &opt = a[i];
        if (i + 1 >= a.size())
            return screen_usage(opt + " needs a value");
        const std::string &v = a[++i];
        unsigned long long n = 0;
        if (opt == "--vnc") {
            o.vnc_socket = v;
        } else if (opt == "--drm") {
            o.drm = v;
        } else if (opt == "--fbdev") {
            o.fbdev = v;
        } else if (opt == "--vt") {
            if (v == "none")
                o.take_vt = false;
            else if (parse_unsigned(v, n) && n >= 1 && n <= 63)
                o.vt = unsigned(n);
            else
                return screen_usage("--vt takes a VT number (1-63) or none");
        } else if (opt == "--memory") {
            auto x = v.find('x');
            unsigned long long w = 0, h = 0;
            if (x == std::string::npos || !parse_unsigned(v.substr(0, x), w) || !parse_unsigned(v.substr(x + 1), h) ||
                w == 0 || h == 0 || w > 8192 || h > 8192)
                return screen_usage("--memory takes WIDTHxHEIGHT, e.g. 1920x1080");
            o.memory = {unsigned(w), unsigned(h)};
        } else if (opt == "--frames" && parse_unsigned(v, n)) {
            o.max_frames = n;
        } else if (opt == "--seconds" && parse_unsigned(v, n)) {
            o.max_time = std::chrono::seconds(n);
        } else {
            return screen_usage("unknown option or bad value: " + opt + " " + v);
        }
    }
    if (o.vnc_socket.empty())
        return screen_usage("--vnc SOCKET is required (QEMU's -vnc unix: socket, e.g. /run/rescuevm/vnc.sock)");
    if (o.drm.empty() && o.fbdev.empty() && !o.memory.w)
        return screen_usage("give --drm, --fbdev or --memory: where to draw");
    return screen::run_viewer(o);
}

} // namespace rescuevm
