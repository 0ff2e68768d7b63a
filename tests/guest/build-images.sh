#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the test guest as firmware-bootable disk images (UEFI: GPT + ESP + unified kernel image; BIOS: MBR + syslinux) and a blank one, without mounting anything.
#
# Usage: tests/guest/build-images.sh OUTDIR
#
# Runs build-guest.sh OUTDIR first (kernel and initramfs), then produces (idempotently; a second
# run with nothing changed returns in well under a second):
#   OUTDIR/bootx64.efi     unified kernel image: systemd's EFI stub (systemd-boot-efi,
#                          linuxx64.efi.stub) with .osrel, .cmdline, .linux (vmlinuz) and .initrd
#                          (initramfs.cpio.gz) sections added by objcopy
#   OUTDIR/uefi.raw        GPT disk, GUID in uefi.ptuuid; one partition from 4 MiB to 1 MiB
#                          before the end: the ESP (FAT16, label RVTEST-ESP, unique GUID in
#                          uefi.partuuid) holding \EFI\BOOT\BOOTX64.EFI = bootx64.efi. The
#                          protective MBR carries syslinux's gptmbr.bin, so SeaBIOS given this
#                          image fails cleanly ("Missing OS", then the next boot device) instead
#                          of running zeros. Kernel command line (fixed, in the image):
#                          "console=ttyS0 quiet rvtest.image=uefi"
#   OUTDIR/bios.raw        MBR disk, signature in bios.ptuuid; syslinux's mbr.bin; one active
#                          FAT16 partition (label RVTEST-BOOT) from 4 MiB to the end with
#                          syslinux (installed with --offset), VMLINUZ, INITRD.GZ and
#                          SYSLINUX.CFG: "console=ttyS0 quiet rvtest.image=bios", no prompt
#   OUTDIR/zero.raw        all zeros, the same size: an image that boots under no firmware
#   OUTDIR/*.qcow2         each .raw converted to qcow2 (what rescuevm's vm.image takes)
#   OUTDIR/uefi.ptuuid, uefi.partuuid, bios.ptuuid   fixed identities, as blkid shows them
#                          (PTUUID, PARTUUID): tests check which disk booted and can copy one
#                          onto a passed disk to make a collision on purpose
#   OUTDIR/images.stamp    what the images were made from (decides "up to date")
# Every image is IMAGE_MIB MiB (sparse), and keeps bytes 1-4 MiB free for what tests write
# there: marker (1 MiB), boot counter (2 MiB) and params block (3 MiB, see tests/guest/init);
# "RVTEST-IMAGE uefi|bios" at 512 KiB tells the guest which disk is an image.
# Needs: systemd-boot-efi, binutils (objcopy), gdisk (sgdisk), fdisk (sfdisk), mtools, syslinux,
# syslinux-common, qemu-utils (qemu-img), plus what build-guest.sh needs (all in scripts/setup).
set -euo pipefail

