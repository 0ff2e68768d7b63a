// SPDX-License-Identifier: GPL-2.0-or-later
// The console through DRM: master of the card, a connector's preferred mode, one dumb buffer on a CRTC; the CRTC given back at the end.
#include "rescuevm/screen/output.h"

#include "rescuevm/sys/files.h"
#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace rescuevm::screen {
namespace {

const char *connector_type_name(std::uint32_t type)
{
    switch (type) {
    case DRM_MODE_CONNECTOR_VGA: return "VGA";
    case DRM_MODE_CONNECTOR_DVII: return "DVI-I";
    case DRM_MODE_CONNECTOR_DVID: return "DVI-D";
    case DRM_MODE_CONNECTOR_HDMIA: return "HDMI-A";
    case DRM_MODE_CONNECTOR_DisplayPort: return "DP";
    case DRM_MODE_CONNECTOR_VIRTUAL: return "Virtual";
    case DRM_MODE_CONNECTOR_eDP: return "eDP";
    case DRM_MODE_CONNECTOR_LVDS: return "LVDS";
    default: return "Unknown";
    }
}

// VESA DMT 1024x768@60 (65 MHz): for a connector that lists no mode at all.
drmModeModeInfo fallback_mode()
{
    drmModeModeInfo m{};
    m.clock = 65000;
    m.hdisplay = 1024, m.hsync_start = 1048, m.hsync_end = 1184, m.htotal = 1344;
    m.vdisplay = 768, m.vsync_start = 771, m.vsync_end = 777, m.vtotal = 806;
    m.vrefresh = 60;
    m.flags = DRM_MODE_FLAG_NHSYNC | DRM_MODE_FLAG_NVSYNC;
    m.type = DRM_MODE_TYPE_DRIVER;
    std::snprintf(m.name, sizeof(m.name), "1024x768");
    return m;
}

class DrmOutput final : public Output {
public:
    ~DrmOutput() override
    {
        if (saved_) {
            // Back to what the console showed before (fbcon's framebuffer); the kernel's own
            // fbdev emulation also restores it when the last DRM file closes.
            drmModeSetCrtc(fd_.get(), saved_->crtc_id, saved_->buffer_id, saved_->x, saved_->y, &connector_, 1,
                           saved_->mode_valid ? &saved_->mode : nullptr);
            drmModeFreeCrtc(saved_);
        }
        if (pixels_)
            ::munmap(pixels_, map_size_);
        if (fb_id_)
            drmModeRmFB(fd_.get(), fb_id_);
        if (handle_) {
            drm_mode_destroy_dumb destroy{};
            destroy.handle = handle_;
            drmIoctl(fd_.get(), DRM_IOCTL_MODE_DESTROY_DUMB, &destroy);
        }
    }

    void flush(const Rect &r) override
    {
        if (r.empty() || !dirty_supported_)
            return;
        drmModeClip clip{static_cast<std::uint16_t>(r.x), static_cast<std::uint16_t>(r.y),
                         static_cast<std::uint16_t>(r.x + r.w), static_cast<std::uint16_t>(r.y + r.h)};
        // Drivers that scan out the dumb buffer itself (vram-helper: bochs, ast) answer ENOSYS;
        // those with a shadow copy (mgag200, shmem helpers) copy the clip to video memory.
        if (drmModeDirtyFB(fd_.get(), fb_id_, &clip, 1) == -ENOSYS)
            dirty_supported_ = false;
    }

    Result<void> open(const std::string &path)
    {
        fd_.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC));
        if (!fd_)
            return fail(fmt::format("{}: {}", path, errno_text(errno)));
        std::uint64_t dumb = 0;
        if (drmGetCap(fd_.get(), DRM_CAP_DUMB_BUFFER, &dumb) != 0 || !dumb)
            return fail(fmt::format("{}: the driver has no dumb buffers", path));
        if (drmSetMaster(fd_.get()) != 0 && errno != EINVAL)
            return fail(fmt::format("{}: cannot become DRM master ({}): another program (a display server?) "
                                    "drives this screen",
                                    path, errno_text(errno)));
        drmModeRes *res = drmModeGetResources(fd_.get());
        if (!res)
            return fail(fmt::format("{}: no mode-setting resources ({})", path, errno_text(errno)));
        auto result = pick(path, res);
        drmModeFreeResources(res);
        return result;
    }

