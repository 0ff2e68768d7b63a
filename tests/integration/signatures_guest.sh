#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Disk identity guard end to end: `rescuevm run` with the test guest changes, detects, refuses and restores disk signatures on loop disks.
#
# Usage (root): tests/integration/signatures_guest.sh   (meson: meson test -C BUILD signatures_guest)
# Everything goes through the rescuevm binary (agent, status, signatures, plan) and the test
# guest (tests/guest/init). Disks go to the guest over NVMe (disks.bus = "nvme"), whose serial
# is the loop name, so rvtest.write_mbr_sig=loopN:... finds the right disk whatever the order.
#  A. Session 1, an MBR disk and a GPT disk: the guest rewrites the MBR signature (0x1B8-0x1BB)
#     and powers off. The agent logs one WARNING for the MBR disk with old and new value and the
#     restore command; `status --json` (agent up, VM off) lists it in signature_changes;
#     `signatures --json` shows changed=true for it and false for the GPT disk.
#     `signatures restore MBRDISK` (agent up, VM off) succeeds: blkid PTUUID is the original and
#     the disk is byte-identical to the guest's version except bytes 0x1B8-0x1BB.
#  B. Same session, VM off: the test changes the GPT disk GUID (sgdisk -U R, as Windows would),
#     stops the agent with SIGTERM; the agent's stop check logs the WARNING for the GPT disk;
#     `signatures --json` shows it; `signatures restore` brings back the GUID, sgdisk -v is clean.
#  C. Session 2, supervisor.restore_signatures = "on-stop", guest rvtest.final=wait: after the
#     guest changed the MBR signature and while it runs, `signatures restore` exits non-zero,
#     says to stop the VM (`rescuevm vm stop`), and the disk is byte-identical; then SIGTERM to
#     the agent: it stops the VM and the disk has its original signature again.
#  D. `plan --json` (no VM): two loop disks with the same MBR signature (label-id 0x12345678)
#     give the collision warning naming both; a partition with BitLocker's boot sector gives the
#     BitLocker warning for its disk.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

: "${RESCUEVM:?RESCUEVM must point at the rescuevm binary}"
rv_require qemu-system-x86_64 losetup sfdisk sgdisk blkid partx python3 cmp dd

BOOT_TIMEOUT=300   # one TCG boot on a shared 2-core machine: 5-30 s when quiet
STOP_TIMEOUT=180   # agent stop: ACPI power button, then shutdown_timeout, then quit

tmp=$(rv_tmpdir)
RV_GUEST_DIR=$(rv_guest_build)
kernel=$(rv_guest_kernel)
initrd=$RV_GUEST_DIR/initramfs.cpio.gz
: >"$tmp/cmdline"   # no rescuevm.* overrides

# write_config FILE RUNTIME_DIR APPEND EXTRA_SUPERVISOR_LINES DISK...: an agent config passing
# exactly DISK... to the test guest (TCG, BIOS, no network, no password).
write_config() {
  local file=$1 rt=$2 append=$3 supervisor=$4 match
  shift 4
  match=$(printf '"%s", ' "${@#/dev/}")
  cat >"$file" <<EOF
[host]
min_memory = "1GiB"
[vm]
kernel = "$kernel"
initrd = "$initrd"
append = "$(rv_guest_append "$append")"
accel = "tcg"
firmware = "bios"
memory = "512MiB"
cpus = 2
display = "none"
[disks]
match = [${match%, }]
bus = "nvme"
[network]
mode = "none"
[guest]
admin_password_file = "$tmp/nopw"
[paths]
runtime_dir = "$rt"
[supervisor]
$supervisor
EOF
}

rv() { "$RESCUEVM" --config "$1" --kernel-cmdline "$tmp/cmdline" "${@:2}"; }

# start_agent CONFIG LOG: `rescuevm run` in the background; sets AGENT_PID.
start_agent() {
  local rt
  rt=$(sed -n 's/^runtime_dir = "\(.*\)"$/\1/p' "$1")
  # Not through rv(): $! must be the agent itself, not a subshell, for SIGTERM to reach it.
  "$RESCUEVM" --config "$1" --kernel-cmdline "$tmp/cmdline" run >"$2" 2>&1 &
  AGENT_PID=$!
  rv_cleanup_kill "$AGENT_PID"
  rv_cleanup_add rv_kill_qemu_for "$rt"   # runs after the agent is gone, before the loops go
}

