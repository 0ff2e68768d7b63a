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
#                             busybox insmod never has to decompress), the modules /init loads
#                             only on request (FEATURE_MODULES: /lib/modules/<feature>.order),
#                             Debian's qemu-ga with its shared libraries, /bin/rvguest (rvguest.c
#                             built with gcc; it needs only that libc), /bin/shutdown (shutdown, what qemu-ga runs
#                             for guest-shutdown), /etc/os-release, and /init
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
# Needs: busybox-static, linux-image-amd64, kmod, cpio, gzip, qemu-guest-agent, gcc, libc6-dev
# (all in scripts/setup). Firmware-bootable disk images of this guest: build-images.sh.
set -euo pipefail

die() { echo "build-guest.sh: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: build-guest.sh OUTDIR"
out=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
init_src=$here/init
rvguest_src=$here/rvguest.c
shutdown_src=$here/shutdown

# Kernel drivers the guest needs; their dependencies are added automatically.
MODULES=(
  virtio_pci virtio_blk virtio_scsi virtio_net   # virtio disks and NIC (+ virtio_ring, virtio, failover...)
  nvme                                           # NVMe disks (+ nvme-core)
  ahci sd_mod sr_mod isofs                       # SATA disks, the config-drive CD-ROM and its file system
  e1000e                                         # network.model = "e1000e"
  button evdev                                   # ACPI power button as /dev/input/eventN
  pvpanic_mmio pvpanic_pci                       # -device pvpanic (ISA/ACPI) and pvpanic-pci: GUEST_PANICKED
  edd                                            # /sys/firmware/edd: which BIOS drive booted (int13 0x80)
  efivarfs                                       # EFI variables: which partition the EFI stub came from
)
# Drivers /init loads only when a parameter asks for them (boot time under TCG matters):
# FEATURE_MODULES[name]="modules..." becomes /lib/modules/<name>.order, dependencies first.
declare -A FEATURE_MODULES=(
  [qga]="virtio_console"                         # rvtest.qga=1, rvtest.garbage=1: virtio-serial ports
  [screen]="bochs"                               # rvtest.screen: DRM driver of QEMU's VGA, /dev/fb0
  [keys]="hid_generic usbhid xhci_pci"           # rvtest.keys, rvtest.pointer: usb-kbd, usb-tablet
)

busybox=$(command -v busybox || true)
[[ -n $busybox ]] || die "busybox not found: install busybox-static (scripts/setup)"
{ ldd "$busybox" 2>&1 || true; } | grep -q 'not a dynamic executable' \
  || die "$busybox is not statically linked: install busybox-static (scripts/setup)"
command -v modprobe >/dev/null || die "modprobe not found: install kmod (scripts/setup)"
command -v cpio >/dev/null || die "cpio not found: install cpio (scripts/setup)"
qemu_ga=/usr/sbin/qemu-ga
[[ -x $qemu_ga ]] || die "$qemu_ga not found: install qemu-guest-agent (scripts/setup)"
command -v gcc >/dev/null || die "gcc not found: install gcc and libc6-dev (scripts/setup)"

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
    cat "$init_src" "$rvguest_src" "$shutdown_src" "${BASH_SOURCE[0]}" | sha256sum    # contents only: the path may be relative
    echo "modules=${MODULES[*]}"
    stat -Lc '%n %s %Y' "$vmlinuz" "$busybox" "/lib/modules/$kver/modules.dep" "$qemu_ga" \
      "$(command -v gcc)" /usr/lib/x86_64-linux-gnu/libc.so.6
  } | sha256sum | cut -d' ' -f1
)
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9    # two tests building into one OUTDIR at once wait for each other
if [[ -f $out/stamp && $(cat "$out/stamp") == "$stamp" && -f $out/vmlinuz && -f $out/initramfs.cpio.gz ]]; then
  exit 0
fi

