#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# safety_disks: the VM never gets a disk that changed or that someone else uses: busy while it runs, a second agent kept out, every `vm start` re-checked (mounted, another writer, another image at the same /dev/loopN), `signatures restore` refusing a swapped disk.
#
# Usage (root): tests/integration/safety_disks.sh   (meson: meson test -C BUILD safety_disks)
#
# The passed loop disk has a GPT with an ext4 partition at 8 MiB (the guest's boot counter at
# 2 MiB stays clear of it). Asserted:
#   1. while the VM runs, `mount /dev/loopNp1` fails: QEMU holds the disk O_EXCL;
#   2. a second `rescuevm run` on the same runtime_dir exits 1 at once, naming the pid of the
#      agent that holds the lock; the first agent, its control socket, qemu.json and QEMU are
#      untouched and status answers;
#   3. after `vm stop`, the partition mounted on the host: `vm start` is refused naming the
#      disk and "in use"; no QEMU is started; status shows "refused";
#   4. a QEMU this agent does not know holds the disk open: `vm start` is refused naming that
#      QEMU's pid; no QEMU of ours is started;
#   5. `losetup -d` and another image of the same size on the same /dev/loopN: `vm start` is
#      refused ("backed by", another image); after the agent's stop, `rescuevm signatures
#      restore` refuses that disk too and the other image is left unchanged.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"
rv_require sfdisk partx mkfs.ext4 mount umount

sup_setup "rvtest.final=wait"
printf 'label: gpt\nstart=16384, size=65536, type=linux\n' | sfdisk -q "$SUP_DISK" >/dev/null
partx -u "$SUP_DISK" 2>/dev/null || partx -a "$SUP_DISK"
part=${SUP_DISK}p1
[[ -b $part ]] || rv_fail "no partition $part after sfdisk"
mkfs.ext4 -q -F "$part"
mnt=$(rv_tmpdir)
rv_cleanup_add "umount $mnt"

# vm_cmd ARGS...: sets VM_OUT and VM_RC.
vm_cmd() {
  VM_RC=0
  VM_OUT=$(sup_rescuevm vm "$@" 2>&1) || VM_RC=$?
  rv_log "vm $*: exit $VM_RC: $VM_OUT"
}
no_qemu_of_ours() { [[ -z $(sup_qemu_pids) ]] || sup_fail "$1: a QEMU was started: $(sup_qemu_pids)"; }

sup_agent_start
sup_wait_boots 1 || sup_fail "the guest did not boot"
rv_wait_for '^RVTEST wait' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not get ready"
qemu_pid=$(sup_status vm.qemu_pid)

# --- 1: busy while the VM runs -------------------------------------------------------------------
if out=$(mount "$part" "$mnt" 2>&1); then
  umount "$mnt"
  sup_fail "mount $part worked while the VM runs"
fi
rv_pass "while the VM runs, mount $part fails: $out"

# --- 2: a second agent -------------------------------------------------------------------------
sock_inode=$(stat -c %i "$SUP_RT/control.sock")
record=$(rv_sha256 "$SUP_RT/qemu.json")
rc=0
t0=$SECONDS
out=$(timeout 60 "$RESCUEVM" --config "$SUP_CONF" --kernel-cmdline "$SUP_CMDLINE" run 2>&1) || rc=$?
[[ $rc == 1 ]] || sup_fail "a second rescuevm run exited $rc, want 1: $out"
((SECONDS - t0 < 10)) || sup_fail "the second rescuevm run took $((SECONDS - t0)) s to give up"
[[ $out == *"held by pid $SUP_AGENT_PID"* ]] || sup_fail "the second rescuevm run does not name the agent $SUP_AGENT_PID: $out"
[[ $(stat -c %i "$SUP_RT/control.sock") == "$sock_inode" ]] || sup_fail "the second agent replaced the control socket"
[[ $(rv_sha256 "$SUP_RT/qemu.json") == "$record" ]] || sup_fail "the second agent changed qemu.json"
[[ $(sup_status agent.pid) == "$SUP_AGENT_PID" && $(sup_status vm.qemu_pid) == "$qemu_pid" ]] \
  || sup_fail "after the second agent: status from $(sup_status agent.pid), QEMU $(sup_status vm.qemu_pid)"
[[ $(sup_qemu_pids | tr '\n' ' ') == "$qemu_pid " ]] || sup_fail "QEMUs on the runtime_dir: $(sup_qemu_pids | tr '\n' ' ')"
rv_pass "a second rescuevm run exited 1 naming agent $SUP_AGENT_PID: $(grep -o 'the agent of .*' <<<"$out" | head -n 1)"

