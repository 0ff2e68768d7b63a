// SPDX-License-Identifier: GPL-2.0-or-later
// rvguest: small static helpers for the test guest's /init: input event reports and a framebuffer fill.
//
// Built by build-guest.sh with `gcc -static` (Debian's libc6-dev) into the initramfs as /bin/rvguest.
//
//   rvguest input [--pointer] [--ready=FILE]
//       Watches every /dev/input/event* (rescanned every 250 ms, so devices that appear later,
//       e.g. a USB keyboard, are picked up) and prints one line per event on stdout; creates
//       FILE once the devices present at start are watched:
//         RVTEST input-listen dev=eventN kind=keyboard|pointer name=NAME   (a device is watched)
//         RVTEST key code=N value=0|1|2 dev=eventN                         (keyboards: EV_KEY)
//         RVTEST pointer x=N y=N buttons=HEX dev=eventN                    (--pointer: per EV_SYN)
//       A keyboard is a device with EV_KEY and the keys A, Z and Enter; a pointer one with
//       absolute X/Y (usb-tablet) or relative X/Y (a mouse). The ACPI "Power Button" device is
//       neither (init watches it itself). Never returns.
//   rvguest fill COLOUR [FBDEV]
//       Fills the whole framebuffer FBDEV (default /dev/fb0) with COLOUR (RRGGBB hex or one of
//       black white red green blue yellow cyan magenta), packed as the device's pixel format says,
//       then prints "RVTEST screen colour=RRGGBB dev=fb0 width=W height=H bpp=B id=ID".
//       Exit status 1 with "RVTEST error screen=..." on failure.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <linux/input.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_DEVS 32
#define BITS_PER_LONG (8 * sizeof(unsigned long))
#define NLONGS(n) (((n) + BITS_PER_LONG - 1) / BITS_PER_LONG)

// say: one RVTEST line written with a single write(), so lines from several writers never mix.
static void say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t off = 0;
    while (off < n) {
        ssize_t w = write(1, line + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        off += w;
    }
}

// clean: a value for an RVTEST line: spaces become "_", non-printable bytes are dropped.
static void clean(const char *in, char *out, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; in[i] && j + 1 < size; i++) {
        unsigned char c = in[i];
        if (c == ' ')
            out[j++] = '_';
        else if (c > ' ' && c < 0x7f)
            out[j++] = c;
    }
    out[j] = 0;
}

static int test_bit(const unsigned long *bits, unsigned bit)
{
    return (bits[bit / BITS_PER_LONG] >> (bit % BITS_PER_LONG)) & 1;
}

enum kind { KIND_NONE, KIND_KEYBOARD, KIND_POINTER };

struct dev {
    int fd;
    int num; // N of eventN
    enum kind kind;
    int x, y;
    unsigned buttons;
};

static enum kind classify(int fd)
{
    unsigned long ev[NLONGS(EV_MAX + 1)] = {0}, keys[NLONGS(KEY_MAX + 1)] = {0};
    unsigned long abs[NLONGS(ABS_MAX + 1)] = {0}, rel[NLONGS(REL_MAX + 1)] = {0};
    if (ioctl(fd, EVIOCGBIT(0, sizeof ev), ev) < 0)
        return KIND_NONE;
    if (test_bit(ev, EV_KEY))
        ioctl(fd, EVIOCGBIT(EV_KEY, sizeof keys), keys);
    if (test_bit(ev, EV_KEY) && test_bit(keys, KEY_A) && test_bit(keys, KEY_Z) && test_bit(keys, KEY_ENTER))
        return KIND_KEYBOARD;
    if (test_bit(ev, EV_ABS) && ioctl(fd, EVIOCGBIT(EV_ABS, sizeof abs), abs) >= 0 && test_bit(abs, ABS_X) &&
        test_bit(abs, ABS_Y))
        return KIND_POINTER;
    if (test_bit(ev, EV_REL) && ioctl(fd, EVIOCGBIT(EV_REL, sizeof rel), rel) >= 0 && test_bit(rel, REL_X) &&
        test_bit(rel, REL_Y))
        return KIND_POINTER;
    return KIND_NONE;
}

