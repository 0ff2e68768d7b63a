#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the stand-in server's boot files: Debian's kernel and a small busybox initramfs that mounts the machine's root over 9p under a tmpfs overlay and starts systemd.
#
# Usage: tests/standin/build-standin.sh OUTDIR
#
# Produces (idempotently: a second run with nothing changed returns at once):
#   OUTDIR/initramfs.cpio.gz  busybox-static, the modules for virtio-pci, 9p over virtio and
#                             overlayfs (uncompressed, in load order: /lib/modules/load-order),
#                             and /init (tests/standin/init). Everything else (systemd, udev,
#                             QEMU, every other module) comes from the machine's own root at
#                             boot, read-only: nothing of it is copied.
#   OUTDIR/vmlinuz            copy of /boot/vmlinuz-<ver>
#   OUTDIR/vmlinux            the same kernel uncompressed (ELF, PVH entry), when the kernel has
#                             CONFIG_PVH: QEMU boots it directly, which under TCG skips the
#                             firmware's real-mode setup and the in-guest XZ decompression
#   OUTDIR/kernel-version     <ver>; the machine's /lib/modules/<ver> must be complete, since the
#                             stand-in loads its modules from there
#   OUTDIR/stamp              what the build was made from (decides "up to date")
# A boot appends a per-boot cpio (the seed: the stand-in's /etc files, rescuevm) to the
# initramfs: see tests/standin/standin.sh.
# Environment: RV_STANDIN_KVER=<ver> picks a kernel (default: the newest in /lib/modules that
# has /boot/vmlinuz-<ver>, the same choice as tests/guest/build-guest.sh).
# Needs: busybox-static, linux-image-amd64, kmod, cpio, gzip, xz-utils (scripts/setup).
set -euo pipefail

die() { echo "build-standin.sh: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: build-standin.sh OUTDIR"
out=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
init_src=$here/init

MODULES=(virtio_pci 9pnet_virtio 9p overlay)

busybox=$(command -v busybox || true)
[[ -n $busybox ]] || die "busybox not found: install busybox-static (scripts/setup)"
{ ldd "$busybox" 2>&1 || true; } | grep -q 'not a dynamic executable' \
  || die "$busybox is not statically linked: install busybox-static (scripts/setup)"
command -v modprobe >/dev/null || die "modprobe not found: install kmod (scripts/setup)"
command -v cpio >/dev/null || die "cpio not found: install cpio (scripts/setup)"

kver=${RV_STANDIN_KVER:-}
if [[ -z $kver ]]; then
  for d in $(ls -1 /lib/modules 2>/dev/null | sort -V -r); do
    if [[ -f /boot/vmlinuz-$d && -f /lib/modules/$d/modules.dep ]]; then kver=$d; break; fi
  done
fi
[[ -n $kver ]] || die "no kernel with both /lib/modules/<ver>/modules.dep and /boot/vmlinuz-<ver>: install linux-image-amd64 (scripts/setup)"
vmlinuz=/boot/vmlinuz-$kver
[[ -r $vmlinuz ]] || die "$vmlinuz is missing or unreadable"

stamp=$(
  {
    echo "kver=$kver"
    cat "$init_src" "${BASH_SOURCE[0]}" | sha256sum
    echo "modules=${MODULES[*]}"
    stat -Lc '%n %s %Y' "$vmlinuz" "$busybox" "/lib/modules/$kver/modules.dep"
  } | sha256sum | cut -d' ' -f1
)
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [[ -f $out/stamp && $(cat "$out/stamp") == "$stamp" && -f $out/vmlinuz && -f $out/initramfs.cpio.gz ]]; then
  exit 0
fi

mod_paths=()
for m in "${MODULES[@]}"; do
  deps=$(modprobe -S "$kver" --show-depends "$m" 2>&1) || die "module $m for kernel $kver: $deps"
  while read -r kind path _; do
    [[ $kind == insmod ]] || continue
    mod_paths+=("$path")
  done <<<"$deps"
done
mapfile -t mod_paths < <(printf '%s\n' "${mod_paths[@]}" | awk '!seen[$0]++')

stage=$(mktemp -d "$out/.stage.XXXXXX")
trap 'rm -rf "$stage" "$out/.vmlinuz.new" "$out/.vmlinux.new" "$out/.initramfs.new"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,etc,run,lib/modules}
ln -s bin "$stage/sbin"
cp "$busybox" "$stage/bin/busybox"
for applet in $("$busybox" --list); do
  [[ $applet == busybox ]] || ln -s busybox "$stage/bin/$applet"
done
[[ $(id -u) -ne 0 ]] || mknod -m 600 "$stage/dev/console" c 5 1

order=()
for p in "${mod_paths[@]}"; do
  base=$(basename "$p")
  case $base in
    *.ko)     cp "$p" "$stage/lib/modules/$base" ;;
    *.ko.xz)  base=${base%.xz};  xz -dc "$p" >"$stage/lib/modules/$base" ;;
    *.ko.zst) base=${base%.zst}; zstd -qdc "$p" >"$stage/lib/modules/$base" ;;
    *.ko.gz)  base=${base%.gz};  gzip -dc "$p" >"$stage/lib/modules/$base" ;;
    *) die "unexpected module file $p" ;;
  esac
  order+=("$base")
done
printf '%s\n' "${order[@]}" >"$stage/lib/modules/load-order"
install -m 0755 "$init_src" "$stage/init"
sh -n "$stage/init" || die "tests/standin/init has a syntax error"

(cd "$stage" && find . -mindepth 1 -print | LC_ALL=C sort \
  | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -6 >"$out/.initramfs.new"
cp "$vmlinuz" "$out/.vmlinuz.new"
# The bzImage carries the ELF kernel as an XZ stream (Debian: CONFIG_KERNEL_XZ).
rm -f "$out/vmlinux"
if grep -q '^CONFIG_PVH=y' "/boot/config-$kver" 2>/dev/null && command -v xz >/dev/null; then
  xz_at=$(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$vmlinuz" | head -n 1 | cut -d: -f1 || true)
  if [[ -n $xz_at ]] && xz -dc --single-stream < <(tail -c +$((xz_at + 1)) "$vmlinuz") >"$out/.vmlinux.new" 2>/dev/null \
    && [[ $(head -c 4 "$out/.vmlinux.new") == $'\x7fELF' ]]; then
    mv -f "$out/.vmlinux.new" "$out/vmlinux"
  fi
fi
mv -f "$out/.vmlinuz.new" "$out/vmlinuz"
mv -f "$out/.initramfs.new" "$out/initramfs.cpio.gz"
echo "$kver" >"$out/kernel-version"
echo "$stamp" >"$out/stamp"
echo "build-standin.sh: built $out (kernel $kver, ${#order[@]} modules)" >&2
