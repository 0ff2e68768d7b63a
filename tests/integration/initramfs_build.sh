#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds an initramfs with mkinitramfs and the rescuevm hook, and checks with lsinitramfs that the agent, QEMU, firmware, keymaps and every library they need are inside.
#
# Set KEEP_INITRD=PATH to keep the image (initramfs_boot.sh builds its own the
# same way, through tests/integration/boot/initramfs.sh).
set -euo pipefail

: "${SOURCE_ROOT:?set by meson}"
: "${RESCUEVM:?set by meson}"
. "$SOURCE_ROOT/tests/integration/boot/initramfs.sh"

fail() { echo "FAIL: initramfs_build: $*" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

kver=$(rescuevm_test_kernel_version) || fail "no kernel in /boot with modules in /lib/modules: install linux-image-amd64"
initrd=$tmp/initrd.img
if ! rescuevm_build_initramfs "$tmp/conf" "$initrd" "$kver" >"$tmp/mkinitramfs.log" 2>&1; then
  cat "$tmp/mkinitramfs.log" >&2
  fail "mkinitramfs failed"
fi
echo "ok: mkinitramfs built $(du -h "$initrd" | cut -f1) for $kver"

lsinitramfs "$initrd" >"$tmp/list"
missing=()
# An entry counts when the path itself or the file it resolves to is listed
# (copy_file stores usr-merged paths: /lib/x -> usr/lib/x).
have() {
  local p=${1#/} real
  real=$(readlink -f "$1" 2>/dev/null || echo "$1")
  grep -qxF -e "$p" -e "${real#/}" -e "usr/$p" "$tmp/list"
}
want() { have "$1" || missing+=("$1"); }

want /usr/sbin/rescuevm
want /usr/bin/qemu-system-x86_64
want /usr/bin/qemu-img
command -v xorriso >/dev/null && want /usr/bin/xorriso
want /usr/share/seabios/bios-256k.bin
want /usr/share/qemu/kvmvapic.bin
want /usr/share/qemu/linuxboot_dma.bin
want /usr/lib/ipxe/qemu/efi-virtio.rom
want /usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so
for d in /usr/share/qemu/firmware/*.json; do
  want "$d"
  for f in $(sed -n 's/.*"filename"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$d"); do
    want "$f"
  done
done
for k in /usr/share/qemu/keymaps/*; do want "$k"; done
want /scripts/init-premount/rescuevm
want /usr/lib/udev/rules.d/61-rescuevm-hold-raid-members.rules
# Every library the dynamic loader needs for each binary, as ldd lists it.
for bin in "$RESCUEVM" /usr/bin/qemu-system-x86_64 /usr/bin/qemu-img \
  /usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so; do
  while read -r lib; do
    want "$lib"
  done < <(ldd "$bin" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p')
done
grep -q '/kernel/arch/x86/kvm/kvm-intel.ko' "$tmp/list" || missing+=("kvm-intel.ko")
grep -q '/kernel/drivers/net/macvtap.ko' "$tmp/list" || missing+=("macvtap.ko")

if ((${#missing[@]})); then
  printf '  missing: %s\n' "${missing[@]}" >&2
  fail "${#missing[@]} files are not in the initramfs"
fi
echo "ok: agent, QEMU, qemu-img, firmware, keymaps, kernel modules and all their libraries are inside"

# The boot script is executable and comes before any root mount.
tar_list=$(lsinitramfs -l "$initrd" | grep ' scripts/init-premount/rescuevm$' || true)
[[ $tar_list == -rwx* ]] || fail "scripts/init-premount/rescuevm is not executable in the image: $tar_list"
if [[ -n ${KEEP_INITRD:-} ]]; then cp "$initrd" "$KEEP_INITRD"; fi
echo "PASS: initramfs_build"