die() { echo "build-images.sh: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: build-images.sh OUTDIR"
out=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

IMAGE_MIB=32
PART_START=$((4 * 1048576))                         # partitions start at 4 MiB
UEFI_DISK_GUID=7e5c0e11-4f1d-4b3a-9c2e-52565445f100
UEFI_ESP_GUID=7e5c0e11-4f1d-4b3a-9c2e-52565445f101
BIOS_MBR_SIG=52564231                               # "RVB1"
STAMP_OFFSET=$((512 * 1024))

stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
mbr_bin=/usr/lib/syslinux/mbr/mbr.bin
gptmbr_bin=/usr/lib/syslinux/mbr/gptmbr.bin
[[ -r $stub ]] || die "$stub not found: install systemd-boot-efi (scripts/setup)"
[[ -r $mbr_bin && -r $gptmbr_bin ]] || die "$mbr_bin not found: install syslinux-common (scripts/setup)"
for tool in objcopy objdump sgdisk sfdisk mformat mcopy mmd syslinux qemu-img; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/setup as root"
done

"$here/build-guest.sh" "$out" || die "building the guest (build-guest.sh $out) failed"

stamp=$(
  {
    cat "$out/stamp"                                       # kernel and initramfs
    sha256sum <"${BASH_SOURCE[0]}"
    stat -Lc '%n %s %Y' "$stub" "$mbr_bin" "$gptmbr_bin" "$(command -v syslinux)"
  } | sha256sum | cut -d' ' -f1
)
exec 8>"$out/.images.lock"
flock 8
names=(bootx64.efi uefi.raw uefi.qcow2 uefi.ptuuid uefi.partuuid bios.raw bios.qcow2 bios.ptuuid zero.raw zero.qcow2)
up_to_date=1
for f in "${names[@]}"; do [[ -f $out/$f ]] || up_to_date=0; done
if ((up_to_date)) && [[ -f $out/images.stamp && $(cat "$out/images.stamp") == "$stamp" ]]; then
  exit 0
fi

t0=$SECONDS
work=$(mktemp -d "$out/.images.XXXXXX")
trap 'rm -rf "$work"' EXIT
size=$((IMAGE_MIB * 1048576))

# --- unified kernel image -----------------------------------------------------------------
# Sections go after the stub's last one, each at a 4 KiB-aligned address (the stub's image
# base is 0, so objdump's VMA is the RVA the stub looks the sections up by).
align() { echo $((($1 + 4095) / 4096 * 4096)); }
stub_end=0
while read -r idx _ size_hex vma_hex _; do
  [[ $idx =~ ^[0-9]+$ ]] || continue
  end=$((0x$vma_hex + 0x$size_hex))
  ((end > stub_end)) && stub_end=$end
done < <(objdump -h "$stub")
((stub_end > 0)) || die "could not read the section table of $stub"
kver=$(cat "$out/kernel-version")
printf '%s\n' 'ID=rvtest' 'NAME="rescuevm test guest"' "VERSION_ID=1" \
  "PRETTY_NAME=\"rescuevm test guest (kernel $kver)\"" >"$work/osrel"
printf 'console=ttyS0 quiet rvtest.image=uefi' >"$work/cmdline"
args=()
addr=$stub_end
for section in osrel:"$work/osrel" cmdline:"$work/cmdline" linux:"$out/vmlinuz" initrd:"$out/initramfs.cpio.gz"; do
  name=${section%%:*} file=${section#*:}
  addr=$(align "$addr")
  args+=(--add-section ".$name=$file" --change-section-vma ".$name=$(printf '0x%x' "$addr")")
  addr=$((addr + $(stat -c %s "$file")))
done
objcopy "${args[@]}" "$stub" "$work/bootx64.efi" || die "objcopy could not build the unified kernel image"

# --- shared helpers -----------------------------------------------------------------------
# new_fat IMAGE OFFSET SECTORS LABEL SERIAL: a FAT file system inside IMAGE at byte OFFSET
# (hidden sectors = its start, as a boot sector inside a partition needs).
new_fat() {
  mformat -i "$1@@$2" -T "$3" -h 64 -s 32 -H $(($2 / 512)) -N "$5" -v "$4" :: \
    || die "mformat failed on $1"
}
# put IMAGE OFFSET FILE DEST: copies FILE into the file system (fails when it is full).
put() { mcopy -o -i "$1@@$2" "$3" "::$4" || die "mcopy $3 to $1 failed (image full? raise IMAGE_MIB)"; }
stamp_image() {   # stamp_image IMAGE NAME
  printf 'RVTEST-IMAGE %s\n' "$2" | dd of="$1" bs=1 seek=$STAMP_OFFSET conv=notrunc status=none
}

# --- uefi.raw -----------------------------------------------------------------------------
img=$work/uefi.raw
truncate -s "$size" "$img"
sgdisk -o -U "$UEFI_DISK_GUID" -n "1:$((PART_START / 512)):-1M" -t 1:ef00 -c 1:ESP -u "1:$UEFI_ESP_GUID" "$img" \
  >/dev/null || die "sgdisk could not partition $img"
first=$(sgdisk -i 1 "$img" | awk '/^First sector/ { print $3 }')
last=$(sgdisk -i 1 "$img" | awk '/^Last sector/ { print $3 }')
[[ $first == $((PART_START / 512)) ]] || die "the ESP starts at sector $first, not $((PART_START / 512))"
dd if="$gptmbr_bin" of="$img" bs=440 count=1 conv=notrunc status=none
new_fat "$img" "$PART_START" $((last - first + 1)) RVTEST-ESP 52564546
mmd -i "$img@@$PART_START" ::/EFI ::/EFI/BOOT || die "mmd failed on $img"
put "$img" "$PART_START" "$work/bootx64.efi" /EFI/BOOT/BOOTX64.EFI
stamp_image "$img" uefi
echo "$UEFI_DISK_GUID" >"$work/uefi.ptuuid"
echo "$UEFI_ESP_GUID" >"$work/uefi.partuuid"

# --- bios.raw -----------------------------------------------------------------------------
img=$work/bios.raw
truncate -s "$size" "$img"
printf 'label: dos\nlabel-id: 0x%s\nunit: sectors\n\n%d,,e,*\n' "$BIOS_MBR_SIG" $((PART_START / 512)) \
  | sfdisk -q "$img" >/dev/null || die "sfdisk could not partition $img"
dd if="$mbr_bin" of="$img" bs=440 count=1 conv=notrunc status=none
new_fat "$img" "$PART_START" $(((size - PART_START) / 512)) RVTEST-BOOT 52564231
cat >"$work/syslinux.cfg" <<EOF
DEFAULT rvtest
PROMPT 0
TIMEOUT 0
LABEL rvtest
  KERNEL /VMLINUZ
  INITRD /INITRD.GZ
  APPEND console=ttyS0 quiet rvtest.image=bios
EOF
put "$img" "$PART_START" "$out/vmlinuz" /VMLINUZ
put "$img" "$PART_START" "$out/initramfs.cpio.gz" /INITRD.GZ
put "$img" "$PART_START" "$work/syslinux.cfg" /SYSLINUX.CFG
syslinux --offset "$PART_START" --install "$img" || die "syslinux could not install into $img"
stamp_image "$img" bios
echo "$BIOS_MBR_SIG" >"$work/bios.ptuuid"

# --- zero.raw -----------------------------------------------------------------------------
truncate -s "$size" "$work/zero.raw"

# --- checks: what blkid sees is what the .ptuuid files say --------------------------------
if command -v blkid >/dev/null; then
  got=$(blkid -p -o value -s PTUUID "$work/uefi.raw" || true)
  [[ $got == "$UEFI_DISK_GUID" ]] || die "uefi.raw: blkid PTUUID is '$got', want $UEFI_DISK_GUID"
  got=$(blkid -p -o value -s PTUUID "$work/bios.raw" || true)
  [[ $got == "$BIOS_MBR_SIG" ]] || die "bios.raw: blkid PTUUID is '$got', want $BIOS_MBR_SIG"
fi

for name in uefi bios zero; do
  qemu-img convert -O qcow2 "$work/$name.raw" "$work/$name.qcow2" || die "qemu-img could not convert $name.raw"
done
for f in "${names[@]}"; do
  mv -f "$work/$f" "$out/$f"
done
echo "$stamp" >"$out/images.stamp"
echo "build-images.sh: built $out/{uefi,bios,zero}.{raw,qcow2} (${IMAGE_MIB} MiB each, UKI $(($(stat -c %s "$out/bootx64.efi") / 1024)) KiB) in $((SECONDS - t0)) s" >&2
