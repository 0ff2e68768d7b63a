// SPDX-License-Identifier: GPL-2.0-or-later
// The rules for the server's console during a session: input device roles, input-linux objects, viewer restarts, sysrq. Pure.
#include "rescuevm/core/console.h"

#include <algorithm>

namespace rescuevm {
namespace {

// Linux input event codes (linux/input-event-codes.h): the core includes no system header.
constexpr unsigned kKeyEsc = 1, kKeyD = 32;
constexpr unsigned kBtnMisc = 0x100, kKeyOk = 0x160;
constexpr unsigned kBtnLeft = 0x110, kBtnToolPen = 0x140, kBtnStylus = 0x14b;
constexpr unsigned kRelX = 0, kRelY = 1, kAbsX = 0, kAbsY = 1;
constexpr std::uint16_t kBusUsb = 0x03, kBusI8042 = 0x11, kBusHost = 0x19;

bool bit(const std::vector<std::uint8_t> &bits, unsigned n)
{
    return n / 8 < bits.size() && (bits[n / 8] >> (n % 8)) & 1;
}

} // namespace

InputDeviceFacts classify_input(std::string node, std::string name, const InputCapabilities &caps)
{
    InputDeviceFacts d;
    d.node = std::move(node);
    d.name = std::move(name);
    d.bus = caps.bustype == kBusUsb ? "usb" : caps.bustype == kBusI8042 ? "i8042" : caps.bustype == kBusHost ? "host" : "";
    bool all = true;
    for (unsigned k = kKeyEsc; k < kKeyD; ++k)
        all = all && bit(caps.key_bits, k);
    d.keyboard = all;
    for (unsigned k = 1; k < caps.key_bits.size() * 8 && !d.keys; ++k)
        d.keys = bit(caps.key_bits, k) && (k < kBtnMisc || k >= kKeyOk);
    bool left = bit(caps.key_bits, kBtnLeft);
    bool pen = bit(caps.key_bits, kBtnToolPen) || bit(caps.key_bits, kBtnStylus);
    bool rel = bit(caps.rel_bits, kRelX) && bit(caps.rel_bits, kRelY);
    bool abs = bit(caps.abs_bits, kAbsX) && bit(caps.abs_bits, kAbsY);
    d.tablet = abs && pen;
    d.mouse = !d.tablet && left && (rel || abs);
    return d;
}

InputRole input_role(const InputDeviceFacts &d)
{
    if (d.keyboard)
        return InputRole::keyboard;
    if (d.mouse || d.tablet)
        return InputRole::pointer;
    if (d.keys && d.bus == "usb")
        return InputRole::keys;
    return InputRole::leave;
}

const char *to_string(InputRole role)
{
    switch (role) {
    case InputRole::keyboard: return "keyboard";
    case InputRole::keys: return "keys";
    case InputRole::pointer: return "pointer";
    case InputRole::leave: break;
    }
    return "host";
}

InputObject input_linux_object(const InputDeviceFacts &d, InputRole role)
{
    std::string node = d.node.substr(d.node.rfind('/') + 1);
    InputObject o;
    o.id = kInputObjectPrefix + node;
    o.args = {{"qom-type", "input-linux"},
              {"id", o.id},
              {"evdev", d.node},
              // One grab toggle releases every device: all are given back or taken together.
              {"grab_all", true},
              // Windows' PS/2 keyboard has no typematic of its own under QEMU: the host's repeats.
              {"repeat", role == InputRole::keyboard},
              // The hot key that gives the devices back to the host: the least likely one to be
              // typed on a Windows login screen (ScrollLock is then never passed to the guest).
              {"grab-toggle", "ctrl-scrolllock"}};
    return o;
}

std::chrono::milliseconds viewer_restart_delay(unsigned failures)
{
    std::chrono::milliseconds delay{1000};
    for (unsigned i = 1; i < failures && delay < std::chrono::seconds(30); ++i)
        delay *= 2;
    return std::min<std::chrono::milliseconds>(delay, std::chrono::seconds(30));
}

unsigned restricted_sysrq(unsigned current)
{
    return current == 1 ? kSysrqAllowed : current & kSysrqAllowed;
}

} // namespace rescuevm
