// SPDX-License-Identifier: GPL-2.0-or-later
// The console through fbdev (efifb, vesafb, a DRM driver's emulation) at its current mode, and a memory buffer for benchmarks.
#include "rescuevm/screen/output.h"

#include "rescuevm/sys/files.h"
#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <linux/fb.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <fmt/format.h>

#include <cstring>
#include <vector>

namespace rescuevm::screen {
namespace {

class FbdevOutput final : public Output {
public:
    ~FbdevOutput() override
    {
        if (pixels_)
            ::munmap(map_, map_size_);
    }

    void flush(const Rect &) override {} // fbdev drivers show (or copy, with deferred I/O) by themselves

    Result<void> open(const std::string &path)
    {
        fd_.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC));
        if (!fd_)
            return fail(fmt::format("{}: {}", path, errno_text(errno)));
        fb_var_screeninfo var{};
        fb_fix_screeninfo fix{};
        if (::ioctl(fd_.get(), FBIOGET_VSCREENINFO, &var) != 0 || ::ioctl(fd_.get(), FBIOGET_FSCREENINFO, &fix) != 0)
            return fail(fmt::format("{}: not a framebuffer ({})", path, errno_text(errno)));
        if (var.bits_per_pixel == 32 && var.red.offset == 16 && var.green.offset == 8 && var.blue.offset == 0)
            format_ = PixelFormat::xrgb8888;
        else if (var.bits_per_pixel == 16 && var.red.offset == 11 && var.green.offset == 5 && var.blue.offset == 0)
            format_ = PixelFormat::rgb565;
        else
            return fail(fmt::format("{}: {} bits per pixel (red at bit {}) is not a layout the viewer draws (32-bit "
                                    "XRGB or 16-bit RGB565)",
                                    path, var.bits_per_pixel, var.red.offset));
        if (fix.type != FB_TYPE_PACKED_PIXELS || fix.line_length == 0 || var.xres == 0 || var.yres == 0)
            return fail(fmt::format("{}: not a packed-pixel framebuffer", path));
        // Draw where the screen shows: the visible part may be panned down the memory.
        std::size_t offset = std::size_t(var.yoffset) * fix.line_length + std::size_t(var.xoffset) * (var.bits_per_pixel / 8);
        map_size_ = fix.smem_len;
        if (offset + std::size_t(var.yres) * fix.line_length > map_size_)
            return fail(fmt::format("{}: its memory ({} bytes) is smaller than its mode", path, map_size_));
        void *p = ::mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
        if (p == MAP_FAILED)
            return fail(fmt::format("{}: cannot map it ({})", path, errno_text(errno)));
        map_ = p;
        pixels_ = static_cast<std::uint8_t *>(p) + offset;
        size_ = {var.xres, var.yres};
        stride_ = fix.line_length;
        (void)::ioctl(fd_.get(), FBIOBLANK, FB_BLANK_UNBLANK);
        for (unsigned y = 0; y < size_.h; ++y)
            std::memset(pixels_ + y * stride_, 0, std::size_t(size_.w) * bytes_per_pixel(format_));
        char id[sizeof(fix.id) + 1] = {};
        std::memcpy(id, fix.id, sizeof(fix.id));
        description_ = fmt::format("fbdev {} ({}) {}x{} {} bpp", path, id, size_.w, size_.h, var.bits_per_pixel);
        return {};
    }

private:
    UniqueFd fd_;
    void *map_ = nullptr;
    std::size_t map_size_ = 0;
};

class MemoryOutput final : public Output {
public:
    explicit MemoryOutput(Size size) : buffer_(std::size_t(size.w) * size.h * 4)
    {
        size_ = size;
        stride_ = std::size_t(size.w) * 4;
        pixels_ = buffer_.data();
        description_ = fmt::format("memory {}x{}", size.w, size.h);
    }
    void flush(const Rect &) override {}

private:
    std::vector<std::uint8_t> buffer_;
};

} // namespace

Result<std::unique_ptr<Output>> open_fbdev_output(const std::string &path)
{
    auto out = std::make_unique<FbdevOutput>();
    RESCUEVM_TRY(out->open(path));
    return std::unique_ptr<Output>(std::move(out));
}

std::unique_ptr<Output> memory_output(Size size)
{
    return std::make_unique<MemoryOutput>(size);
}

} // namespace rescuevm::screen
