#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Test helpers: build an initramfs with the rescuevm hook and boot script from a test-local initramfs-tools config dir.

# Prints the newest kernel version that has both /boot/vmlinuz-<v> and /lib/modules/<v>.
rescuevm_test_kernel_version() {
  local k v best=
  for k in /boot/vmlinuz-*; do
    v=${k#/boot/vmlinuz-}
    [[ -f $k && -d /lib/modules/$v ]] && best=$v
  done
  [[ -n $best ]] && echo "$best"
}

# rescuevm_build_initramfs CONFDIR OUTPUT KVER
# Makes CONFDIR (initramfs.conf, modules list, the hook, the boot script) and
# runs mkinitramfs with it. Uses $RESCUEVM as the agent binary, the hook as the
# build configured it ($BUILD_ROOT/initramfs/rescuevm) and $SOURCE_ROOT for the
# other files under test. RESCUEVM_BOOT_COMMAND (default run) is the
# subcommand the boot script starts.
rescuevm_build_initramfs() {
  local conf=$1 out=$2 kver=$3
  mkdir -p "$conf/hooks" "$conf/scripts/init-premount" "$conf/conf.d"
  cat >"$conf/initramfs.conf" <<'CONF'
MODULES=list
BUSYBOX=y
KEYMAP=n
COMPRESS=zstd
COMPRESSLEVEL=1
RUNSIZE=10%
FSTYPE=auto
CONF
  # The stand-in rescue host's disks and NIC are virtio; kvm and macvtap come
  # from the hook itself.
  printf '%s\n' virtio_pci virtio_blk virtio_net >"$conf/modules"
  install -m 0755 "${BUILD_ROOT:?set by meson}/initramfs/rescuevm" "$conf/hooks/rescuevm"
  install -m 0755 "$SOURCE_ROOT/initramfs/scripts/init-premount/rescuevm" \
    "$conf/scripts/init-premount/rescuevm"
  printf 'RESCUEVM_INITRAMFS=y\nRESCUEVM_COMMAND=%s\n' "${RESCUEVM_BOOT_COMMAND:-run}" >"$conf/conf.d/rescuevm"
  RESCUEVM_BINARY=$RESCUEVM \
    RESCUEVM_UDEV_RULES=$SOURCE_ROOT/units/61-rescuevm-hold-raid-members.rules \
    mkinitramfs -d "$conf" -o "$out" "$kver"
}