# stop_agent LOG: SIGTERM, wait for the agent to exit; fails on timeout or non-zero exit.
stop_agent() {
  local i rc=0
  kill -TERM "$AGENT_PID"
  for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
    kill -0 "$AGENT_PID" 2>/dev/null || break
    sleep 0.2
  done
  kill -0 "$AGENT_PID" 2>/dev/null && rv_fail "agent did not stop within $STOP_TIMEOUT s: $(tail -5 "$1")"
  wait "$AGENT_PID" || rc=$?
  [[ $rc -eq 0 ]] || rv_fail "agent exited $rc after SIGTERM: $(tail -5 "$1")"
}

# wait_log PATTERN LOG SEC WHAT
wait_log() {
  rv_wait_for "$1" "$2" "$3" && return 0
  kill -0 "$AGENT_PID" 2>/dev/null || rv_fail "$4: the agent died: $(tail -20 "$2")"
  rv_fail "$4: no line matching '$1' within $3 s; log tail: $(tail -20 "$2")"
}

ptuuid() { blkid -p -o value -s PTUUID "$1" || true; }
backing() { losetup -n -O BACK-FILE "$1" | sed 's/[[:space:]]*$//'; }
snapshot() { dd if="$1" of="$2" bs=1M iflag=direct status=none; }

# json_check FILE PYTHON_EXPR MESSAGE: evaluates EXPR with j = the parsed FILE.
json_check() {
  python3 - "$1" "$2" <<'EOF' || rv_fail "$3: $(head -c 3000 "$1")"
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
}

