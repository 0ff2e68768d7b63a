#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Proves the test guest's firmware-bootable images boot from the image through OVMF and SeaBIOS, and the zeroed image boots under neither.
#
# Usage (root): tests/integration/guest_images.sh   (meson: meson test -C BUILD guest_images)
# Builds the images (tests/guest/build-images.sh), checks their fixed identities with blkid,
# then boots them with plain QEMU the way rescuevm does (rv_qemu_boot_image: q35, TCG, OVMF
# pflash with a per-run variable store copy, image read-only under a qcow2 overlay with
# bootindex=0). Beside the image sits a DECOY: a loop disk holding a bootable copy of the same
# image with a new identity, at a lower PCI address than the image (so without bootindex the
# firmware would pick it), carrying the params block and a marker.
#  U. uefi.qcow2 on virtio-blk under OVMF: the guest reports efi=yes, kernel=image, the boot disk
#     found through LoaderDevicePartUUID is the image (its GPT GUID, not the decoy's), it applies
#     the decoy's params block (boot counter on the decoy, one reboot, then poweroff), and the
#     reboot boots the image again (two boot ids, RVBOOT 2 on the decoy).
#  B. bios.qcow2 on sata (AHCI port 0) under SeaBIOS: the same with efi=no and the boot disk found
#     through EDD (MBR signature of BIOS drive 0x80).
#  N. negative control: bios.qcow2 with bootindex=1 and the decoy with bootindex=0: the guest
#     reports the decoy as its boot disk, so U and B could have failed.
#  Z. zero.qcow2 (with a bootable decoy beside it) under OVMF: no RVTEST line; OVMF's boot
#     manager reports the failed load and starts the UEFI shell, on the serial console. Under
#     SeaBIOS: no RVTEST line; SeaBIOS says "No bootable device." on its debug console (and,
#     with its serial console enabled through fw_cfg etc/sercon-port, on the serial console too);
#     neither firmware falls back to the bootable decoy. What each printed is logged.
# The image files are byte-identical afterwards (every write went to the overlays).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

rv_require qemu-system-x86_64 qemu-img qemu-io losetup sgdisk sfdisk blkid python3 sha256sum

BOOT_TIMEOUT=240   # one OVMF boot under TCG on a loaded 2-core machine; a quiet one needs ~25 s

tmp=$(rv_tmpdir)
dir=$(rv_guest_images)

# ---------------------------------------------------------------- the files and their identities
for f in uefi.raw uefi.qcow2 bios.raw bios.qcow2 zero.raw zero.qcow2 uefi.ptuuid uefi.partuuid bios.ptuuid; do
  [[ -s $dir/$f ]] || rv_fail "the image build did not produce $dir/$f"
done
uefi_id=$(cat "$dir/uefi.ptuuid") uefi_part=$(cat "$dir/uefi.partuuid") bios_id=$(cat "$dir/bios.ptuuid")
[[ $(blkid -p -o value -s PTUUID "$dir/uefi.raw") == "$uefi_id" ]] || rv_fail "uefi.raw's GPT GUID is not uefi.ptuuid ($uefi_id)"
[[ $(blkid -p -o value -s PTTYPE "$dir/uefi.raw") == gpt ]] || rv_fail "uefi.raw has no GPT"
sgdisk -i 1 "$dir/uefi.raw" | grep -qi "unique GUID: $uefi_part" || rv_fail "uefi.raw's ESP is not uefi.partuuid ($uefi_part)"
[[ $(blkid -p -o value -s PTUUID "$dir/bios.raw") == "$bios_id" ]] || rv_fail "bios.raw's MBR signature is not bios.ptuuid ($bios_id)"
[[ $(blkid -p -o value -s PTTYPE "$dir/bios.raw") == dos ]] || rv_fail "bios.raw has no MBR partition table"
size=$(stat -c %s "$dir/uefi.raw")
for name in uefi bios zero; do
  [[ $(stat -c %s "$dir/$name.raw") == "$size" ]] || rv_fail "$name.raw is not $size bytes like uefi.raw"
  qemu-img info --output=json "$dir/$name.qcow2" | grep -q "\"virtual-size\": $size," \
    || rv_fail "$name.qcow2 is not a qcow2 of $size bytes"
