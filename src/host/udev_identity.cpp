// SPDX-License-Identifier: GPL-2.0-or-later
// Disk identity (model, serial, WWN) from udev properties, per attribute over sysfs.
#include "rescuevm/host/disks.h"
#include "udev_context.h"

#include <libudev.h>

#include <cctype>

namespace rescuevm {
namespace {

const std::string *find(const std::vector<std::pair<std::string, std::string>> &props, const char *key)
{
    for (const auto &[k, v] : props)
        if (k == key && !v.empty())
            return &v;
    return nullptr;
}

int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// ID_MODEL_ENC keeps the model's spaces as "\x20" (ID_MODEL turns them into '_').
std::string decode_udev_escapes(const std::string &s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x' && hex_digit(s[i + 2]) >= 0 &&
            hex_digit(s[i + 3]) >= 0) {
            out.push_back(static_cast<char>(hex_digit(s[i + 2]) * 16 + hex_digit(s[i + 3])));
            i += 3;
        } else {
            out.push_back(s[i]);
        }
    }
    out.erase(out.find_last_not_of(' ') + 1);
    out.erase(0, out.find_first_not_of(' '));
    return out;
}

} // namespace

void apply_udev_properties(DiskInfo &disk, const std::vector<std::pair<std::string, std::string>> &props)
{
    if (auto v = find(props, "ID_MODEL_ENC"); v && !decode_udev_escapes(*v).empty())
        disk.model = decode_udev_escapes(*v);
    else if (auto m = find(props, "ID_MODEL"))
        disk.model = *m;
    if (auto v = find(props, "ID_SERIAL_SHORT"))
        disk.serial = *v;
    if (auto v = find(props, "ID_WWN_WITH_EXTENSION"))
        disk.wwn = *v;
    else if (auto w = find(props, "ID_WWN"))
        disk.wwn = *w;
}

} // namespace rescuevm

namespace rescuevm::host {

UdevContext::UdevContext() : udev_(udev_new()) {}

UdevContext::~UdevContext()
{
    if (udev_)
        udev_unref(udev_);
}

std::optional<std::vector<std::pair<std::string, std::string>>>
UdevContext::block_properties(const std::string &name) const
{
    if (!udev_)
        return std::nullopt;
    struct udev_device *dev = udev_device_new_from_subsystem_sysname(udev_, "block", name.c_str());
    if (!dev)
        return std::nullopt;
    std::vector<std::pair<std::string, std::string>> props;
    struct udev_list_entry *entry = nullptr;
    udev_list_entry_foreach(entry, udev_device_get_properties_list_entry(dev))
    {
        const char *value = udev_list_entry_get_value(entry);
        props.emplace_back(udev_list_entry_get_name(entry), value ? value : "");
    }
    udev_device_unref(dev);
    return props;
}

} // namespace rescuevm::host
