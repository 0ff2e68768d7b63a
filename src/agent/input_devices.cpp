// SPDX-License-Identifier: GPL-2.0-or-later
// The host's input devices followed through udev and handed to QEMU as input-linux objects over QMP; grabs checked and renewed.
#include "rescuevm/agent/input_devices.h"

#include "rescuevm/sys/files.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <libudev.h>
#include <linux/input.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

namespace rescuevm {
namespace {

using namespace std::chrono_literals;

constexpr auto kQmpDeadline = 10s;
// How often the agent checks that QEMU still holds each device (its grab-toggle keys, or a
// device QEMU lost, give the keyboard back to the host's console).
constexpr auto kGrabCheckPeriod = 10s;
constexpr auto kGrabSettle = 5s; // a fresh object waits for held keys to be released before it grabs

bool is_event_node(const char *node)
{
    return node && std::string_view(node).starts_with("/dev/input/event");
}

std::string property(struct udev_device *dev, const char *key)
{
    const char *v = udev_device_get_property_value(dev, key);
    return v ? v : "";
}

// Name and capabilities from the device itself (EVIOCGNAME, EVIOCGID, EVIOCGBIT).
bool read_capabilities(const std::string &node, std::string &name, InputCapabilities &caps)
{
    UniqueFd fd(::open(node.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd)
        return false;
    char buf[256] = {};
    if (::ioctl(fd.get(), EVIOCGNAME(sizeof(buf) - 1), buf) >= 0)
        name = buf;
    input_id id{};
    if (::ioctl(fd.get(), EVIOCGID, &id) == 0)
        caps.bustype = id.bustype;
    caps.key_bits.assign(KEY_CNT / 8 + 1, 0);
    caps.rel_bits.assign(REL_CNT / 8 + 1, 0);
    caps.abs_bits.assign(ABS_CNT / 8 + 1, 0);
    (void)::ioctl(fd.get(), EVIOCGBIT(EV_KEY, int(caps.key_bits.size())), caps.key_bits.data());
    (void)::ioctl(fd.get(), EVIOCGBIT(EV_REL, int(caps.rel_bits.size())), caps.rel_bits.data());
    (void)::ioctl(fd.get(), EVIOCGBIT(EV_ABS, int(caps.abs_bits.size())), caps.abs_bits.data());
    return true;
}

} // namespace

InputDevices::InputDevices(EventLoop &loop, Send send) : loop_(loop), send_(std::move(send)) {}

InputDevices::~InputDevices()
{
    loop_.remove_fd(watch_);
    loop_.cancel_timer(grab_timer_);
    if (monitor_)
        udev_monitor_unref(monitor_);
    if (udev_)
        udev_unref(udev_);
}

Result<void> InputDevices::start()
{
    udev_ = udev_new();
    if (!udev_)
        return fail("input devices: libudev: cannot make a context");
    // Without a udev daemon (a bare initramfs) its monitor stays silent: the kernel's uevents then.
    udev_daemon_ = ::access("/run/udev/control", F_OK) == 0;
    monitor_ = udev_monitor_new_from_netlink(udev_, udev_daemon_ ? "udev" : "kernel");
    if (!monitor_ || udev_monitor_filter_add_match_subsystem_devtype(monitor_, "input", nullptr) < 0 ||
        udev_monitor_enable_receiving(monitor_) < 0)
        return fail("input devices: cannot watch for keyboards and mice coming and going (udev monitor)");
    auto watch = loop_.add_fd(udev_monitor_get_fd(monitor_), EPOLLIN, [this](std::uint32_t) { on_monitor(); });
    if (!watch)
        return fail("input devices: " + watch.error().message);
    watch_ = *watch;
    enumerate();
    grab_timer_ = loop_.add_timer(kGrabCheckPeriod, [this] { check_grabs(); });
    return {};
}

void InputDevices::enumerate()
{
    struct udev_enumerate *e = udev_enumerate_new(udev_);
    if (!e)
        return;
    udev_enumerate_add_match_subsystem(e, "input");
    udev_enumerate_add_match_sysname(e, "event*");
    udev_enumerate_scan_devices(e);
    struct udev_list_entry *entry;
    udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(e))
    {
        if (struct udev_device *dev = udev_device_new_from_syspath(udev_, udev_list_entry_get_name(entry))) {
            appeared(dev);
            udev_device_unref(dev);
        }
    }
    udev_enumerate_unref(e);
}

void InputDevices::on_monitor()
{
    // Bounded: the rest waits for the next round of the loop (level-triggered).
    for (int i = 0; i < 64; ++i) {
        struct udev_device *dev = udev_monitor_receive_device(monitor_);
        if (!dev)
            return;
        const char *action = udev_device_get_action(dev);
        const char *node = udev_device_get_devnode(dev);
        if (is_event_node(node) && action) {
            std::string a = action;
            if (a == "add" || a == "change")
                appeared(dev);
            else if (a == "remove")
                gone(node);
        }
        udev_device_unref(dev);
    }
}

void InputDevices::appeared(struct udev_device *dev)
{
    const char *devnode = udev_device_get_devnode(dev);
    if (!is_event_node(devnode))
        return;
    std::string node = devnode;
    std::string name;
    InputCapabilities caps;
    if (!read_capabilities(node, name, caps)) {
        log::get("input")->warn("{}: cannot open it ({}), leaving it to the host", node, errno_text(errno));
        return;
    }
    InputDeviceFacts facts = classify_input(node, name, caps);
    if (property(dev, "ID_INPUT") == "1") {
        // udev's input_id knows more devices than the bits above (hwdb quirks): it wins.
        facts.keyboard = property(dev, "ID_INPUT_KEYBOARD") == "1";
        facts.keys = property(dev, "ID_INPUT_KEY") == "1";
        facts.mouse = property(dev, "ID_INPUT_MOUSE") == "1";
        facts.tablet = property(dev, "ID_INPUT_TABLET") == "1";
        if (std::string bus = property(dev, "ID_BUS"); !bus.empty())
            facts.bus = bus;
    }
    InputRole role = input_role(facts);
    auto it = devices_.find(node);
    if (it != devices_.end() && it->second.state != State::failed && it->second.facts.name == facts.name &&
        it->second.role == role)
        return; // a "change" of a device already handled
    Device &d = devices_[node];
    d.facts = facts;
    d.role = role;
    d.state = State::waiting;
    d.problem.clear();
    if (role == InputRole::leave) {
        log::get("input")->debug("{} ({}): left to the host", node, name);
        return;
    }
    log::get("input")->info("{} ({}, {}): a {} for the VM", node, name, facts.bus.empty() ? "?" : facts.bus,
                            to_string(role));
    if (qemu_)
        add(d);
}

void InputDevices::gone(const std::string &node)
{
    auto it = devices_.find(node);
    if (it == devices_.end())
        return;
    bool ours = it->second.role != InputRole::leave && it->second.state != State::waiting;
    InputObject o = input_linux_object(it->second.facts, it->second.role);
    devices_.erase(it);
    if (!ours)
        return;
    log::get("input")->info("{} went away: deleting its QEMU object {} (it is added again when it comes back)",
                            node, o.id);
    if (qemu_)
        send_("object-del", {{"id", o.id}}, [](Result<nlohmann::json>) {});
}

void InputDevices::add(Device &d)
{
    InputObject o = input_linux_object(d.facts, d.role);
    std::string node = d.facts.node;
    std::uint64_t generation = d.generation = next_generation_++;
    d.state = State::adding;
    // An object of that id may be left from before (the device went and came back under the
    // same name, or the grab was lost): commands run in order, so the delete comes first.
    send_("object-del", {{"id", o.id}}, [](Result<nlohmann::json>) {});
    send_("object-add", o.args, [this, node, generation, id = o.id](Result<nlohmann::json> r) {
        auto it = devices_.find(node);
        if (it == devices_.end() || it->second.generation != generation)
            return;
        Device &dev = it->second;
        if (!r) {
            dev.state = State::failed;
            dev.problem = r.error().message;
            log::get("input")->warn("{}: QEMU did not take it ({}); it stays the host's", node, dev.problem);
            return;
        }
        dev.state = State::added;
        dev.added_at = std::chrono::steady_clock::now();
        log::get("input")->info("{} ({}) handed to the VM as {} (exclusive grab)", node, dev.facts.name, id);
    });
}

void InputDevices::qemu_ready()
{
    qemu_ = true;
    // What QEMU holds already (a re-attached QEMU, a QMP reconnect): keep it, delete strays.
    send_("qom-list", {{"path", "/objects"}}, [this](Result<nlohmann::json> r) {
        if (!qemu_)
            return;
        std::map<std::string, bool> held;
        if (r && r->is_array())
            for (const auto &p : *r)
                if (p.is_object() && p.contains("name") && p["name"].is_string() &&
                    p["name"].get<std::string>().starts_with(kInputObjectPrefix))
                    held[p["name"].get<std::string>()] = true;
        for (auto &[node, d] : devices_) {
            if (d.role == InputRole::leave)
                continue;
            std::string id = input_linux_object(d.facts, d.role).id;
            if (held.erase(id)) {
                d.state = State::added;
                d.added_at = std::chrono::steady_clock::now();
                continue;
            }
            if (d.state != State::adding)
                add(d);
        }
        for (const auto &[id, _] : held) {
            log::get("input")->info("QEMU holds {} for a device that is gone: deleting it", id);
            send_("object-del", {{"id", id}}, [](Result<nlohmann::json>) {});
        }
    });
}

void InputDevices::qemu_gone()
{
    qemu_ = false;
    for (auto &[node, d] : devices_)
        d.state = State::waiting; // a new QEMU gets every device again, refused ones included
}

void InputDevices::check_grabs()
{
    grab_timer_ = loop_.add_timer(kGrabCheckPeriod, [this] { check_grabs(); });
    if (!qemu_)
        return;
    auto now = std::chrono::steady_clock::now();
    for (auto &[node, d] : devices_) {
        if (d.state != State::added || now - d.added_at < kGrabSettle)
            continue;
        UniqueFd fd(::open(node.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
        if (!fd)
            continue; // gone: udev tells
        if (::ioctl(fd.get(), EVIOCGRAB, 1) != 0)
            continue; // EBUSY: QEMU holds it, as it should
        (void)::ioctl(fd.get(), EVIOCGRAB, 0);
        log::get("input")->warn("{} ({}) is no longer held by QEMU (its grab-toggle keys, or QEMU lost the "
                                "device): handing it to the VM again",
                                node, d.facts.name);
        add(d);
    }
}

std::vector<std::string> InputDevices::describe() const
{
    std::vector<std::string> out;
    for (const auto &[node, d] : devices_) {
        if (d.role == InputRole::leave)
            continue;
        const char *state = d.state == State::added    ? "in the VM"
                            : d.state == State::adding ? "being handed to the VM"
                            : d.state == State::failed ? "the host's (QEMU refused it)"
                                                       : "waiting for QEMU";
        out.push_back(fmt::format("{} {} ({}): {}", node.substr(node.rfind('/') + 1), to_string(d.role),
                                  d.facts.name, state));
    }
    return out;
}

} // namespace rescuevm
