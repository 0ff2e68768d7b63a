// SPDX-License-Identifier: GPL-2.0-or-later
// Nearest-neighbour scaling of the VM's picture onto the console, keeping the aspect ratio, by damaged rectangle.
#include "rescuevm/screen/scaler.h"

#include <algorithm>
#include <cstring>

namespace rescuevm::screen {
namespace {

// ceil(a * b / c) without overflow for screen sizes.
unsigned scale_up(unsigned a, unsigned b, unsigned c)
{
    return static_cast<unsigned>((static_cast<std::uint64_t>(a) * b + c - 1) / c);
}

std::uint16_t to_rgb565(std::uint32_t p)
{
    return static_cast<std::uint16_t>(((p >> 8) & 0xf800) | ((p >> 5) & 0x07e0) | ((p >> 3) & 0x001f));
}

} // namespace

Rect unite(const Rect &a, const Rect &b)
{
    if (a.empty())
        return b;
    if (b.empty())
        return a;
    unsigned x0 = std::min(a.x, b.x), y0 = std::min(a.y, b.y);
    unsigned x1 = std::max(a.x + a.w, b.x + b.w), y1 = std::max(a.y + a.h, b.y + b.h);
    return {x0, y0, x1 - x0, y1 - y0};
}

Rect clip(const Rect &r, Size area)
{
    if (r.x >= area.w || r.y >= area.h)
        return {};
    return {r.x, r.y, std::min(r.w, area.w - r.x), std::min(r.h, area.h - r.y)};
}

Rect fit_keeping_aspect(Size src, Size dst)
{
    if (src.w == 0 || src.h == 0 || dst.w == 0 || dst.h == 0)
        return {};
    // Compare dst.w / src.w with dst.h / src.h without floating point.
    unsigned w = dst.w, h = dst.h;
    if (static_cast<std::uint64_t>(dst.w) * src.h > static_cast<std::uint64_t>(dst.h) * src.w)
        w = static_cast<unsigned>(static_cast<std::uint64_t>(src.w) * dst.h / src.h); // height-bound
    else
        h = static_cast<unsigned>(static_cast<std::uint64_t>(src.h) * dst.w / src.w); // width-bound
    w = std::max(w, 1u);
    h = std::max(h, 1u);
    return {(dst.w - w) / 2, (dst.h - h) / 2, w, h};
}

unsigned bytes_per_pixel(PixelFormat format)
{
    return format == PixelFormat::rgb565 ? 2 : 4;
}

Scaler::Scaler(Size src, Size screen) : src_(src), screen_(screen), place_(fit_keeping_aspect(src, screen))
{
    col_.resize(place_.w);
    row_.resize(place_.h);
    for (unsigned x = 0; x < place_.w; ++x)
        col_[x] = static_cast<unsigned>(static_cast<std::uint64_t>(x) * src.w / place_.w);
    for (unsigned y = 0; y < place_.h; ++y)
        row_[y] = static_cast<unsigned>(static_cast<std::uint64_t>(y) * src.h / place_.h);
}

Rect Scaler::covered(const Rect &r0) const
{
    Rect r = clip(r0, src_);
    if (r.empty() || place_.empty())
        return {};
    // Screen column d shows source column floor(d * src.w / place.w): the columns showing
    // [x0, x1) are [ceil(x0 * place.w / src.w), ceil(x1 * place.w / src.w)).
    unsigned x0 = scale_up(r.x, place_.w, src_.w), x1 = scale_up(r.x + r.w, place_.w, src_.w);
    unsigned y0 = scale_up(r.y, place_.h, src_.h), y1 = scale_up(r.y + r.h, place_.h, src_.h);
    x1 = std::min(x1, place_.w);
    y1 = std::min(y1, place_.h);
    if (x1 <= x0 || y1 <= y0)
        return {};
    return {place_.x + x0, place_.y + y0, x1 - x0, y1 - y0};
}

void Scaler::draw(const std::uint8_t *src, std::size_t src_stride, const Rect &r, std::uint8_t *dst,
                  std::size_t dst_stride, PixelFormat format) const
{
    Rect out = covered(r);
    if (out.empty())
        return;
    bool identity = place_.w == src_.w && place_.h == src_.h;
    for (unsigned y = out.y; y < out.y + out.h; ++y) {
        unsigned sy = row_[y - place_.y];
        const auto *srow = reinterpret_cast<const std::uint32_t *>(src + sy * src_stride);
        std::uint8_t *drow = dst + y * dst_stride;
        unsigned dx0 = out.x - place_.x;
        if (format == PixelFormat::xrgb8888) {
            auto *d = reinterpret_cast<std::uint32_t *>(drow) + out.x;
            if (identity) {
                std::memcpy(d, srow + dx0, out.w * 4);
                continue;
            }
            for (unsigned i = 0; i < out.w; ++i)
                d[i] = srow[col_[dx0 + i]];
        } else {
            auto *d = reinterpret_cast<std::uint16_t *>(drow) + out.x;
            for (unsigned i = 0; i < out.w; ++i)
                d[i] = to_rgb565(srow[col_[dx0 + i]]);
        }
    }
}

void Scaler::clear_borders(std::uint8_t *dst, std::size_t dst_stride, PixelFormat format) const
{
    unsigned bpp = bytes_per_pixel(format);
    for (unsigned y = 0; y < screen_.h; ++y) {
        std::uint8_t *row = dst + y * dst_stride;
        if (y < place_.y || y >= place_.y + place_.h) {
            std::memset(row, 0, std::size_t(screen_.w) * bpp);
            continue;
        }
        std::memset(row, 0, std::size_t(place_.x) * bpp);
        unsigned right = place_.x + place_.w;
        std::memset(row + std::size_t(right) * bpp, 0, std::size_t(screen_.w - right) * bpp);
    }
}

} // namespace rescuevm::screen
