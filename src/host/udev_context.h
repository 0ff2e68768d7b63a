// SPDX-License-Identifier: GPL-2.0-or-later
// Internal to src/host: a libudev context that reads a block device's properties.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct udev;

namespace rescuevm::host {

class UdevContext {
public:
    UdevContext();
    ~UdevContext();
    UdevContext(const UdevContext &) = delete;
    UdevContext &operator=(const UdevContext &) = delete;

    explicit operator bool() const { return udev_ != nullptr; }

    // Properties of block device <name> from udev's database, or nullopt when
    // libudev does not know it (then the caller keeps its sysfs facts).
    std::optional<std::vector<std::pair<std::string, std::string>>> block_properties(const std::string &name) const;

private:
    struct udev *udev_ = nullptr;
};

} // namespace rescuevm::host
