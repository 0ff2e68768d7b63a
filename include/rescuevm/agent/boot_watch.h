// SPDX-License-Identifier: GPL-2.0-or-later
// BootWatch: reads what the firmware prints after each boot of the VM and reports when it says the image does not boot.
#pragma once

#include "rescuevm/core/config.h"
#include "rescuevm/core/runtime_paths.h"
#include "rescuevm/sys/event_loop.h"

#include <chrono>
#include <functional>
#include <string>

namespace rescuevm {

class BootWatch {
public:
    using Failed = std::function<void(const std::string &message)>;

    BootWatch(EventLoop &loop, RuntimePaths paths, Firmware firmware, std::string image, Failed failed);
    ~BootWatch();

    // A boot begins (first start, guest reboot, reset): watch the guest console and the
    // firmware log from where they stand now, for a while (bounded reads, 1 s apart).
    void boot_started();
    void stop();

    static constexpr std::chrono::seconds kWatchFor{300}; // OVMF takes ~11-20 s under TCG
    static constexpr std::size_t kWindow = 256 * 1024;     // of firmware output kept per boot

private:
    struct Tail {
        std::string path;
        std::uint64_t offset = 0;
    };
    void poll();
    void read_new(Tail &tail);

    EventLoop &loop_;
    RuntimePaths paths_;
    Firmware firmware_;
    std::string image_;
    Failed failed_;
    Tail console_, firmware_log_;
    std::string output_;
    TimerId timer_ = 0;
    std::chrono::steady_clock::time_point until_{};
};

} // namespace rescuevm
