// SPDX-License-Identifier: GPL-2.0-or-later
// Scaler: the VM's picture fitted onto the console's mode keeping its aspect ratio (nearest neighbour), rectangle by rectangle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rescuevm::screen {

struct Size {
    unsigned w = 0, h = 0;
    bool operator==(const Size &) const = default;
};

struct Rect {
    unsigned x = 0, y = 0, w = 0, h = 0;
    bool empty() const { return w == 0 || h == 0; }
    bool operator==(const Rect &) const = default;
};

// The smallest rectangle holding both (an empty one holds nothing).
Rect unite(const Rect &a, const Rect &b);
// The part of r inside a w x h area.
Rect clip(const Rect &r, Size area);

// Where a `src` picture lands on a `dst` screen: as large as fits with its aspect ratio
// kept, centred; the rest is black bars.
Rect fit_keeping_aspect(Size src, Size dst);

// The pixel layouts the consoles use: DRM dumb buffers and most fbdevs are XRGB8888;
// some fbdevs (vesafb at 16 bpp) RGB565.
enum class PixelFormat { xrgb8888, rgb565 };
unsigned bytes_per_pixel(PixelFormat format);

class Scaler {
public:
    Scaler() = default;
    Scaler(Size src, Size screen);

    Size source() const { return src_; }
    Size screen() const { return screen_; }
    Rect placement() const { return place_; }
    // The screen pixels whose colour comes from source rectangle r.
    Rect covered(const Rect &r) const;

    // Draws source rectangle r (XRGB8888 pixels, src_stride bytes per row) onto the screen
    // buffer: the screen pixels covered(r), nothing else. Writes only, row by row: a
    // screen buffer in video memory is slow to read.
    void draw(const std::uint8_t *src, std::size_t src_stride, const Rect &r, std::uint8_t *dst,
              std::size_t dst_stride, PixelFormat format) const;
    // Fills the screen outside placement() with black.
    void clear_borders(std::uint8_t *dst, std::size_t dst_stride, PixelFormat format) const;

private:
    Size src_, screen_;
    Rect place_;
    std::vector<unsigned> col_; // screen column (within placement) -> source column
    std::vector<unsigned> row_; // screen row (within placement) -> source row
};

} // namespace rescuevm::screen
