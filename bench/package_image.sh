#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Budgets of the Debian package and the rescue image: installed package size, rescue image size and image build time per compression setting.
#
# Usage (root): bench/package_image.sh [RUNS] [DEB]      (defaults 3 and the newest
#   build-package/rescuevm_*_amd64.deb; build one with scripts/package)
#   env CONFIGS: compression settings to compare, "ALGO:LEVEL ..." (default
#   "zstd:9 xz:1 xz:6 zstd:19"; the first is scripts/build-rescue-image's default)
#
# 1. Package: the .deb's size, its Installed-Size, the unpacked files (du), the
#    agent binary, and the -dbgsym .deb next to it.
# 2. Image: scripts/build-rescue-image --deb DEB --compress ALGO --level LEVEL,
#    RUNS rounds; each round builds every setting once, in turn (side by side,
#    so a load change on this shared machine hits all settings alike). Wall time
#    of the whole script per build (package checks, mkinitramfs, compression,
#    listing); initrd.img size; the time to decompress it (what each boot pays).
#    Medians over the rounds, min and max shown.
# Prints the rows for bench/RESULTS.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
RUNS=${1:-3}
deb=${2:-$(ls -t "$root"/build-package/rescuevm_*_amd64.deb 2>/dev/null | head -n 1 || true)}
CONFIGS=${CONFIGS:-"zstd:9 xz:1 xz:6 zstd:19"}
[[ $(id -u) -eq 0 ]] || { echo "bench: run as root (mkinitramfs)" >&2; exit 1; }
[[ -n $deb && -f $deb ]] || { echo "bench: no package: run scripts/package, or give DEB" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench: RUNS must be a positive number" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rescuevm-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# --- 1. package ------------------------------------------------------------------------------
version=$(dpkg-deb -f "$deb" Version)
dpkg-deb -x "$deb" "$tmp/root"
installed_kib=$(dpkg-deb -f "$deb" Installed-Size)
unpacked=$(du -sb "$tmp/root" | cut -f1)
agent=$(stat -c %s "$tmp/root/usr/sbin/rescuevm")
dbgsym=$(dirname "$deb")/rescuevm-dbgsym_${version}_amd64.deb
dbgsym_size=$([[ -f $dbgsym ]] && stat -c %s "$dbgsym" || echo 0)

# --- 2. image builds, side by side -----------------------------------------------------------
: >"$tmp/results"
for ((round = 1; round <= RUNS; round++)); do
  for cfg in $CONFIGS; do
    algo=${cfg%%:*} level=${cfg#*:}
    out=$tmp/img
    rm -rf "$out"
    start=$(date +%s.%N)
    "$root/scripts/build-rescue-image" --deb "$deb" --compress "$algo" --level "$level" "$out" \
      >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; echo "bench: build failed for $cfg" >&2; exit 1; }
    end=$(date +%s.%N)
    size=$(stat -c %s "$out/initrd.img")
    # What every boot pays: unpacking the image (user space, one thread; the
    # kernel's own decompressors are not faster). No early cpio: no microcode
    # package on the build machine, so the file is one compressed stream.
    dstart=$(date +%s.%N)
    "$algo" -dc "$out/initrd.img" >/dev/null
    dend=$(date +%s.%N)
    echo "$cfg $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') $size $(awk -v a="$dstart" -v b="$dend" 'BEGIN { printf "%.2f", b - a }')" >>"$tmp/results"
    echo "bench: round $round $cfg: $(tail -n 1 "$tmp/results" | cut -d' ' -f2) s, $(mib "$size"), unpacked in $(tail -n 1 "$tmp/results" | cut -d' ' -f4) s" >&2
  done
done
kver=$(sed -n 's/^kernel: *\([^ ]*\).*/\1/p' "$tmp/img/rescuevm-image.txt")
vmlinuz=$(stat -c %s "$tmp/img/vmlinuz")
entries=$(sed -n 's/^initramfs:.* \([0-9]*\) entries$/\1/p' "$tmp/img/rescuevm-image.txt")

echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg), rescuevm $version, kernel $kver, $RUNS rounds"
echo
echo "| package | size |"
echo "|---|---|"
echo "| rescuevm_${version}_amd64.deb | $(stat -c %s "$deb") bytes ($(mib "$(stat -c %s "$deb")")) |"
echo "| Installed-Size | $installed_kib KiB |"
echo "| unpacked files (du -sb) | $unpacked bytes ($(mib "$unpacked")) |"
echo "| /usr/sbin/rescuevm (stripped) | $agent bytes ($(mib "$agent")) |"
echo "| rescuevm-dbgsym .deb | $dbgsym_size bytes ($(mib "$dbgsym_size")) |"
echo
echo "Rescue image: vmlinuz $(mib "$vmlinuz"), initramfs $entries entries."
echo
echo "| compression | initrd.img | build time median (min-max) | unpack time median (min-max) |"
echo "|---|---|---|---|"
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%s (%s-%s)", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR] }'; }
for cfg in $CONFIGS; do
  size=$(awk -v c="$cfg" '$1 == c { print $3; exit }' "$tmp/results")
  build=$(awk -v c="$cfg" '$1 == c { print $2 }' "$tmp/results" | median)
  unpack=$(awk -v c="$cfg" '$1 == c { print $4 }' "$tmp/results" | median)
  echo "| $cfg | $size bytes ($(mib "$size")) | $build s | $unpack s |"
done
