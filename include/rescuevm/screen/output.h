// SPDX-License-Identifier: GPL-2.0-or-later
// Output: a screen buffer the viewer draws into, on a DRM device (dumb buffer), an fbdev framebuffer, or memory (benchmarks).
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/screen/scaler.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace rescuevm::screen {

class Output {
public:
    virtual ~Output() = default;
    Size size() const { return size_; }
    std::size_t stride() const { return stride_; }
    PixelFormat format() const { return format_; }
    std::uint8_t *pixels() const { return pixels_; }
    // Tells the device which part changed (DRM drivers with a shadow buffer copy it then).
    virtual void flush(const Rect &changed) = 0;
    // "DRM /dev/dri/card0 (bochs-drm) VGA-1 1280x800@60": for the log and `rescuevm status`.
    const std::string &describe() const { return description_; }

protected:
    Size size_;
    std::size_t stride_ = 0;
    PixelFormat format_ = PixelFormat::xrgb8888;
    std::uint8_t *pixels_ = nullptr;
    std::string description_;
};

// Becomes DRM master of `path`, picks a connector (connected, else unknown status, else any: a
// BMC may capture a VGA that reports no monitor) and its preferred mode (else its first, else
// 1024x768@60), and shows a dumb buffer of that size on a CRTC that can drive it. Gives the
// CRTC back as it found it (the console's framebuffer) when destroyed.
Result<std::unique_ptr<Output>> open_drm_output(const std::string &path);

// Maps an fbdev framebuffer (/dev/fb0) at its current mode: 32 bpp XRGB or 16 bpp RGB565.
Result<std::unique_ptr<Output>> open_fbdev_output(const std::string &path);

// A buffer in memory of the given size: nothing is shown (benchmarks, tests).
std::unique_ptr<Output> memory_output(Size size);

} // namespace rescuevm::screen