// scan: opens event devices not yet watched. seen[] remembers every number ever looked at, so a
// device that is neither keyboard nor pointer is not reopened every 250 ms.
static int scan(struct dev *devs, int ndevs, unsigned char *seen, int pointer)
{
    DIR *d = opendir("/dev/input");
    if (!d)
        return ndevs;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && ndevs < MAX_DEVS) {
        int num;
        char rest;
        if (sscanf(e->d_name, "event%d%c", &num, &rest) != 1 || num < 0 || num >= 256 || seen[num])
            continue;
        char path[64];
        snprintf(path, sizeof path, "/dev/input/event%d", num);
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue; // the node may be there before the device is ready: try again next scan
        seen[num] = 1;
        enum kind kind = classify(fd);
        if (kind == KIND_NONE || (kind == KIND_POINTER && !pointer)) {
            close(fd);
            continue;
        }
        char name[128] = "", cname[128];
        ioctl(fd, EVIOCGNAME(sizeof name - 1), name);
        clean(name, cname, sizeof cname);
        devs[ndevs++] = (struct dev){.fd = fd, .num = num, .kind = kind};
        say("RVTEST input-listen dev=event%d kind=%s name=%s", num, kind == KIND_KEYBOARD ? "keyboard" : "pointer",
            cname[0] ? cname : "none");
    }
    closedir(d);
    return ndevs;
}

static void handle(struct dev *dv, const struct input_event *ev)
{
    if (dv->kind == KIND_KEYBOARD) {
        if (ev->type == EV_KEY)
            say("RVTEST key code=%u value=%d dev=event%d", ev->code, ev->value, dv->num);
        return;
    }
    switch (ev->type) {
    case EV_ABS:
        if (ev->code == ABS_X)
            dv->x = ev->value;
        else if (ev->code == ABS_Y)
            dv->y = ev->value;
        break;
    case EV_REL:
        if (ev->code == REL_X)
            dv->x += ev->value;
        else if (ev->code == REL_Y)
            dv->y += ev->value;
        break;
    case EV_KEY:
        if (ev->code >= BTN_MOUSE && ev->code < BTN_MOUSE + 16) {
            unsigned bit = 1u << (ev->code - BTN_MOUSE);
            dv->buttons = ev->value ? dv->buttons | bit : dv->buttons & ~bit;
        }
        break;
    case EV_SYN:
        if (ev->code == SYN_REPORT)
            say("RVTEST pointer x=%d y=%d buttons=%x dev=event%d", dv->x, dv->y, dv->buttons, dv->num);
        break;
    }
}

