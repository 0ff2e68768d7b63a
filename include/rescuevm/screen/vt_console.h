// SPDX-License-Identifier: GPL-2.0-or-later
// VtConsole: the active virtual terminal taken for the viewer (KD_GRAPHICS: fbcon stops drawing; K_OFF: its keyboard handler stops reading) and given back.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/sys/unique_fd.h"

#include <memory>
#include <string>

namespace rescuevm::screen {

class VtConsole {
public:
    // Takes VT `number`, or the active one (the one the BMC shows) when 0.
    static Result<std::unique_ptr<VtConsole>> take(unsigned number = 0);
    // Text mode and the keyboard mode it had (a K_OFF left by a killed viewer becomes
    // K_UNICODE: an unusable console is never what an operator wants back).
    ~VtConsole();
    VtConsole(const VtConsole &) = delete;
    VtConsole &operator=(const VtConsole &) = delete;

    unsigned number() const { return number_; }

    // For a fatal signal: the same, with only async-signal-safe calls.
    static void restore_from_signal_handler();

private:
    VtConsole() = default;
    UniqueFd fd_;
    unsigned number_ = 0;
    int kb_mode_ = 0;
};

} // namespace rescuevm::screen
