// SPDX-License-Identifier: GPL-2.0-or-later
// Takes the active VT for the viewer (graphics mode, keyboard off) and gives it back, also from a fatal signal.
#include "rescuevm/screen/vt_console.h"

#include "rescuevm/sys/files.h"

#include <fcntl.h>
#include <linux/kd.h>
#include <linux/vt.h>
#include <sys/ioctl.h>

#include <fmt/format.h>

#include <atomic>

namespace rescuevm::screen {
namespace {

// What a fatal-signal handler restores: set once the VT is taken.
std::atomic<int> g_fd{-1};
std::atomic<int> g_kb_mode{K_UNICODE};

} // namespace

Result<std::unique_ptr<VtConsole>> VtConsole::take(unsigned number)
{
    std::unique_ptr<VtConsole> vt(new VtConsole);
    if (number == 0) {
        UniqueFd tty0(::open("/dev/tty0", O_RDWR | O_NOCTTY | O_CLOEXEC));
        if (!tty0)
            return fail(fmt::format("/dev/tty0: {}: no virtual terminals (a kernel without VT support?)",
                                    errno_text(errno)));
        vt_stat state{};
        if (::ioctl(tty0.get(), VT_GETSTATE, &state) != 0)
            return fail(fmt::format("/dev/tty0: cannot read the active VT ({})", errno_text(errno)));
        number = state.v_active;
    }
    std::string path = fmt::format("/dev/tty{}", number);
    // O_NOCTTY: the viewer has no controlling terminal and must not get this one.
    vt->fd_.reset(::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!vt->fd_)
        return fail(fmt::format("{}: {}", path, errno_text(errno)));
    vt->number_ = number;
    int kb = K_UNICODE;
    if (::ioctl(vt->fd_.get(), KDGKBMODE, &kb) != 0)
        return fail(fmt::format("{}: not a virtual terminal ({})", path, errno_text(errno)));
    vt->kb_mode_ = kb == K_OFF ? K_UNICODE : kb;
    g_kb_mode = vt->kb_mode_;
    g_fd = vt->fd_.get();
    if (::ioctl(vt->fd_.get(), KDSETMODE, KD_GRAPHICS) != 0)
        return fail(fmt::format("{}: cannot switch it to graphics mode ({})", path, errno_text(errno)));
    // Keys that still reach the VT (a keyboard not yet handed to the VM) are not typed there.
    if (::ioctl(vt->fd_.get(), KDSKBMODE, K_OFF) != 0)
        return fail(fmt::format("{}: cannot turn its keyboard off ({})", path, errno_text(errno)));
    return vt;
}

VtConsole::~VtConsole()
{
    g_fd = -1;
    if (!fd_)
        return;
    (void)::ioctl(fd_.get(), KDSKBMODE, kb_mode_);
    (void)::ioctl(fd_.get(), KDSETMODE, KD_TEXT);
}

void VtConsole::restore_from_signal_handler()
{
    int fd = g_fd.load();
    if (fd < 0)
        return;
    (void)::ioctl(fd, KDSKBMODE, g_kb_mode.load());
    (void)::ioctl(fd, KDSETMODE, KD_TEXT);
}

} // namespace rescuevm::screen