static int input_main(int pointer, const char *ready_file)
{
    struct dev devs[MAX_DEVS];
    unsigned char seen[256] = {0};
    int ndevs = 0;
    for (;;) {
        ndevs = scan(devs, ndevs, seen, pointer);
        if (ready_file) { // the devices present at start are watched: tell init
            close(open(ready_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
            ready_file = NULL;
        }
        struct pollfd pfd[MAX_DEVS];
        for (int i = 0; i < ndevs; i++)
            pfd[i] = (struct pollfd){.fd = devs[i].fd, .events = POLLIN};
        int r = poll(pfd, ndevs, 250);
        if (r < 0 && errno != EINTR)
            return 1;
        for (int i = 0; r > 0 && i < ndevs; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            struct input_event ev[64];
            ssize_t n = read(devs[i].fd, ev, sizeof ev);
            if (n < 0 && (errno == ENODEV || errno == EIO)) { // unplugged: forget it
                close(devs[i].fd);
                seen[devs[i].num] = 0;
                devs[i] = devs[--ndevs];
                pfd[i] = pfd[ndevs];
                i--;
                continue;
            }
            for (ssize_t k = 0; k < n / (ssize_t)sizeof ev[0]; k++)
                handle(&devs[i], &ev[k]);
        }
    }
}

static const struct {
    const char *name;
    unsigned rgb;
} kColours[] = {
    {"black", 0x000000}, {"white", 0xffffff}, {"red", 0xff0000},  {"green", 0x00ff00},
    {"blue", 0x0000ff},  {"yellow", 0xffff00}, {"cyan", 0x00ffff}, {"magenta", 0xff00ff},
};

static int parse_colour(const char *s, unsigned *rgb)
{
    for (size_t i = 0; i < sizeof kColours / sizeof kColours[0]; i++)
        if (strcasecmp(s, kColours[i].name) == 0) {
            *rgb = kColours[i].rgb;
            return 0;
        }
    if (strlen(s) != 6 || strspn(s, "0123456789abcdefABCDEF") != 6)
        return -1;
    *rgb = strtoul(s, NULL, 16);
    return 0;
}

// component: an 8-bit colour value scaled to a bitfield of the framebuffer's pixel format.
static uint32_t component(unsigned v8, const struct fb_bitfield *f)
{
    if (f->length == 0)
        return 0;
    uint32_t v = f->length >= 8 ? v8 << (f->length - 8) : v8 >> (8 - f->length);
    return v << f->offset;
}

static int fill_main(const char *colour, const char *path)
{
    unsigned rgb;
    if (parse_colour(colour, &rgb) < 0) {
        say("RVTEST error screen=%s reason=want_RRGGBB_or_a_colour_name", colour);
        return 1;
    }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        say("RVTEST error screen=%s reason=open_%s", base, strerror(errno));
        return 1;
    }
    struct fb_var_screeninfo var;
    struct fb_fix_screeninfo fix;
    if (ioctl(fd, FBIOGET_VSCREENINFO, &var) < 0 || ioctl(fd, FBIOGET_FSCREENINFO, &fix) < 0) {
        say("RVTEST error screen=%s reason=not_a_framebuffer", base);
        return 1;
    }
    unsigned bpp = var.bits_per_pixel;
    if (bpp != 16 && bpp != 24 && bpp != 32) {
        say("RVTEST error screen=%s reason=unsupported_bpp_%u", base, bpp);
        return 1;
    }
    uint32_t pixel = component(rgb >> 16 & 0xff, &var.red) | component(rgb >> 8 & 0xff, &var.green) |
                     component(rgb & 0xff, &var.blue);
    size_t len = fix.smem_len;
    uint8_t *fb = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fb == MAP_FAILED) {
        say("RVTEST error screen=%s reason=mmap_%s", base, strerror(errno));
        return 1;
    }
    // Every line of the virtual screen (panning must not reveal an unfilled part).
    size_t lines = var.yres_virtual ? var.yres_virtual : var.yres;
    if (fix.line_length && lines * fix.line_length > len)
        lines = len / fix.line_length;
    unsigned bytes = bpp / 8;
    for (size_t y = 0; y < lines; y++) {
        uint8_t *row = fb + y * fix.line_length;
        for (size_t x = 0; x < var.xres_virtual && (x + 1) * bytes <= fix.line_length; x++)
            for (unsigned b = 0; b < bytes; b++)
                row[x * bytes + b] = pixel >> (8 * b); // little-endian pixel layout
    }
    msync(fb, len, MS_SYNC);
    munmap(fb, len);
    char id[sizeof fix.id + 1], cid[sizeof id];
    memcpy(id, fix.id, sizeof fix.id);
    id[sizeof fix.id] = 0;
    clean(id, cid, sizeof cid);
    say("RVTEST screen colour=%06x dev=%s width=%u height=%u bpp=%u id=%s", rgb, base, var.xres, var.yres, bpp,
        cid[0] ? cid : "none");
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "input") == 0) {
        int pointer = 0;
        const char *ready_file = NULL;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--pointer") == 0)
                pointer = 1;
            else if (strncmp(argv[i], "--ready=", 8) == 0)
                ready_file = argv[i] + 8;
        }
        return input_main(pointer, ready_file);
    }
    if (argc >= 3 && strcmp(argv[1], "fill") == 0)
        return fill_main(argv[2], argc >= 4 ? argv[3] : "/dev/fb0");
    fprintf(stderr, "usage: rvguest input [--pointer] [--ready=FILE] | rvguest fill COLOUR [FBDEV]\n");
    return 2;
}
