#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Disk identity guard on real loop disks: record, detect a changed signature/GUID, restore it exactly.
#
# Usage (root): tests/integration/signatures_restore.sh   (meson: meson test -C BUILD signatures_restore)
# Drives the library through tests/integration/identity_driver (no agent, no VM: the changes are
# made with dd and sgdisk as stand-ins for Windows; the guest-driven version belongs to the agent).
#  A. MBR disk: the 4 bytes at 0x1B8 are rewritten; the change is reported in one line with both
#     values and the restore command; the restore brings back blkid's PTUUID and the whole disk
#     is byte-identical to before the change; a second restore writes nothing.
#  B. GPT disk: disk GUID changed with sgdisk -U R, then partition GUIDs with sgdisk -u N:R;
#     each is detected and restored (blkid PTUUID, sgdisk -i), sgdisk -v finds no problem, and
#     the disk is byte-identical to before the change.
#  C. 4Kn GPT disk (losetup --sector-size 4096): the same, through O_DIRECT with 4 KiB blocks.
#  D. Refusals: a disk whose MBR table was replaced by a GPT or wiped is not written to, and the
#     message says what to do; a disk with a mounted partition is not written to (O_EXCL).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

rv_require losetup sfdisk sgdisk blkid wipefs cmp dd partx mkfs.ext4 mount umount

DRIVER=${IDENTITY_DRIVER:-${BUILD_ROOT:?BUILD_ROOT not set}/tests/integration/identity_driver}
[[ -x $DRIVER ]] || rv_fail "$DRIVER not built (ninja -C BUILD tests/integration/identity_driver)"

tmp=$(rv_tmpdir)

# snapshot DEV FILE: the whole device, read around the page cache.
snapshot() { dd if="$1" of="$2" bs=1M iflag=direct status=none; }

# same_disk DEV FILE WHAT: the device is byte-identical to the snapshot.
same_disk() {
  snapshot "$1" "$tmp/now.bin"
  cmp -s "$tmp/now.bin" "$2" || rv_fail "$3: disk differs from before: $(cmp -l "$tmp/now.bin" "$2" | head -5 | tr '\n' ' ')"
}

# fill_partitions DEV: recognisable data in the disk, so byte-identity means something.
fill_partitions() { dd if=/dev/urandom of="$1" bs=1M seek=2 count=8 oflag=direct status=none; }

ptuuid() { blkid -p -o value -s PTUUID "$1" || true; }
part_guid() { sgdisk -i "$2" "$1" | awk '/Partition unique GUID/ {print tolower($4)}'; }

# expect_change REC DEV PATTERN...: check reports a change (exit 10) with every PATTERN in it.
expect_change() {
  local rec=$1 out rc=0
  shift
  out=$("$DRIVER" check "$rec") || rc=$?
  [[ $rc -eq 10 ]] || rv_fail "check should report a change (exit 10), exit $rc: $out"
  local p
  for p in "$@"; do
    grep -qiF -- "$p" <<<"$out" || rv_fail "change report lacks '$p': $out"
  done
  rv_log "reported: $out"
}

expect_no_change() {
  local out rc=0
  out=$("$DRIVER" check "$1") || rc=$?
  [[ $rc -eq 0 && -z $out ]] || rv_fail "check should report nothing (exit 0), exit $rc: $out"
}

restore_ok() {
  local out
  out=$("$DRIVER" restore "$1" 2>"$tmp/restore.err") || rv_fail "restore failed: $(cat "$tmp/restore.err")"
  rv_log "restore: $(tr '\n' ' ' <<<"$out")"
  echo "$out"
}

# ------------------------------------------------------------------------- A: MBR
mbr=$(rv_loop_disk 64M)
name=$(basename "$mbr")
printf 'label: dos\nlabel-id: 0x1234abcd\n2048,16384,7\n,16384,83\n' | sfdisk -q "$mbr"
fill_partitions "$mbr"
[[ $(ptuuid "$mbr") == 1234abcd ]] || rv_fail "sfdisk did not set the MBR signature"
"$DRIVER" record "$tmp/mbr.json" "$mbr"
[[ $(stat -c %a "$tmp/mbr.json") == 600 ]] || rv_fail "record file is not 0600"
expect_no_change "$tmp/mbr.json"
snapshot "$mbr" "$tmp/mbr-before.bin"