done
[[ $(tr -d '\0' <"$dir/zero.raw" | wc -c) == 0 ]] || rv_fail "zero.raw is not all zeros"
declare -A sums
for f in uefi.qcow2 bios.qcow2 zero.qcow2; do sums[$f]=$(rv_sha256 "$dir/$f"); done
rv_log "images: $((size / 1048576)) MiB each; uefi $uefi_id, bios $bios_id"

# expect_line PATTERN FILE [COUNT]: FILE has at least COUNT (default 1) lines matching.
expect_line() {
  local n
  n=$(rv_count "$1" "$2")
  ((n >= ${3:-1})) || rv_fail "expected ${3:-1} line(s) matching '$1' in $2, found $n; RVTEST lines: $(grep -a '^RVTEST' "$2" | tr '\n' '|')"
}
rvtest_lines() { grep -a '^RVTEST' "$1" | tr '\n' '|'; }

# make_decoy KIND: a loop disk holding a bootable copy of KIND.raw with a new identity, a marker
# at 1 MiB and the params block; echoes "DEVICE PTUUID".
make_decoy() {
  local kind=$1 dev id
  dev=$(rv_loop_disk "$size")
  dd if="$dir/$kind.raw" of="$dev" bs=1M conv=fsync status=none
  if [[ $kind == uefi ]]; then
    sgdisk -G "$dev" >/dev/null || rv_fail "sgdisk -G $dev failed"
  else
    sfdisk -q --disk-id "$dev" 0x0badd15c || rv_fail "sfdisk --disk-id $dev failed"
  fi
  blockdev --flushbufs "$dev"
  id=$(blkid -p -o value -s PTUUID "$dev")
  [[ -n $id && $id != "$uefi_id" && $id != "$bios_id" ]] || rv_fail "the decoy on $dev kept the image's identity ($id)"
  printf 'RVIMG-DECOY-MARKER\n' | dd of="$dev" bs=4096 seek=256 count=1 conv=sync,notrunc,fsync status=none
  rv_params_block "$dev" rvtest.read_marker=1 rvtest.boot_counter=RV-DECOY rvtest.reboots=1 rvtest.final=poweroff
  echo "$dev $id"
}
decoy_args() {   # decoy_args DEVICE [EXTRA_PROPS]: the decoy at PCI 00:03.0, before the image's 00:10.0
  echo "-blockdev driver=host_device,filename=$1,node-name=decoy,cache.direct=on,aio=native" \
    "-device virtio-blk-pci,id=decoy,drive=decoy,serial=RV-DECOY,addr=0x3${2:-}"
}

