// SPDX-License-Identifier: GPL-2.0-or-later
// The VM's screen from QEMU's VNC unix socket through libvncclient: raw XRGB8888 updates, damage collected per update.
#include "rescuevm/screen/vnc_source.h"

#include <rfb/rfbclient.h>

#include <fmt/format.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace rescuevm::screen {
namespace {

// A tag for rfbClientSetClientData: this VncSource.
int g_tag;
// libvncclient's last complaint, for error messages (it logs instead of returning errors;
// some failures only through its info log, e.g. "Unknown rect encoding").
std::string g_last_error;
std::string g_last_log;

// One line of libvncclient's printf-style output into `into`, without its trailing newline.
void keep_line(std::string &into, const char *format, va_list args)
{
    char buf[512];
    std::vsnprintf(buf, sizeof(buf), format, args);
    into = buf;
    while (!into.empty() && (into.back() == '\n' || into.back() == ' '))
        into.pop_back();
}

void keep_log(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    keep_line(g_last_log, format, args);
    va_end(args);
}

void keep_error(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    keep_line(g_last_error, format, args);
    va_end(args);
}

VncSource *self(rfbClient *client)
{
    return static_cast<VncSource *>(rfbClientGetClientData(client, &g_tag));
}

} // namespace

rfbBool VncSource::resize_cb(rfbClient *client)
{
    VncSource *s = self(client);
    if (client->width <= 0 || client->height <= 0 || client->width > 16384 || client->height > 16384)
        return FALSE;
    s->size_ = {unsigned(client->width), unsigned(client->height)};
    s->pixels_.assign(std::size_t(s->size_.w) * s->size_.h * 4, 0);
    client->frameBuffer = s->pixels_.data();
    s->resized_ = true;
    s->damage_ = {0, 0, s->size_.w, s->size_.h};
    return TRUE;
}

void VncSource::update_cb(rfbClient *client, int x, int y, int w, int h)
{
    VncSource *s = self(client);
    if (x < 0 || y < 0 || w <= 0 || h <= 0)
        return;
    s->damage_ = unite(s->damage_, clip({unsigned(x), unsigned(y), unsigned(w), unsigned(h)}, s->size_));
}

void VncSource::finished_cb(rfbClient *client)
{
    self(client)->frame_ready_ = true;
}

Result<std::unique_ptr<VncSource>> VncSource::connect(const std::string &socket_path)
{
    rfbClientLog = keep_log;
    rfbClientErr = keep_error;
    std::unique_ptr<VncSource> s(new VncSource);
    rfbClient *client = rfbGetClient(8, 3, 4);
    if (!client)
        return fail("libvncclient: out of memory");
    rfbClientSetClientData(client, &g_tag, s.get());
    // XRGB8888 as DRM and most fbdevs want it (and as QEMU keeps its surface: no conversion).
    client->format.redShift = 16;
    client->format.greenShift = 8;
    client->format.blueShift = 0;
    client->appData.shareDesktop = TRUE; // an engineer's VNC client on the same socket stays connected
    client->appData.viewOnly = TRUE;
    // Raw over a local socket: nothing to compress or decompress on either side.
    client->appData.encodingsString = "raw";
    client->appData.useRemoteCursor = FALSE;
    client->canHandleNewFBSize = TRUE;
    client->MallocFrameBuffer = resize_cb;
    client->GotFrameBufferUpdate = update_cb;
    client->FinishedFrameBufferUpdate = finished_cb;
    client->readTimeout = 30;   // a QEMU that stops answering mid-message
    client->connectTimeout = 10;
    client->serverHost = ::strdup(socket_path.c_str());
    client->programName = "rescuevm screen";
    g_last_error.clear();
    int argc = 0;
    // On failure rfbInitClient frees the client itself.
    if (!rfbInitClient(client, &argc, nullptr))
        return fail(fmt::format("VNC {}: {}", socket_path, g_last_error.empty() ? "cannot connect" : g_last_error));
    s->client_ = client;
    // Our own encodings list, sent again: libvncclient 0.9.14 always offers ExtendedDesktopSize
    // (-308), with which QEMU announces a mode change in a rectangle of the new size, and
    // libvncclient refuses that rectangle as too large for the old one before it looks at its
    // encoding ("Rect too large": the connection ends at every guest mode switch). Raw and the
    // plain DesktopSize pseudo-encoding (-223), which libvncclient handles, are all we want.
    const std::uint32_t encodings[] = {rfbEncodingRaw, rfbEncodingNewFBSize};
    unsigned char msg[sz_rfbSetEncodingsMsg + sizeof(encodings)] = {rfbSetEncodings, 0, 0, std::size(encodings)};
    for (std::size_t i = 0; i < std::size(encodings); ++i)
        for (int b = 0; b < 4; ++b)
            msg[sz_rfbSetEncodingsMsg + i * 4 + std::size_t(b)] = static_cast<unsigned char>(encodings[i] >> (24 - 8 * b));
    if (!WriteToRFBServer(client, reinterpret_cast<const char *>(msg), sizeof(msg)))
        return fail(fmt::format("VNC {}: cannot send the encodings", socket_path));
    return s;
}

VncSource::~VncSource()
{
    if (client_)
        rfbClientCleanup(client_);
}

int VncSource::fd() const
{
    return client_->sock;
}

bool VncSource::buffered() const
{
    return client_->buffered > 0;
}

Result<void> VncSource::receive()
{
    g_last_error.clear();
    g_last_log.clear();
    if (!HandleRFBServerMessage(client_))
        return fail(fmt::format("VNC connection lost{}", !g_last_error.empty() ? ": " + g_last_error
                                                         : !g_last_log.empty() ? " (" + g_last_log + ")"
                                                                               : std::string()));
    return {};
}

Rect VncSource::take_damage()
{
    frame_ready_ = false;
    Rect d = damage_;
    damage_ = {};
    return d;
}

bool VncSource::take_resized()
{
    bool r = resized_;
    resized_ = false;
    return r;
}

} // namespace rescuevm::screen