private:
    Result<void> pick(const std::string &path, drmModeRes *res)
    {
        // Connected first, then unknown, then disconnected: a BMC captures its VGA whether or
        // not its connector sees a monitor.
        drmModeConnector *best = nullptr;
        int best_rank = 99;
        for (int i = 0; i < res->count_connectors; ++i) {
            drmModeConnector *c = drmModeGetConnector(fd_.get(), res->connectors[i]);
            if (!c)
                continue;
            // Status first; among equals, one that lists modes.
            int status = c->connection == DRM_MODE_CONNECTED ? 0 : c->connection == DRM_MODE_UNKNOWNCONNECTION ? 1 : 2;
            int rank = status * 2 + (c->count_modes > 0 ? 0 : 1);
            if (rank < best_rank) {
                if (best)
                    drmModeFreeConnector(best);
                best = c;
                best_rank = rank;
            } else {
                drmModeFreeConnector(c);
            }
        }
        if (!best)
            return fail(fmt::format("{}: no connector", path));
        connector_ = best->connector_id;
        drmModeModeInfo mode = fallback_mode();
        for (int i = 0; i < best->count_modes; ++i)
            if (i == 0 || (best->modes[i].type & DRM_MODE_TYPE_PREFERRED)) {
                mode = best->modes[i];
                if (best->modes[i].type & DRM_MODE_TYPE_PREFERRED)
                    break;
            }
        std::uint32_t crtc = find_crtc(res, best);
        std::string name = fmt::format("{}-{}", connector_type_name(best->connector_type), best->connector_type_id);
        const char *status = best_rank / 2 == 0 ? "connected" : best_rank / 2 == 1 ? "status unknown" : "disconnected";
        drmModeFreeConnector(best);
        if (!crtc)
            return fail(fmt::format("{}: no CRTC can drive connector {}", path, name));
        RESCUEVM_TRY(create_buffer(path, mode.hdisplay, mode.vdisplay));
        saved_ = drmModeGetCrtc(fd_.get(), crtc);
        if (drmModeSetCrtc(fd_.get(), crtc, fb_id_, 0, 0, &connector_, 1, &mode) != 0)
            return fail(fmt::format("{}: cannot show {}x{} on {} ({})", path, mode.hdisplay, mode.vdisplay, name,
                                    errno_text(errno)));
        drmVersion *v = drmGetVersion(fd_.get());
        description_ = fmt::format("DRM {} ({}) {} ({}) {}x{}@{}", path, v ? v->name : "?", name, status,
                                   mode.hdisplay, mode.vdisplay, mode.vrefresh);
        if (v)
            drmFreeVersion(v);
        return {};
    }

    std::uint32_t find_crtc(drmModeRes *res, drmModeConnector *c)
    {
        if (c->encoder_id) {
            if (drmModeEncoder *e = drmModeGetEncoder(fd_.get(), c->encoder_id)) {
                std::uint32_t id = e->crtc_id;
                drmModeFreeEncoder(e);
                if (id)
                    return id;
            }
        }
        for (int i = 0; i < c->count_encoders; ++i) {
            drmModeEncoder *e = drmModeGetEncoder(fd_.get(), c->encoders[i]);
            if (!e)
                continue;
            std::uint32_t possible = e->possible_crtcs;
            drmModeFreeEncoder(e);
            for (int j = 0; j < res->count_crtcs && j < 32; ++j)
                if (possible & (1u << j))
                    return res->crtcs[j];
        }
        return 0;
    }

    Result<void> create_buffer(const std::string &path, unsigned w, unsigned h)
    {
        drm_mode_create_dumb create{};
        create.width = w;
        create.height = h;
        create.bpp = 32;
        if (drmIoctl(fd_.get(), DRM_IOCTL_MODE_CREATE_DUMB, &create) != 0)
            return fail(fmt::format("{}: cannot make a {}x{} dumb buffer ({})", path, w, h, errno_text(errno)));
        handle_ = create.handle;
        if (drmModeAddFB(fd_.get(), w, h, 24, 32, create.pitch, handle_, &fb_id_) != 0)
            return fail(fmt::format("{}: cannot make a framebuffer ({})", path, errno_text(errno)));
        drm_mode_map_dumb map{};
        map.handle = handle_;
        if (drmIoctl(fd_.get(), DRM_IOCTL_MODE_MAP_DUMB, &map) != 0)
            return fail(fmt::format("{}: cannot map the dumb buffer ({})", path, errno_text(errno)));
        void *p = ::mmap(nullptr, create.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), static_cast<off_t>(map.offset));
        if (p == MAP_FAILED)
            return fail(fmt::format("{}: cannot map the dumb buffer ({})", path, errno_text(errno)));
        pixels_ = static_cast<std::uint8_t *>(p);
        map_size_ = create.size;
        size_ = {w, h};
        stride_ = create.pitch;
        format_ = PixelFormat::xrgb8888;
        std::memset(pixels_, 0, map_size_);
        return {};
    }

    UniqueFd fd_;
    std::uint32_t connector_ = 0, fb_id_ = 0, handle_ = 0;
    std::size_t map_size_ = 0;
    drmModeCrtc *saved_ = nullptr;
    bool dirty_supported_ = true;
};

} // namespace

Result<std::unique_ptr<Output>> open_drm_output(const std::string &path)
{
    auto out = std::make_unique<DrmOutput>();
    RESCUEVM_TRY(out->open(path));
    return std::unique_ptr<Output>(std::move(out));
}

} // namespace rescuevm::screen
