// SPDX-License-Identifier: GPL-2.0-or-later
// The server's own console during a session: which host input devices go to the VM, the QEMU input-linux objects, the viewer's restarts, and what keeps a console keyboard from ending the host. Pure.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace rescuevm {

// One host input device (/dev/input/eventN) as a reader found it: from udev's input_id
// properties (ID_INPUT_KEYBOARD, ...) or, without udev, from its capability bits.
struct InputDeviceFacts {
    std::string node;          // "/dev/input/event3"
    std::string name;          // "QEMU QEMU USB Keyboard", "AMI Virtual Keyboard"
    std::string bus;           // "usb", "i8042", "host" (ACPI buttons), "" when unknown
    bool keyboard = false;     // a full keyboard (ID_INPUT_KEYBOARD)
    bool keys = false;         // some keys (ID_INPUT_KEY): power/sleep/media buttons
    bool mouse = false;        // ID_INPUT_MOUSE (relative, or absolute like QEMU's usb-tablet)
    bool tablet = false;       // ID_INPUT_TABLET
};

// The capability bits of an evdev device (EVIOCGBIT, EVIOCGID), for hosts without udev.
struct InputCapabilities {
    std::uint16_t bustype = 0;          // struct input_id.bustype (BUS_USB = 0x03, ...)
    std::vector<std::uint8_t> key_bits; // EV_KEY bitmap, bit n = key code n
    std::vector<std::uint8_t> rel_bits; // EV_REL bitmap
    std::vector<std::uint8_t> abs_bits; // EV_ABS bitmap
};

// udev's input_id rules, as far as they matter here: a full keyboard has the keys ESC
// to D (codes 1..31), a mouse REL_X+REL_Y or ABS_X+ABS_Y with a left button, a tablet
// ABS_X+ABS_Y with a pen or stylus.
InputDeviceFacts classify_input(std::string node, std::string name, const InputCapabilities &caps);

enum class InputRole {
    leave,    // stays the host's (ACPI power button, lid, PC speaker, ...)
    keyboard, // a keyboard: repeat=on
    keys,     // extra keys of a USB keyboard (the BMC's power/sleep keys): to the VM, never to logind
    pointer,  // mouse or tablet (absolute pointers included)
};

// Which devices the VM gets: keyboards, mice and tablets, and key-only devices on USB (a
// BMC's virtual keyboard has a system-control interface with power and sleep keys). The
// host keeps the rest: the ACPI power button is the provider's clean power-off.
InputRole input_role(const InputDeviceFacts &device);
const char *to_string(InputRole role);

// The QEMU object for one device: object-add arguments for input-linux with an exclusive
// grab (EVIOCGRAB: neither the host's VT nor SysRq nor logind see its events).
struct InputObject {
    std::string id;      // "rv-input-event3": the agent's objects start with kInputObjectPrefix
    nlohmann::json args; // {"qom-type":"input-linux","id":...,"evdev":...,...}
};
inline constexpr const char *kInputObjectPrefix = "rv-input-";
InputObject input_linux_object(const InputDeviceFacts &device, InputRole role);

// How long the agent waits before starting the screen viewer again after it ended
// `failures` times in a row (1 s, doubling, at most 30 s).
std::chrono::milliseconds viewer_restart_delay(unsigned failures);
// A viewer that ran this long before it ended starts the count again.
inline constexpr std::chrono::seconds kViewerStableAfter{60};

// kernel.sysrq while a session runs: the current value restricted to the functions that
// cannot end, crash or stall the host (from the keyboard or the serial console's break):
// console log level (2) and sync (16). 1 (everything) becomes that mask; 0 stays 0.
// Gone: keyboard control/SAK (4, kills what runs on the console), dumps (8, includes
// crash), remount read-only (32), signals (64, kills the agent and QEMU), reboot and
// poweroff (128), nice (256). /proc/sysrq-trigger (root) is not affected by the mask.
inline constexpr unsigned kSysrqAllowed = 2 | 16;
unsigned restricted_sysrq(unsigned current);

// kernel.ctrl-alt-del while a session runs: 0 = the kernel never reboots by itself on
// Ctrl-Alt-Del, it signals PID 1 (systemd: ctrl-alt-del.target, masked for the session).
inline constexpr unsigned kCtrlAltDelSignalsInit = 0;
// The systemd unit masked (--runtime) for the session: Debian's Ctrl-Alt-Del = reboot.
inline constexpr const char *kCtrlAltDelUnit = "ctrl-alt-del.target";

} // namespace rescuevm
