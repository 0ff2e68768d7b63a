// SPDX-License-Identifier: GPL-2.0-or-later
// VncSource: the VM's screen as QEMU's VNC server sends it over its unix socket (libvncclient, shared, view-only, raw XRGB8888).
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/screen/scaler.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct _rfbClient;

namespace rescuevm::screen {

class VncSource {
public:
    // Connects to the unix socket and negotiates (no authentication: the socket is root's).
    static Result<std::unique_ptr<VncSource>> connect(const std::string &socket_path);
    ~VncSource();
    VncSource(const VncSource &) = delete;
    VncSource &operator=(const VncSource &) = delete;

    int fd() const;
    // Handles every message that has arrived (reads more only as far as a message goes);
    // an error when the server closed the connection or sent something libvncclient refused.
    Result<void> receive();
    // Bytes libvncclient has read ahead: receive() again before waiting on fd().
    bool buffered() const;

    Size size() const { return size_; }
    const std::uint8_t *pixels() const { return pixels_.data(); }
    std::size_t stride() const { return std::size_t(size_.w) * 4; }
    // A whole update has arrived since the last take_damage(): the rectangle it changed.
    bool frame_ready() const { return frame_ready_; }
    Rect take_damage();
    // The picture changed size since the last call (the guest switched mode).
    bool take_resized();

private:
    VncSource() = default;
    static signed char resize_cb(_rfbClient *client); // rfbBool
    static void update_cb(_rfbClient *client, int x, int y, int w, int h);
    static void finished_cb(_rfbClient *client);

    _rfbClient *client_ = nullptr;
    std::vector<std::uint8_t> pixels_;
    Size size_;
    Rect damage_;
    bool frame_ready_ = false;
    bool resized_ = true;
};

} // namespace rescuevm::screen
