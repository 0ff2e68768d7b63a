// SPDX-License-Identifier: GPL-2.0-or-later
// InputDevices: the host's keyboards, mice and tablets handed to the VM as QEMU input-linux objects (exclusive grab), followed through udev as they come and go.
#pragma once

#include "rescuevm/agent/qmp_client.h"
#include "rescuevm/core/console.h"
#include "rescuevm/sys/event_loop.h"

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

struct udev;
struct udev_monitor;
struct udev_device;

namespace rescuevm {

class InputDevices {
public:
    // How a QMP command reaches QEMU (the agent's QemuInstance::command).
    using Send = std::function<void(const std::string &command, const nlohmann::json &args,
                                    QmpClient::CommandCallback done)>;

    InputDevices(EventLoop &loop, Send send);
    ~InputDevices();
    InputDevices(const InputDevices &) = delete;
    InputDevices &operator=(const InputDevices &) = delete;

    // Watches input devices (udev's monitor; without a udev daemon the kernel's uevents) and
    // lists those present. Devices go to the VM once qemu_ready() is called.
    Result<void> start();
    // QMP is up (first time, reconnect, or a re-attached QEMU): objects of ours that QEMU
    // holds for devices still here are kept, the others deleted, the missing ones added.
    void qemu_ready();
    // QEMU ended: its objects went with it.
    void qemu_gone();

    // One line per device for `rescuevm status`: "event3 keyboard (QEMU USB Keyboard): in the VM".
    std::vector<std::string> describe() const;

private:
    enum class State { waiting, adding, added, failed };
    struct Device {
        InputDeviceFacts facts;
        InputRole role = InputRole::leave;
        State state = State::waiting;
        std::uint64_t generation = 0; // bumped per add: late replies of an older add are ignored
        std::chrono::steady_clock::time_point added_at;
        std::string problem;
    };

    void enumerate();
    void on_monitor();
    void appeared(struct udev_device *dev);
    void gone(const std::string &node);
    void add(Device &d);
    void check_grabs();

    EventLoop &loop_;
    Send send_;
    struct udev *udev_ = nullptr;
    struct udev_monitor *monitor_ = nullptr;
    bool udev_daemon_ = false;
    WatchId watch_ = 0;
    TimerId grab_timer_ = 0;
    bool qemu_ = false;
    std::uint64_t next_generation_ = 1;
    std::map<std::string, Device> devices_; // by node, /dev/input/eventN
};

} // namespace rescuevm