printf '\x6c\x7d\x8e\x9f' | dd of="$mbr" bs=1 seek=$((0x1B8)) conv=notrunc,fsync status=none
[[ $(ptuuid "$mbr") == 9f8e7d6c ]] || rv_fail "dd did not change the signature"
expect_change "$tmp/mbr.json" "$name" "MBR disk signature" 1234abcd 9f8e7d6c 0xc000000e \
  "rescuevm signatures restore $name"

out=$(restore_ok "$tmp/mbr.json")
grep -q "$name: written" <<<"$out" || rv_fail "restore did not write: $out"
[[ $(ptuuid "$mbr") == 1234abcd ]] || rv_fail "PTUUID after restore is $(ptuuid "$mbr"), want 1234abcd"
same_disk "$mbr" "$tmp/mbr-before.bin" "MBR restore"
expect_no_change "$tmp/mbr.json"
out=$(restore_ok "$tmp/mbr.json")
grep -q "$name: nothing written" <<<"$out" || rv_fail "second restore should write nothing: $out"
same_disk "$mbr" "$tmp/mbr-before.bin" "second MBR restore"
rv_pass "MBR signature change detected and restored; disk byte-identical"

# ------------------------------------------------------------------------- B, C: GPT
# gpt_case SECTOR_SIZE: B (512) or C (4096).
gpt_case() {
  local sector=$1 dev name rec orig p1 p2 out
  dev=$(rv_loop_disk 64M "$sector")
  name=$(basename "$dev")
  rec="$tmp/gpt-$sector.json"
  sgdisk -o -n 1:0:+16M -t 1:0700 -n 2:0:+16M -t 2:8300 "$dev" >/dev/null
  fill_partitions "$dev"
  [[ $(blockdev --getss "$dev") == "$sector" ]] || rv_fail "loop disk is not $sector-byte"
  "$DRIVER" record "$rec" "$dev"
  orig=$(ptuuid "$dev")
  p1=$(part_guid "$dev" 1)
  p2=$(part_guid "$dev" 2)
  grep -q "\"$orig\"" "$rec" || rv_fail "recorded disk GUID differs from blkid's $orig: $(cat "$rec")"
  grep -q "\"$p1\"" "$rec" || rv_fail "recorded partition GUID differs from sgdisk's $p1"
  expect_no_change "$rec"
  snapshot "$dev" "$tmp/gpt-before.bin"

  sgdisk -U R "$dev" >/dev/null
  [[ $(ptuuid "$dev") != "$orig" ]] || rv_fail "sgdisk -U R did not change the disk GUID"
  expect_change "$rec" "$name" "GPT disk GUID" "$orig" "$(ptuuid "$dev")" \
    "rescuevm signatures restore $name"
  out=$(restore_ok "$rec")
  grep -q "$name: written" <<<"$out" || rv_fail "restore did not write: $out"
  [[ $(ptuuid "$dev") == "$orig" ]] || rv_fail "PTUUID after restore is $(ptuuid "$dev"), want $orig"
  sgdisk -v "$dev" | grep -q "No problems found" || rv_fail "sgdisk -v after restore: $(sgdisk -v "$dev")"
  same_disk "$dev" "$tmp/gpt-before.bin" "GPT disk GUID restore ($sector)"
  expect_no_change "$rec"

  sgdisk -u 1:R -u 2:R "$dev" >/dev/null
  [[ $(part_guid "$dev" 1) != "$p1" ]] || rv_fail "sgdisk -u did not change partition 1"
  expect_change "$rec" "GPT partition 1 GUID" "GPT partition 2 GUID" "$p1" "$p2"
  restore_ok "$rec" >/dev/null
  [[ $(part_guid "$dev" 1) == "$p1" && $(part_guid "$dev" 2) == "$p2" ]] \
    || rv_fail "partition GUIDs after restore: $(part_guid "$dev" 1) $(part_guid "$dev" 2), want $p1 $p2"
  [[ $(ptuuid "$dev") == "$orig" ]] || rv_fail "partition restore changed the disk GUID"
  sgdisk -v "$dev" | grep -q "No problems found" || rv_fail "sgdisk -v after restore: $(sgdisk -v "$dev")"
  same_disk "$dev" "$tmp/gpt-before.bin" "GPT partition GUID restore ($sector)"
  expect_no_change "$rec"
}