# --- 3: mounted after vm stop ------------------------------------------------------------------
vm_cmd stop
[[ $VM_RC == 0 ]] || sup_fail "vm stop: $VM_OUT"
sup_wait_status vm.state off 90 || sup_fail "the VM did not go off"
mount "$part" "$mnt" || sup_fail "mount $part failed with the VM off"
vm_cmd start
[[ $VM_RC == 1 && $VM_OUT == *"${SUP_DISK#/dev/}"* && $VM_OUT == *"in use"* ]] \
  || sup_fail "vm start with $part mounted: want a refusal naming the disk and 'in use', got $VM_RC: $VM_OUT"
no_qemu_of_ours "disk mounted"
[[ $(sup_status vm.state) == refused ]] || sup_fail "status shows $(sup_status vm.state), want refused"
grep -a -q "the VM is not started: .*${SUP_DISK#/dev/}.*in use" "$SUP_AGENT_LOG" || sup_fail "the refusal is not logged"
umount "$mnt"
rv_pass "partition mounted after vm stop: vm start refused: $VM_OUT"

# --- 4: a QEMU we do not know holds the disk ----------------------------------------------------
# A paused VM with the disk on a virtio-blk device: QEMU opens it read-write (without a device
# using it, QEMU would only open it read-only, which is harmless).
qemu-system-x86_64 -machine q35 -accel tcg -nodefaults -display none -S \
  -drive "file=$SUP_DISK,format=raw,if=none,id=foreign" -device virtio-blk-pci,drive=foreign 2>"$SUP_TMP/foreign.log" &
foreign=$!
rv_cleanup_kill "$foreign"
held=0
for ((i = 0; i < 100 && !held; i++)); do
  for f in /proc/"$foreign"/fd/*; do
    [[ $(readlink "$f" 2>/dev/null) == "$SUP_DISK" ]] || continue
    # O_RDWR in the fd's flags (octal, last digit 2)
    [[ $(awk '/^flags:/ { print $2 }' "/proc/$foreign/fdinfo/${f##*/}" 2>/dev/null) == *2 ]] && held=1
  done
  ((held)) && break
  sup_alive "$foreign" || sup_fail "the foreign QEMU did not start: $(cat "$SUP_TMP/foreign.log")"
  sleep 0.1   # bounded wait for QEMU to open the disk
done
((held)) || sup_fail "the foreign QEMU $foreign did not open $SUP_DISK read-write: the test proves nothing"
vm_cmd start
[[ $VM_RC == 1 && $VM_OUT == *"pid $foreign"* ]] || sup_fail "vm start with QEMU $foreign holding the disk: want a refusal naming pid $foreign, got $VM_RC: $VM_OUT"
no_qemu_of_ours "foreign QEMU"
kill -KILL "$foreign"
wait "$foreign" 2>/dev/null || true
rv_pass "a QEMU the agent does not know holds the disk: vm start refused: $VM_OUT"

# --- 5: another image at the same /dev/loopN ----------------------------------------------------
orig=$(losetup -n -O BACK-FILE "$SUP_DISK")
other=$SUP_TMP/other.img
truncate -s "$(stat -c %s "$orig")" "$other"
printf 'RVTEST other image\n' | dd of="$other" bs=512 seek=4096 conv=notrunc status=none
other_sum=$(rv_sha256 "$other")
losetup -d "$SUP_DISK"
if ! losetup "$SUP_DISK" "$other"; then
  # someone took the device meanwhile: never detach it at exit
  sed -i "\\|^losetup -d $SUP_DISK \$|d" "$RV_CLEANUP_FILE"
  sup_fail "could not attach $other to $SUP_DISK again"
fi
vm_cmd start
[[ $VM_RC == 1 && $VM_OUT == *"${SUP_DISK#/dev/}"* && $VM_OUT == *"backed by"* ]] \
  || sup_fail "vm start with another image at $SUP_DISK: want a refusal (backing file), got $VM_RC: $VM_OUT"
no_qemu_of_ours "another image"
rv_pass "another image at the same $SUP_DISK: vm start refused: $VM_OUT"

sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
rc=0
out=$(sup_rescuevm signatures restore 2>&1) || rc=$?
[[ $rc == 1 && $out == *"not restored"* && $out == *"backed by"* ]] \
  || sup_fail "signatures restore on the swapped disk: want a refusal, got $rc: $out"
[[ $(rv_sha256 "$other") == "$other_sum" ]] || sup_fail "signatures restore wrote to the other image"
if ! { losetup -d "$SUP_DISK" && losetup "$SUP_DISK" "$orig"; }; then
  sed -i "\\|^losetup -d $SUP_DISK \$|d" "$RV_CLEANUP_FILE"   # never detach a device that may not be ours
fi
rv_pass "signatures restore refuses the swapped disk and leaves the other image unchanged: $(grep -o 'not restored.*' <<<"$out" | head -n 1)"