# ------------------------------------------------------------------------- A: MBR, guest-made change
mbr=$(rv_loop_disk 64M)
gpt=$(rv_loop_disk 64M)
mbrn=${mbr#/dev/}
gptn=${gpt#/dev/}
printf 'label: dos\nlabel-id: 0x1234abcd\n2048,16384,7\n,16384,83\n' | sfdisk -q "$mbr"
sgdisk -o -n 1:0:+16M -t 1:0700 -n 2:0:+16M -t 2:8300 "$gpt" >/dev/null
partx -u "$mbr" 2>/dev/null || true
partx -u "$gpt" 2>/dev/null || true
for d in "$mbr" "$gpt"; do   # recognisable data, so byte-identity means something
  dd if=/dev/urandom of="$d" bs=1M seek=2 count=8 oflag=direct status=none
done
[[ $(ptuuid "$mbr") == 1234abcd ]] || rv_fail "sfdisk did not set the MBR signature: $(ptuuid "$mbr")"
gpt_orig=$(ptuuid "$gpt")
[[ -n $gpt_orig ]] || rv_fail "sgdisk made no GPT on $gpt"
rv_log "disks: $mbrn (MBR 1234abcd), $gptn (GPT $gpt_orig)"

rt1=$tmp/rt1
conf1=$tmp/s1.toml
log1=$tmp/agent1.log
write_config "$conf1" "$rt1" "rvtest.write_mbr_sig=$mbrn:9f8e7d6c rvtest.final=poweroff" "" "$mbr" "$gpt"
start_agent "$conf1" "$log1"
wait_log "recorded $gptn signature" "$log1" 60 "agent start"
wait_log "VM is off" "$log1" "$BOOT_TIMEOUT" "guest poweroff"
grep -q "RVTEST mbrsig name=.* old=1234abcd new=9f8e7d6c" "$rt1/guest-console.log" \
  || rv_fail "the guest did not report rewriting the signature: $(grep -a RVTEST "$rt1/guest-console.log" | tail -5)"
[[ $(ptuuid "$mbr") == 9f8e7d6c ]] || rv_fail "PTUUID after the guest is $(ptuuid "$mbr"), want 9f8e7d6c"

warn=$(tr -d '\r' <"$log1" | grep -a -i "warn" | grep -a "$mbrn" | grep -a "MBR disk signature changed" || true)
[[ $(wc -l <<<"$warn") -eq 1 && -n $warn ]] || rv_fail "want exactly one WARNING line for $mbrn, got: $warn"
for p in 1234abcd 9f8e7d6c "rescuevm signatures restore $mbrn" 0xc000000e; do
  grep -qF -- "$p" <<<"$warn" || rv_fail "the WARNING line lacks '$p': $warn"
done
! tr -d '\r' <"$log1" | grep -a -i "warn" | grep -aq "disk $gptn " || rv_fail "a WARNING for the unchanged $gptn: $(grep -a "$gptn" "$log1")"
rv_log "agent: $warn"

rv "$conf1" status --json >"$tmp/status.json" || rv_fail "status --json failed with the agent up"
json_check "$tmp/status.json" \
  "j['vm']['state'] == 'off' and any('$mbrn' in json.dumps(c) for c in j['signature_changes']) and not any('$gptn' in json.dumps(c) for c in j['signature_changes'])" \
  "status --json: want VM off and signature_changes with $mbrn only"

rv "$conf1" signatures --json >"$tmp/sig1.json" || rv_fail "signatures --json failed"
json_check "$tmp/sig1.json" \
  "{d['name']: d['changed'] for d in j['disks']} == {'$mbrn': True, '$gptn': False}" \
  "signatures --json: want $mbrn changed, $gptn unchanged"

# Restore with the agent up and the VM off: only the 4 signature bytes may change.
snapshot "$mbr" "$tmp/mbr-guest.bin"
rv "$conf1" signatures restore "$mbrn" >"$tmp/restore1.out" 2>&1 \
  || rv_fail "signatures restore $mbrn with the VM off failed: $(cat "$tmp/restore1.out")"
rv_log "restore: $(tr '\n' ' ' <"$tmp/restore1.out")"
[[ $(ptuuid "$mbr") == 1234abcd ]] || rv_fail "PTUUID after restore is $(ptuuid "$mbr"), want 1234abcd"
snapshot "$mbr" "$tmp/mbr-restored.bin"
# cmp -l offsets are 1-based: 0x1B8..0x1BB are 441..444.
diffs=$(cmp -l "$tmp/mbr-guest.bin" "$tmp/mbr-restored.bin" | awk '$1 < 441 || $1 > 444' | head -5 || true)
[[ -z $diffs ]] || rv_fail "restore changed bytes outside 0x1B8-0x1BB: $diffs"
rv "$conf1" signatures --json >"$tmp/sig1b.json" || rv_fail "signatures --json failed"
json_check "$tmp/sig1b.json" "not any(d['changed'] for d in j['disks'])" "signatures --json after restore: nothing changed"
rv_pass "MBR: guest's signature change logged once ($mbrn, old/new, restore command), in status and signatures --json; restored with the VM off, only 0x1B8-0x1BB differ"

# ------------------------------------------------------------------------- B: GPT, changed while the VM is off
sgdisk -U R "$gpt" >/dev/null
gpt_new=$(ptuuid "$gpt")
[[ $gpt_new != "$gpt_orig" ]] || rv_fail "sgdisk -U R did not change the GPT disk GUID"
stop_agent "$log1"
warn=$(tr -d '\r' <"$log1" | grep -a -i "warn" | grep -a "$gptn" | grep -a "GPT disk GUID changed" || true)
[[ $(wc -l <<<"$warn") -eq 1 && -n $warn ]] || rv_fail "want one WARNING line for $gptn at agent stop, got: $warn; log: $(tail -10 "$log1")"
for p in "$gpt_orig" "$gpt_new" "rescuevm signatures restore $gptn"; do
  grep -qiF -- "$p" <<<"$warn" || rv_fail "the GPT WARNING line lacks '$p': $warn"
done
rv_log "agent at stop: $warn"
[[ $(rv_count "MBR disk signature changed" "$log1") -eq 1 ]] \
  || rv_fail "the MBR change was warned about more than once: $(grep -a "MBR disk signature changed" "$log1")"
rv "$conf1" signatures --json >"$tmp/sig2.json" || rv_fail "signatures --json after the agent stopped failed"
json_check "$tmp/sig2.json" \
  "{d['name']: d['changed'] for d in j['disks']} == {'$mbrn': False, '$gptn': True}" \
  "signatures --json: want $gptn changed"
snapshot "$gpt" "$tmp/gpt-changed.bin"
rv "$conf1" signatures restore >"$tmp/restore2.out" 2>&1 \
  || rv_fail "signatures restore (all disks) failed: $(cat "$tmp/restore2.out")"
rv_log "restore: $(tr '\n' ' ' <"$tmp/restore2.out")"
[[ $(ptuuid "$gpt") == "$gpt_orig" ]] || rv_fail "GPT disk GUID after restore is $(ptuuid "$gpt"), want $gpt_orig"
sgdisk -v "$gpt" | grep -q "No problems found" || rv_fail "sgdisk -v after restore: $(sgdisk -v "$gpt")"
[[ $(ptuuid "$mbr") == 1234abcd ]] || rv_fail "restoring all disks changed $mbrn"
rv "$conf1" signatures --json >"$tmp/sig2b.json" || rv_fail "signatures --json failed"
json_check "$tmp/sig2b.json" "not any(d['changed'] for d in j['disks'])" "signatures --json after GPT restore: nothing changed"
rv_pass "GPT: disk GUID changed with the VM off is warned about at agent stop, shown by signatures --json, restored; sgdisk -v clean"

# ------------------------------------------------------------------------- C: refused while running; on-stop
mbr2=$(rv_loop_disk 64M)
mbr2n=${mbr2#/dev/}
printf 'label: dos\nlabel-id: 0xa1b2c3d4\n2048,16384,7\n' | sfdisk -q "$mbr2"
dd if=/dev/urandom of="$mbr2" bs=1M seek=2 count=4 oflag=direct status=none
rt2=$tmp/rt2
conf2=$tmp/s2.toml
log2=$tmp/agent2.log
write_config "$conf2" "$rt2" "rvtest.write_mbr_sig=$mbr2n:0badf00d rvtest.final=wait" \
  $'restore_signatures = "on-stop"\nshutdown_timeout = "10s"' "$mbr2"
start_agent "$conf2" "$log2"
rv_wait_for "RVTEST mbrsig name=.* new=0badf00d" "$rt2/guest-console.log" "$BOOT_TIMEOUT" \
  || rv_fail "the guest did not rewrite the signature: $(grep -a RVTEST "$rt2/guest-console.log" 2>/dev/null | tail -5); agent: $(tail -5 "$log2")"
[[ $(ptuuid "$mbr2") == 0badf00d ]] || rv_fail "PTUUID after the guest is $(ptuuid "$mbr2"), want 0badf00d"
rv "$conf2" status --json >"$tmp/status2.json" || rv_fail "status --json failed"
json_check "$tmp/status2.json" "j['vm']['state'] == 'running'" "status: want the VM running"
snapshot "$mbr2" "$tmp/mbr2-running.bin"
rc=0
rv "$conf2" signatures restore "$mbr2n" >"$tmp/refused.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || rv_fail "signatures restore while the VM runs exited 0: $(cat "$tmp/refused.out")"
grep -qF "rescuevm vm stop" "$tmp/refused.out" || rv_fail "the refusal does not say how to stop the VM: $(cat "$tmp/refused.out")"
snapshot "$mbr2" "$tmp/mbr2-after.bin"
cmp -s "$tmp/mbr2-running.bin" "$tmp/mbr2-after.bin" || rv_fail "the refused restore changed the disk"
[[ $(ptuuid "$mbr2") == 0badf00d ]] || rv_fail "the refused restore changed the signature"
rv_log "refused (exit $rc): $(tr '\n' ' ' <"$tmp/refused.out")"
rv_pass "signatures restore while the VM runs: exit $rc, says \`rescuevm vm stop\`, disk byte-identical"

stop_agent "$log2"
[[ $(ptuuid "$mbr2") == a1b2c3d4 ]] \
  || rv_fail "on-stop: PTUUID after the agent stopped is $(ptuuid "$mbr2"), want a1b2c3d4; log: $(grep -a signatures "$log2" | tail -5)"
grep -aq "$mbr2n: recorded signature written back" "$log2" || rv_fail "on-stop: no log line for the restore: $(tail -10 "$log2")"
snapshot "$mbr2" "$tmp/mbr2-restored.bin"
diffs=$(cmp -l "$tmp/mbr2-running.bin" "$tmp/mbr2-restored.bin" | awk '$1 < 441 || $1 > 444' | head -5 || true)
[[ -z $diffs ]] || rv_fail "on-stop restore changed bytes outside 0x1B8-0x1BB: $diffs"
rv_pass "supervisor.restore_signatures = on-stop: the guest's change is undone when the agent stops (only 0x1B8-0x1BB)"

# ------------------------------------------------------------------------- D: plan warnings
c1=$(rv_loop_disk 32M)
c2=$(rv_loop_disk 32M)
for d in "$c1" "$c2"; do
  printf 'label: dos\nlabel-id: 0x12345678\n2048,8192,7\n' | sfdisk -q "$d"
done
bde=$(rv_loop_disk 32M)
sgdisk -o -n 1:2048:+8M -t 1:0700 "$bde" >/dev/null
partx -u "$bde" 2>/dev/null || true
[[ -b ${bde}p1 ]] || rv_fail "no partition node ${bde}p1 after partx -u"
# BitLocker (Windows 7+) volume header: "-FVE-FS-" boot sector pointing at three FVE
# metadata blocks, which is what libblkid checks (as in plan_loop_disks.sh).
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
dd if="$tmp/bde.bin" of="${bde}p1" bs=1M conv=notrunc,fsync status=none
[[ $(blkid -p -o value -s TYPE "${bde}p1") == BitLocker ]] || rv_fail "libblkid does not see BitLocker on ${bde}p1"
conf3=$tmp/plan.toml
write_config "$conf3" "$tmp/rt3" "rvtest.final=poweroff" "" "$c1" "$c2" "$bde"
rc=0
rv "$conf3" plan --json >"$tmp/plan.json" 2>"$tmp/plan.err" || rc=$?
[[ -s $tmp/plan.json ]] || rv_fail "plan --json printed nothing (exit $rc): $(cat "$tmp/plan.err")"
c1n=${c1#/dev/} c2n=${c2#/dev/} bden=${bde#/dev/}
json_check "$tmp/plan.json" \
  "any('$c1n' in w and '$c2n' in w and '12345678' in w and 'same disk identity' in w for w in j['warnings'])" \
  "plan --json: want a collision warning naming $c1n and $c2n with 12345678"
json_check "$tmp/plan.json" \
  "any('$bden' in w and 'BitLocker' in w and 'recovery key' in w for w in j['warnings']) and not any('BitLocker' in w and ('$c1n' in w or '$c2n' in w) for w in j['warnings'])" \
  "plan --json: want a BitLocker warning for $bden (and none for $c1n/$c2n)"
rv_log "plan warnings: $(python3 -c 'import json,sys; print(" | ".join(json.load(open(sys.argv[1]))["warnings"]))' "$tmp/plan.json")"
rv_pass "plan --json warns about $c1n/$c2n sharing MBR signature 12345678 and about BitLocker on $bden"

# --------------------------------------------- E: a qcow2 rescue image shares a disk's GPT GUID
# The collision that breaks the server's next boot (0xc000000e): the identity must be read from the
# disk inside the qcow2 (its container bytes hold no partition table at all).
guid=5a1e0c0d-1111-4222-8333-0123456789ab
g1=$(rv_loop_disk 32M)
sgdisk -o -U "$guid" -n 1:2048:+8M "$g1" >/dev/null
truncate -s 64M "$tmp/image.raw"
sgdisk -o -U "$guid" -n 1:2048:+8M "$tmp/image.raw" >/dev/null
qemu-img convert -q -O qcow2 "$tmp/image.raw" "$tmp/image.qcow2"
rm -f "$tmp/image.raw"
[[ -z $(blkid -p -o value -s PTUUID "$tmp/image.qcow2" 2>/dev/null) ]] \
  || rv_fail "the qcow2 container itself should carry no partition table"
conf4=$tmp/plan-image.toml
write_config "$conf4" "$tmp/rt4" "" "" "$g1"
sed -i -e '/^kernel = /d' -e '/^initrd = /d' -e '/^append = /d' \
  -e "s|^\\[vm\\]|[vm]\\nimage = \"$tmp/image.qcow2\"|" "$conf4"
rc=0
rv "$conf4" plan --json >"$tmp/plan4.json" 2>"$tmp/plan4.err" || rc=$?
[[ -s $tmp/plan4.json ]] || rv_fail "plan --json (qcow2 image) printed nothing (exit $rc): $(cat "$tmp/plan4.err")"
g1n=${g1#/dev/}
json_check "$tmp/plan4.json" \
  "any('$g1n' in w and '$guid' in w and 'rescue image' in w for w in j['warnings'])" \
  "plan --json: want a warning that $g1n shares GPT GUID $guid with the disk inside the qcow2 rescue image"
rv_pass "plan --json warns that $g1n shares its GPT disk GUID with the disk inside the qcow2 rescue image"