gpt_case 512
rv_pass "GPT disk and partition GUID changes detected and restored; sgdisk -v clean; disk byte-identical"
gpt_case 4096
rv_pass "4Kn GPT disk: same, with 4096-byte O_DIRECT reads"

# ------------------------------------------------------------------------- D: refusals
ref=$(rv_loop_disk 64M)
printf 'label: dos\nlabel-id: 0x0badcafe\n2048,16384,7\n' | sfdisk -q "$ref"
"$DRIVER" record "$tmp/ref.json" "$ref"

wipefs -q -a "$ref"                  # as if the disk had been re-initialised as GPT
sgdisk -o -n 1:0:+16M "$ref" >/dev/null
snapshot "$ref" "$tmp/ref-gpt.bin"
if "$DRIVER" restore "$tmp/ref.json" >"$tmp/out" 2>"$tmp/err"; then
  rv_fail "restore onto a disk that became GPT should be refused: $(cat "$tmp/out")"
fi
grep -q "was dos when recorded and is gpt now" "$tmp/err" || rv_fail "refusal does not say what changed: $(cat "$tmp/err")"
grep -q "never creates or converts" "$tmp/err" || rv_fail "refusal does not say what to do: $(cat "$tmp/err")"
same_disk "$ref" "$tmp/ref-gpt.bin" "refused restore (gpt)"
expect_change "$tmp/ref.json" "partition table changed from dos to gpt"

wipefs -q -a "$ref"
snapshot "$ref" "$tmp/ref-none.bin"
if "$DRIVER" restore "$tmp/ref.json" >"$tmp/out" 2>"$tmp/err"; then
  rv_fail "restore onto a wiped disk should be refused: $(cat "$tmp/out")"
fi
grep -q "is none now" "$tmp/err" || rv_fail "refusal does not say the table is gone: $(cat "$tmp/err")"
same_disk "$ref" "$tmp/ref-none.bin" "refused restore (none)"
rv_pass "restore refuses a disk whose partition table changed or disappeared, and writes nothing"

busy=$(rv_loop_disk 64M)
printf 'label: dos\nlabel-id: 0x0ddba11a\n2048,32768,83\n' | sfdisk -q "$busy"
partx -u "$busy"
mkfs.ext4 -q "${busy}p1"
"$DRIVER" record "$tmp/busy.json" "$busy"
printf '\x01\x02\x03\x04' | dd of="$busy" bs=1 seek=$((0x1B8)) conv=notrunc,fsync status=none
mkdir "$tmp/mnt"
mount -o ro "${busy}p1" "$tmp/mnt"
rv_cleanup_add umount "$tmp/mnt"
if "$DRIVER" restore "$tmp/busy.json" >"$tmp/out" 2>"$tmp/err"; then
  rv_fail "restore onto a disk with a mounted partition should be refused: $(cat "$tmp/out")"
fi
grep -q "in use" "$tmp/err" || rv_fail "refusal does not say the disk is in use: $(cat "$tmp/err")"
[[ $(ptuuid "$busy") == 04030201 ]] || rv_fail "refused restore changed the signature to $(ptuuid "$busy")"
umount "$tmp/mnt"
restore_ok "$tmp/busy.json" >/dev/null
[[ $(ptuuid "$busy") == 0ddba11a ]] || rv_fail "restore after unmount gave $(ptuuid "$busy")"
rv_pass "restore refuses a disk with a mounted partition, and works once it is unmounted"
