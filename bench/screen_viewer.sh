#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmarks the console viewer (`rescuevm screen`): CPU per frame, pixels drawn and peak RSS while a guest boots with its console on the VGA, drawn into memory at the console sizes servers use.
#
# Usage (root not needed): bench/screen_viewer.sh [SECONDS]   (default 40 per size)
#   env BUILD_ROOT (default build; must be built), BENCH_SIZES (default "1024x768 1920x1080":
#   the console modes to scale to)
#
# Per size: the test guest boots under TCG with -device VGA, its kernel log on tty0 (VGA text,
# then the bochs framebuffer once rvtest.screen loads it: many small updates, a mode switch and
# one full-screen fill), QEMU's VNC on a unix socket; `rescuevm screen --memory WxH` reads it the
# whole time and prints its statistics line (frames, Mpixel drawn, CPU per frame after the first,
# set-up CPU, peak RSS). The memory output is ordinary RAM: a DRM dumb buffer in video memory
# (ast, mgag200: write-combined) costs more per pixel; the viewer only writes it, never reads.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export SOURCE_ROOT=${SOURCE_ROOT:-$(cd "$here/.." && pwd)}
export BUILD_ROOT=${BUILD_ROOT:-$SOURCE_ROOT/build}
source "$SOURCE_ROOT/tests/integration/lib.sh"
[[ -x $BUILD_ROOT/rescuevm ]] || rv_fail "$BUILD_ROOT/rescuevm is not built (ninja -C $BUILD_ROOT)"

SECS=${1:-40}
tmp=$(rv_tmpdir)
RV_GUEST_DIR=$(rv_guest_build)
echo "| console mode | frames | Mpixel drawn | CPU per frame | viewer CPU total | peak RSS |"
echo "|---|---|---|---|---|---|"
for size in ${BENCH_SIZES:-1024x768 1920x1080}; do
  run=$tmp/$size
  rv_qemu_start "$run" "console=tty0 ignore_loglevel rvtest.screen=magenta" \
    -device VGA -vnc "unix:$run/vnc.sock"
  deadline=$((SECONDS + 30))
  until [[ -S $run/vnc.sock ]]; do
    ((SECONDS < deadline)) || rv_fail "QEMU made no VNC socket"
    sleep 0.2
  done
  "$BUILD_ROOT/rescuevm" screen --vnc "$run/vnc.sock" --memory "$size" --seconds "$SECS" 2>"$run/viewer.log" \
    || rv_fail "the viewer failed: $(cat "$run/viewer.log")"
  rv_qemu_stop "$run" || true
  stats=$(grep -m1 'stats:' "$run/viewer.log") || rv_fail "no stats line: $(cat "$run/viewer.log")"
  python3 - "$size" "$stats" <<'EOF'
import re, sys
size, s = sys.argv[1], sys.argv[2]
m = re.search(r"(\d+) frames in ([\d.]+) s, ([\d.]+) Mpixel drawn, CPU ([\d.]+) s \((\d+) us per frame.*peak RSS (\d+) KiB", s)
f, secs, mpx, cpu, us, rss = m.groups()
print(f"| {size} | {f} in {secs} s | {mpx} | {us} us | {cpu} s | {int(rss) / 1024:.1f} MiB |")
EOF
done