# boot_twice FW IMAGE BUS IMGNAME VIA: boots with the decoy, waits for the guest's poweroff after
# one reboot, checks every boot came from the image (kernel name IMGNAME).
boot_twice() {
  local fw=$1 image=$2 bus=$3 imgname=$4 via=$5 run=$tmp/$1 dev decoy_id log t0 id efi
  read -r dev decoy_id < <(make_decoy "$fw")
  [[ -b $dev && -n $decoy_id ]] || rv_fail "$fw: could not make the decoy disk"
  if [[ $fw == uefi ]]; then id=$uefi_id efi=yes; else id=$bios_id efi=no; fi
  t0=$SECONDS
  # shellcheck disable=SC2046 # decoy_args is a list of words
  RV_IMAGE_PCI_PROPS=,addr=0x10 rv_qemu_boot_image "$run" "$fw" "$image" "$bus" $(decoy_args "$dev")
  rv_wait_for '"event":"SHUTDOWN","data":\{"guest":true,"reason":"guest-shutdown"' "$run/events.jsonl" $((2 * BOOT_TIMEOUT)) \
    || rv_fail "$fw: no guest poweroff after two boots; RVTEST lines: $(rvtest_lines "$run/serial.log")"
  log=$run/serial.log
  (($(rv_count '^RVTEST boot ' "$log") == 2)) || rv_fail "$fw: expected 2 boots: $(rvtest_lines "$log")"
  expect_line "^RVTEST firmware efi=$efi kernel=image image=$fw$" "$log" 2
  expect_line "^RVTEST params disk=vda text=rvtest.read_marker=1_rvtest.boot_counter=RV-DECOY_rvtest.reboots=1_rvtest.final=poweroff$" "$log" 2
  expect_line "^RVTEST disk name=vda size_bytes=$size .* serial=RV-DECOY .*ptuuid=$decoy_id$" "$log" 2
  expect_line "^RVTEST disk name=$imgname size_bytes=$size .*ptuuid=$id$" "$log" 2
  expect_line "^RVTEST bootdisk name=$imgname ptuuid=$id via=$via candidates=1$" "$log" 2
  expect_line '^RVTEST marker name=vda text=RVIMG-DECOY-MARKER$' "$log" 2
  expect_line '^RVTEST boots n=1 disk=vda$' "$log"
  expect_line '^RVTEST boots n=2 disk=vda$' "$log"
  expect_line '^RVTEST rebooting n=1$' "$log"
  expect_line '^RVTEST poweroff$' "$log"
  (($(rv_count '^RVTEST error' "$log") == 0)) || rv_fail "$fw: guest reported errors: $(grep -a '^RVTEST error' "$log")"
  (($(tr -d '\r' <"$log" | sed -n 's/^RVTEST boot boot_id=\([^ ]*\) .*/\1/p' | sort -u | wc -l) == 2)) \
    || rv_fail "$fw: the two boots have the same boot_id"
  (($(rv_count '"event":"RESET","data":\{"guest":true' "$run/events.jsonl") >= 1)) || rv_fail "$fw: no guest RESET event"
  rv_qemu_stop "$run" || rv_fail "$fw: QEMU exited with status $? on quit"
  blockdev --flushbufs "$dev"
  [[ $(dd if="$dev" bs=512 skip=4096 count=1 status=none | tr '\0' '\n' | head -n 1) == "RVBOOT 2" ]] \
    || rv_fail "$fw: the decoy's boot counter is not RVBOOT 2"
  rv_log "$fw ok: image on $bus booted twice (reboot) in $((SECONDS - t0)) s, boot disk $imgname via $via, params from the decoy"
}

# ---------------------------------------------------------------- U and B
boot_twice uefi "$dir/uefi.qcow2" virtio-blk vdb efi-loader
boot_twice bios "$dir/bios.qcow2" sata sda edd

# ---------------------------------------------------------------- N: the decoy first in boot order
run=$tmp/negative
read -r dev decoy_id < <(make_decoy bios)
[[ -b $dev && -n $decoy_id ]] || rv_fail "negative control: could not make the decoy disk"
rv_params_block "$dev" rvtest.final=poweroff
# shellcheck disable=SC2046
RV_IMAGE_BOOTINDEX=1 RV_IMAGE_PCI_PROPS=,addr=0x10 rv_qemu_boot_image "$run" bios "$dir/bios.qcow2" virtio-blk \
  $(decoy_args "$dev" ,bootindex=0)
rv_wait_for '"event":"SHUTDOWN","data":\{"guest":true,"reason":"guest-shutdown"' "$run/events.jsonl" "$BOOT_TIMEOUT" \
  || rv_fail "negative control: no guest poweroff; RVTEST lines: $(rvtest_lines "$run/serial.log")"
expect_line "^RVTEST bootdisk name=vda ptuuid=$decoy_id via=edd candidates=1$" "$run/serial.log"
rv_qemu_stop "$run" || true
rv_log "negative control ok: with bootindex=0 on the decoy, the guest reports the decoy ($decoy_id) as boot disk"

# ---------------------------------------------------------------- Z: the zeroed image
# strip_escapes FILE: printable text of a console log (ANSI sequences and CRs removed).
strip_escapes() { tr -d '\r' <"$1" | sed -e 's/\x1b\[[0-9;=?]*[A-Za-z]//g' -e 's/\x1b[c78]//g' | tr -cd '\n -~'; }

run=$tmp/zero-uefi
read -r dev _ < <(make_decoy uefi)
[[ -b $dev ]] || rv_fail "zero/uefi: could not make the decoy disk"
t0=$SECONDS
# shellcheck disable=SC2046
RV_IMAGE_PCI_PROPS=,addr=0x10 rv_qemu_boot_image "$run" uefi "$dir/zero.qcow2" virtio-blk $(decoy_args "$dev")
# The shell then counts 5 s down for startup.nsh and shows "Shell> " (README); no need to wait.
rv_wait_for 'UEFI Interactive Shell' "$run/serial.log" "$BOOT_TIMEOUT" \
  || rv_fail "zero/uefi: OVMF did not start its shell; serial: $(strip_escapes "$run/serial.log" | tr '\n' '|')"
