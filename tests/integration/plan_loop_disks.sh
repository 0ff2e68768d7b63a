#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Integration: `rescuevm plan --json` over four loop disks it makes: GPT+NTFS+BitLocker (512),
# 4Kn MBR, one with a mounted partition, one used as swap. Root; cleans up in a trap.
set -euo pipefail

: "${RESCUEVM:?RESCUEVM must point at the rescuevm binary}"
[[ $(id -u) -eq 0 ]] || { echo "FAIL: needs root (loop devices, mount, swapon)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/rescuevm-plan-loop.XXXXXX)
loops=()
mounted=""
swapdev=""
cleanup() {
    set +e
    [[ -n $swapdev ]] && swapoff "$swapdev"
    [[ -n $mounted ]] && umount "$mounted"
    for l in "${loops[@]}"; do losetup -d "$l"; done
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# new_loop FILE SIZE [losetup options...]: sets LOOP to a new loop device on FILE.
# (Not a $(...) function: the loops array must be updated in this shell for the trap.)
new_loop() {
    local file=$1 size=$2
    shift 2
    truncate -s "$size" "$file"
    LOOP=$(losetup --find --show "$@" "$file")
    loops+=("$LOOP")
}

# rescan DEV: make the kernel read DEV's new partition table. BLKRRPART (what
# sgdisk/sfdisk call) does not always take on a loop device here; BLKPG via partx does.
rescan() {
    partx -u "$1" 2>/dev/null || partx -a "$1"
}

# part_node DEV N: sets NODE to a block node of partition N of DEV: /dev's when
# devtmpfs made one (there is no udev), else one made in the temp dir from sysfs.
part_node() {
    local name=${1##*/}p$2
    local sys=/sys/block/${1##*/}/$name/dev
    [[ -r $sys ]] || fail "the kernel has no partition $name after rescanning $1"
    if [[ -b /dev/$name ]]; then
        NODE=/dev/$name
    else
        local mm
        mm=$(cat "$sys")
        mknod "$tmp/$name" b "${mm%:*}" "${mm#*:}"
        NODE=$tmp/$name
    fi
}

# (a) 512-byte sectors, GPT: ESP, Microsoft reserved, NTFS, and a BitLocker-looking
# basic data partition. (sgdisk -q writes nothing.)
new_loop "$tmp/a.img" 96M --partscan
a=$LOOP
sgdisk -n 1:2048:+8M -t 1:ef00 -n 2:0:+16M -t 2:0c01 -n 3:0:+56M -t 3:0700 -n 4:0:0 -t 4:0700 "$a" >/dev/null
rescan "$a"
part_node "$a" 3
mkntfs -Q -F -L rescuetest "$NODE" >/dev/null 2>&1 || fail "mkntfs on $NODE failed"
# BitLocker (Windows 7+) volume header: "-FVE-FS-" boot sector pointing at three
# FVE metadata blocks, which is what libblkid checks.
python3 - "$tmp/bde.bin" <<'PY'
import struct, sys
img = bytearray(4 << 20)
img[0:11] = b"\xeb\x58\x90-FVE-FS-"
img[11:13] = struct.pack("<H", 512)
offsets = (1 << 20, 2 << 20, 3 << 20)
img[176:200] = struct.pack("<QQQ", *offsets)
img[510:512] = b"\x55\xaa"
for o in offsets:
    img[o:o + 12] = b"-FVE-FS-" + struct.pack("<HH", 0, 2)
open(sys.argv[1], "wb").write(img)
PY
part_node "$a" 4
dd if="$tmp/bde.bin" of="$NODE" bs=1M conv=notrunc,fsync status=none

# (b) 4Kn, MBR: an NTFS-typed partition and a Windows dynamic (LDM, 0x42) one.
new_loop "$tmp/b.img" 64M --partscan --sector-size 4096
b=$LOOP
printf 'label: dos\n,8M,7\n,,42\n' | sfdisk -q "$b" >/dev/null 2>&1
rescan "$b"

# (c) a partition mounted under the temp dir, through a node that is not /dev/<name>
# when devtmpfs made none: rescuevm must match it by device number.
new_loop "$tmp/c.img" 32M --partscan
c=$LOOP
printf 'label: dos\n,,83\n' | sfdisk -q "$c" >/dev/null 2>&1
rescan "$c"
part_node "$c" 1
mkfs.ext4 -q -F "$NODE"
mkdir "$tmp/mnt"
mount "$NODE" "$tmp/mnt"
mounted="$tmp/mnt"

# (d) the whole device is active swap.
new_loop "$tmp/d.img" 32M
d=$LOOP
mkswap "$d" >/dev/null
swapon "$d"
swapdev=$d

na=${a##*/} nb=${b##*/} nc=${c##*/} nd=${d##*/}
ptuuid_a=$(blkid -p -o value -s PTUUID "$a")
ptuuid_b=$(blkid -p -o value -s PTUUID "$b")
[[ -n $ptuuid_a && -n $ptuuid_b ]] || fail "blkid -p reports no PTUUID on $a or $b"

kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[[ -n $kernel ]] || fail "no /boot/vmlinuz-* for direct kernel boot"
mkdir "$tmp/run"
cat > "$tmp/rescuevm.toml" <<TOML
[host]
min_memory = "256MiB"
[vm]
kernel = "$kernel"
accel = "tcg"
firmware = "bios"
memory = "512MiB"
cpus = 1
[disks]
match = ["$na", "$nb", "$nc", "$nd"]
[network]
mode = "none"
[paths]
runtime_dir = "$tmp/run"
TOML
: > "$tmp/cmdline"

set +e
"$RESCUEVM" plan --json --config "$tmp/rescuevm.toml" --kernel-cmdline "$tmp/cmdline" \
    > "$tmp/plan.json" 2> "$tmp/plan.log"
status=$?
"$RESCUEVM" disks --json --config "$tmp/rescuevm.toml" --kernel-cmdline "$tmp/cmdline" \
    > "$tmp/disks.json" 2> "$tmp/disks.log"
disks_status=$?
set -e
if [[ $status -ne 0 ]]; then
    cat "$tmp/plan.log" >&2
    python3 -c 'import json,sys; [print("check", c["name"], c["ok"], c["message"], file=sys.stderr) for c in json.load(open(sys.argv[1]))["checks"]]' "$tmp/plan.json" || true
    fail "rescuevm plan exited $status, expected 0 (ready) with this config"
fi
[[ $disks_status -eq 0 ]] || { cat "$tmp/disks.log" >&2; fail "rescuevm disks exited $disks_status"; }

python3 - "$tmp/plan.json" "$tmp/disks.json" "$na" "$nb" "$nc" "$nd" "$ptuuid_a" "$ptuuid_b" "$tmp/mnt" <<'PY'
import json, re, sys

plan_file, disks_file, na, nb, nc, nd, ptuuid_a, ptuuid_b, mnt = sys.argv[1:]
plan = json.load(open(plan_file))
inventory = json.load(open(disks_file))
problems = []

def check(cond, what):
    if not cond:
        problems.append(what)

def by_name(disks):
    return {d["name"]: d for d in disks}

disks = by_name(plan["disks"])
for n in (na, nb, nc, nd):
    check(n in disks, f"plan lists {n}")
if problems:
    sys.exit("FAIL: " + "; ".join(problems))
A, B, C, D = disks[na], disks[nb], disks[nc], disks[nd]

# (a) GPT, 512/512, ESP + MSR + NTFS + BitLocker recognised by libblkid.
check(A["selected"], f"{na} selected (reason: {A['reason']})")
check((A["logical_block_size"], A["physical_block_size"]) == (512, 512),
      f"{na} block sizes 512/512, got {A['logical_block_size']}/{A['physical_block_size']}")
check(A["partition_table"] == "gpt", f"{na} partition_table gpt, got {A['partition_table']!r}")
check(A["disk_id"] == ptuuid_a, f"{na} disk_id {A['disk_id']!r} == blkid PTUUID {ptuuid_a!r}")
check(A["source"] in ("sysfs", "udev"), f"{na} source sysfs/udev, got {A['source']!r}")
roles = [p["windows_role"] for p in A["partitions"]]
check(roles == ["efi-system", "microsoft-reserved", "ntfs", "bitlocker"],
      f"{na} roles efi-system/microsoft-reserved/ntfs/bitlocker, got {roles}")
if len(A["partitions"]) == 4:
    check(A["partitions"][3]["fs_type"] == "BitLocker", f"{na}p4 fs_type BitLocker, got {A['partitions'][3]['fs_type']!r}")
    p3 = A["partitions"][2]
    check(p3["fs_type"] == "ntfs" and p3["label"] == "rescuetest", f"{na}p3 ntfs labelled rescuetest, got {p3}")
    check(p3["part_type"] == "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", f"{na}p3 GPT basic data type, got {p3['part_type']}")
    check(len(p3["part_uuid"]) == 36, f"{na}p3 has a GPT partition GUID, got {p3['part_uuid']!r}")

# (b) 4Kn MBR, LDM partition makes it a dynamic disk.
check(B["selected"], f"{nb} selected (reason: {B['reason']})")
check((B["logical_block_size"], B["physical_block_size"]) == (4096, 4096),
      f"{nb} block sizes 4096/4096, got {B['logical_block_size']}/{B['physical_block_size']}")
check(B["partition_table"] == "dos", f"{nb} partition_table dos, got {B['partition_table']!r}")
check(B["disk_id"] == ptuuid_b, f"{nb} disk_id {B['disk_id']!r} == blkid PTUUID {ptuuid_b!r}")
types = [p["part_type"] for p in B["partitions"]]
check(types == ["0x7", "0x42"], f"{nb} partition types 0x7, 0x42, got {types}")
check(B["windows_dynamic"], f"{nb} windows_dynamic")
if B["partitions"]:
    check(B["partitions"][0]["part_uuid"] == ptuuid_b + "-01", f"{nb}p1 PARTUUID {ptuuid_b}-01, got {B['partitions'][0]['part_uuid']!r}")

# (c) mounted partition, (d) swap: never selected, reasons say why.
check(not C["selected"], f"{nc} not selected")
check("mount" in C["reason"] and mnt in C["reason"], f"{nc} reason mentions the mount at {mnt}: {C['reason']!r}")
check(f"partition {nc}p1 mounted at {mnt}" in C["in_use"], f"{nc} in_use names the partition: {C['in_use']}")
check(not D["selected"], f"{nd} not selected")
check("swap" in D["reason"], f"{nd} reason mentions swap: {D['reason']!r}")
check(D["in_use"] == ["swap"], f"{nd} in_use is ['swap'], got {D['in_use']}")

# Nothing the host uses may reach QEMU's argv.
argv = "\n".join(plan["qemu"]["argv"])
def in_argv(n):  # /dev/loop9 but not /dev/loop90
    return re.search(rf"/dev/{re.escape(n)}(?![0-9])", argv) is not None
check(in_argv(na) and in_argv(nb), "selected disks are in the QEMU argv")
for n in (nc, nd):
    check(not in_argv(n), f"{n} is not in the QEMU argv")

# `disks --json` lists every one of them with the same facts.
inv = by_name(inventory["disks"])
for n, ref in ((na, A), (nb, B), (nc, C), (nd, D)):
    check(n in inv, f"disks --json lists {n}")
    if n in inv:
        check(inv[n]["disk_id"] == ref["disk_id"] and inv[n]["in_use"] == ref["in_use"],
              f"disks --json agrees with plan on {n}")

if problems:
    sys.exit("FAIL: " + "\n  ".join(problems))
PY
echo "PASS: plan selects $na (GPT 512: ESP, MSR, NTFS, BitLocker) and $nb (4Kn MBR) with their PTUUIDs; refuses $nc (mounted) and $nd (swap)"