# resolve_modules MODULE...: their files in load order (dependencies first, each file once).
resolve_modules() {
  local m deps kind path _
  for m in "$@"; do
    deps=$(modprobe -S "$kver" --show-depends "$m" 2>&1) \
      || die "module $m for kernel $kver: $deps"
    while read -r kind path _; do
      [[ $kind == insmod ]] || continue        # "builtin NAME" lines need nothing
      echo "$path"
    done <<<"$deps"
  done | awk '!seen[$0]++'
}
mapfile -t mod_paths < <(resolve_modules "${MODULES[@]}")
[[ ${#mod_paths[@]} -gt 0 ]] || die "no module files resolved for kernel $kver"

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

# install_module PATH: copies (decompressing) one module file; echoes the name it got.
install_module() {
  local p=$1 base
  base=$(basename "$p")
  case $base in
    *.ko.xz)  base=${base%.xz} ;;
    *.ko.zst) base=${base%.zst} ;;
    *.ko.gz)  base=${base%.gz} ;;
  esac
  if [[ ! -f $stage/lib/modules/$base ]]; then
    case $p in
      *.ko)     cp "$p" "$stage/lib/modules/$base" ;;
      *.ko.xz)  xz -dc "$p" >"$stage/lib/modules/$base" ;;
      *.ko.zst) zstd -qdc "$p" >"$stage/lib/modules/$base" ;;
      *.ko.gz)  gzip -dc "$p" >"$stage/lib/modules/$base" ;;
      *) die "unexpected module file $p" ;;
    esac
  fi
  echo "$base"
}

order=()
for p in "${mod_paths[@]}"; do
  order+=("$(install_module "$p")")
done
printf '%s\n' "${order[@]}" >"$stage/lib/modules/load-order"
nfeature=0
for feature in "${!FEATURE_MODULES[@]}"; do
  # shellcheck disable=SC2086 # a space-separated module list
  mapfile -t paths < <(resolve_modules ${FEATURE_MODULES[$feature]})
  for p in "${paths[@]}"; do
    install_module "$p"
    nfeature=$((nfeature + 1))
  done >"$stage/lib/modules/$feature.order"
done
echo "$kver" >"$stage/etc/kernel-version"
printf '%s\n' 'ID=rvtest' 'NAME="rescuevm test guest"' 'PRETTY_NAME="rescuevm test guest"' \
  "VERSION_ID=1" "VERSION=\"1 (kernel $kver)\"" >"$stage/etc/os-release"

# qemu-ga and the shared libraries it needs, where its ELF interpreter looks for them
# (/lib64/ld-linux-x86-64.so.2 and /lib/x86_64-linux-gnu, the loader's built-in directories).
mkdir -p "$stage/lib/x86_64-linux-gnu" "$stage/lib64"
cp "$qemu_ga" "$stage/bin/qemu-ga"
libs=$(ldd "$qemu_ga") || die "ldd $qemu_ga failed"
while read -r name arrow path _; do
  case $name in
    linux-vdso.so.*) ;;
    /lib64/ld-linux-x86-64.so.2) cp -L "$name" "$stage/lib64/ld-linux-x86-64.so.2" ;;
    *) [[ $arrow == "=>" && -f $path ]] || die "qemu-ga needs $name, which ldd cannot find: $libs"
       cp -L "$path" "$stage/lib/x86_64-linux-gnu/$name" ;;
  esac
done <<<"$libs"
[[ -f $stage/lib64/ld-linux-x86-64.so.2 ]] || die "qemu-ga's ELF interpreter is not /lib64/ld-linux-x86-64.so.2: $libs"
install -m 0755 "$shutdown_src" "$stage/bin/shutdown"   # /sbin is a link to bin
sh -n "$stage/bin/shutdown" || die "tests/guest/shutdown has a syntax error"

# The input/framebuffer helper, linked against the libc that is there for qemu-ga anyway.
gcc -O2 -s -Wall -Wextra -Werror -o "$stage/bin/rvguest" "$rvguest_src" \
  || die "compiling $rvguest_src failed (needs gcc and libc6-dev)"
for lib in $(ldd "$stage/bin/rvguest" | awk '$2 == "=>" { print $1 }'); do
  [[ -f $stage/lib/x86_64-linux-gnu/$lib ]] || die "rvguest needs $lib, which qemu-ga does not bring"
done

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
echo "build-guest.sh: built $out (kernel $kver, ${#order[@]} modules at boot, $nfeature on request)" >&2