took=$((SECONDS - t0))
sleep 2
(($(rv_count 'RVTEST' "$run/serial.log") == 0)) || rv_fail "zero/uefi: something booted: $(rvtest_lines "$run/serial.log")"
expect_line 'BdsDxe: failed to load Boot[0-9A-F]{4} .*PciRoot\(0x0\)/Pci\(0x10,0x0\): Not Found' "$run/serial.log"
expect_line 'BdsDxe: (loading|starting) Boot[0-9A-F]{4} "EFI Internal Shell"' "$run/serial.log"
if grep -a -q 'Pci(0x3,0x0)' "$run/serial.log"; then
  rv_fail "zero/uefi: OVMF looked at the decoy (PCI 00:03.0): $(strip_escapes "$run/serial.log" | tr '\n' '|')"
fi
rv_log "zero/uefi: OVMF started its shell after ${took} s; serial console (escapes stripped):"
strip_escapes "$run/serial.log" | sed 's/^/    | /' | awk '!seen[$0]++' >&2
rv_qemu_stop "$run" || true

run=$tmp/zero-bios
read -r dev _ < <(make_decoy bios)
[[ -b $dev ]] || rv_fail "zero/bios: could not make the decoy disk"
t0=$SECONDS
# shellcheck disable=SC2046
RV_IMAGE_PCI_PROPS=,addr=0x10 rv_qemu_boot_image "$run" bios "$dir/zero.qcow2" virtio-blk $(decoy_args "$dev")
rv_wait_for '^No bootable device' "$run/debugcon.log" 60 \
  || rv_fail "zero/bios: SeaBIOS did not give up; debugcon: $(tail -n 5 "$run/debugcon.log" | tr '\n' '|')"
took=$((SECONDS - t0))
sleep 3
(($(rv_count 'RVTEST' "$run/serial.log") == 0)) || rv_fail "zero/bios: something booted: $(rvtest_lines "$run/serial.log")"
expect_line '^Boot failed: not a bootable disk' "$run/debugcon.log"
(($(rv_count '^Booting from 0000:7c00' "$run/debugcon.log") == 0)) || rv_fail "zero/bios: SeaBIOS ran a boot sector (the decoy's?)"
serial_bytes=$(stat -c %s "$run/serial.log" 2>/dev/null || echo 0)
rv_log "zero/bios: SeaBIOS gave up after ${took} s; serial console: $serial_bytes bytes; debug console (boot part):"
grep -a -E '^(Booting|Boot failed|No bootable)' "$run/debugcon.log" | sed 's/^/    | /' >&2
rv_qemu_stop "$run" || true

# With SeaBIOS's serial console on (fw_cfg etc/sercon-port = 0x3f8), the same reaches serial.log.
run=$tmp/zero-bios-sercon
printf '\xf8\x03\x00\x00' >"$tmp/sercon-port"
rv_qemu_boot_image "$run" bios "$dir/zero.qcow2" virtio-blk -fw_cfg "name=etc/sercon-port,file=$tmp/sercon-port"
rv_wait_for 'No bootable device' "$run/serial.log" 60 \
  || rv_fail "zero/bios with sercon: nothing on the serial console: $(strip_escapes "$run/serial.log" 2>/dev/null | tr '\n' '|')"
rv_log "zero/bios with etc/sercon-port: serial console (escapes stripped):"
strip_escapes "$run/serial.log" | sed 's/^/    | /' >&2
rv_qemu_stop "$run" || true

for f in uefi.qcow2 bios.qcow2 zero.qcow2; do
  [[ $(rv_sha256 "$dir/$f") == "${sums[$f]}" ]] || rv_fail "the image $f changed although it was opened read-only under an overlay"
done

rv_pass "images: UEFI (OVMF, virtio-blk) and BIOS (SeaBIOS, sata) boot from the image and reboot into it, never from a bootable decoy at a lower PCI address; efi=yes/no; params from a disk; negative control boots the decoy; the zeroed image boots under neither firmware, which do not fall back to the decoy"
