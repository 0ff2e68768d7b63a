#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the rescuevm Linux test guest: Debian's kernel plus a busybox initramfs whose /init is tests/guest/init.
#
# Usage: tests/guest/build-guest.sh OUTDIR
#
# Produces (idempotently; a second run with nothing changed returns in well under a second):
#   OUTDIR/vmlinuz            copy of /boot/vmlinuz-<ver> (package linux-image-amd64)
#   OUTDIR/initramfs.cpio.gz  busybox-static, the kernel modules listed in MODULES below with
#                             their dependencies (resolved by `modprobe --show-depends`, kept in
#                             load order in /lib/modules/load-order, stored uncompressed so
#                             busybox insmod never has to decompress), and /init
#   OUTDIR/vmlinux            the same kernel uncompressed (ELF), when the kernel supports PVH
#                             boot (Debian's does): QEMU's -kernel boots it directly, skipping
#                             firmware real-mode setup and the in-guest XZ decompression, which
#                             under TCG saves about a third of the boot time. SeaBIOS boots
#                             either file; OVMF (UEFI) only boots vmlinuz.
#   OUTDIR/kernel-version     the kernel version the files belong to
#   OUTDIR/stamp              what the build was made from (decides "up to date")
# Boot it with: -kernel OUTDIR/vmlinuz -initrd OUTDIR/initramfs.cpio.gz
#               -append "console=ttyS0 quiet rvtest.…" (parameters documented in tests/guest/init)
# Environment: RV_GUEST_KVER=<ver> picks a kernel when /lib/modules holds several (default: the
# newest that has a matching /boot/vmlinuz-<ver>).
# Needs: busybox-static, linux-image-amd64, kmod, cpio, gzip (all in scripts/setup).
set -euo pipefail

die() { echo "build-guest.sh: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: build-guest.sh OUTDIR"
out=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
init_src=$here/init

# Kernel drivers the guest needs; their dependencies are added automatically.
MODULES=(
  virtio_pci virtio_blk virtio_scsi virtio_net   # virtio disks and NIC (+ virtio_ring, virtio, failover...)
  nvme                                           # NVMe disks (+ nvme-core)
  ahci sd_mod sr_mod isofs                       # SATA disks, the config-drive CD-ROM and its file system
  e1000e                                         # network.model = "e1000e"
  button evdev                                   # ACPI power button as /dev/input/eventN
  pvpanic_mmio pvpanic_pci                       # -device pvpanic (ISA/ACPI) and pvpanic-pci: GUEST_PANICKED
)

busybox=$(command -v busybox || true)
[[ -n $busybox ]] || die "busybox not found: install busybox-static (scripts/setup)"
{ ldd "$busybox" 2>&1 || true; } | grep -q 'not a dynamic executable' \
  || die "$busybox is not statically linked: install busybox-static (scripts/setup)"
command -v modprobe >/dev/null || die "modprobe not found: install kmod (scripts/setup)"
command -v cpio >/dev/null || die "cpio not found: install cpio (scripts/setup)"

# Kernel version: from /lib/modules, the newest one that also has its vmlinuz in /boot.
kver=${RV_GUEST_KVER:-}
if [[ -z $kver ]]; then
  for d in $(ls -1 /lib/modules 2>/dev/null | sort -V -r); do
    if [[ -f /boot/vmlinuz-$d && -f /lib/modules/$d/modules.dep ]]; then kver=$d; break; fi
  done
fi
[[ -n $kver ]] || die "no kernel with both /lib/modules/<ver>/modules.dep and /boot/vmlinuz-<ver>: install linux-image-amd64 (scripts/setup)"
vmlinuz=/boot/vmlinuz-$kver
[[ -r $vmlinuz ]] || die "$vmlinuz is missing or unreadable"

# Up to date? The stamp covers every input: sources, kernel, busybox, and the module tree
# (a kernel package update rewrites modules.dep). Checked before resolving modules: fast.
stamp=$(
  {
    echo "kver=$kver"
    cat "$init_src" "${BASH_SOURCE[0]}" | sha256sum    # contents only: the path may be relative
    echo "modules=${MODULES[*]}"
    stat -Lc '%n %s %Y' "$vmlinuz" "$busybox" "/lib/modules/$kver/modules.dep"
  } | sha256sum | cut -d' ' -f1
)
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9    # two tests building into one OUTDIR at once wait for each other
if [[ -f $out/stamp && $(cat "$out/stamp") == "$stamp" && -f $out/vmlinuz && -f $out/initramfs.cpio.gz ]]; then
  exit 0
fi

# Resolve the module list in load order (dependencies first, each module once).
mod_paths=()
for m in "${MODULES[@]}"; do
  deps=$(modprobe -S "$kver" --show-depends "$m" 2>&1) \
    || die "module $m for kernel $kver: $deps"
  while read -r kind path _; do
    [[ $kind == insmod ]] || continue        # "builtin NAME" lines need nothing
    mod_paths+=("$path")
  done <<<"$deps"
done
mapfile -t mod_paths < <(printf '%s\n' "${mod_paths[@]}" | awk '!seen[$0]++')

stage=$(mktemp -d "$out/.stage.XXXXXX")
trap 'rm -rf "$stage" "$out/.vmlinuz.new" "$out/.vmlinux.new" "$out/.initramfs.new"' EXIT

mkdir -p "$stage"/{bin,dev,proc,sys,tmp,mnt,etc,run,lib/modules}
ln -s bin "$stage/sbin"
mkdir -p "$stage/usr"; ln -s ../bin "$stage/usr/bin"; ln -s ../bin "$stage/usr/sbin"
cp "$busybox" "$stage/bin/busybox"
for applet in $("$busybox" --list); do
  [[ $applet == busybox ]] || ln -s busybox "$stage/bin/$applet"
done
# The kernel opens /dev/console for /init before anything is mounted; without the node
# /init starts with no output until it mounts devtmpfs (it copes, but early errors would be lost).
if [[ $(id -u) -eq 0 ]]; then
  mknod -m 600 "$stage/dev/console" c 5 1
fi

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
echo "$kver" >"$stage/etc/kernel-version"

install -m 0755 "$init_src" "$stage/init"
sh -n "$stage/init" || die "tests/guest/init has a syntax error"

# Reproducible archive: sorted names, fixed owner, no timestamps in gzip.
(cd "$stage" && find . -mindepth 1 -print | LC_ALL=C sort \
  | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -6 >"$out/.initramfs.new"
cp "$vmlinuz" "$out/.vmlinuz.new"
# The bzImage carries the ELF kernel as an XZ stream (Debian: CONFIG_KERNEL_XZ); decompress the
# first stream found. Without PVH support QEMU cannot boot the ELF file, so do not offer it.
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
echo "build-guest.sh: built $out (kernel $kver, ${#order[@]} modules)" >&2
