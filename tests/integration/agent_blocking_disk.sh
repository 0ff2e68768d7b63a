#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# agent_blocking_disk: a passed disk whose reads hang does not stall the agent: status answers within 1 s, WATCHDOG=1 keeps coming, a guest reboot is still handled.
#
# Usage (root): tests/integration/agent_blocking_disk.sh   (meson: meson test -C BUILD agent_blocking_disk)
#
# The hanging disk: this kernel has no device-mapper (no dm-delay, no suspended dm device), so
# the second passed disk is a loop device over a file on an NTFS volume mounted by ntfs-3g
# (FUSE). SIGSTOP to the ntfs-3g process makes every read of that disk that misses the page
# cache (the agent reads with O_DIRECT; the file's cache is dropped first) wait in the kernel
# until SIGCONT, as a failing disk's SCSI retries do. The agent runs with NOTIFY_SOCKET and
# WATCHDOG_USEC=4000000; the test guest reboots itself 10 s after its first boot
# (rvtest.reboots=1 rvtest.reboot_delay=10), which makes the agent read the disks' signatures.
# Asserted, with ntfs-3g stopped:
#   - a direct read of the disk really hangs (a dd stays in the kernel);
#   - the guest's reboot is logged ("guest restarted itself"), and one of the agent's threads then
#     waits on the disk (its signature read, in the Worker);
#   - `rescuevm status` answers 5 times, each within 1 s;
#   - no gap of 3 s or more between WATCHDOG=1 messages;
# then after SIGCONT the guest boots again and the agent stops with 0.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"
rv_require mkntfs ntfs-3g losetup

# --- the disk that can hang ------------------------------------------------------------------------
ntfs_dev=$(rv_loop_disk 96M)
mkntfs -Q -F -q "$ntfs_dev" >/dev/null 2>&1 || rv_fail "mkntfs on $ntfs_dev failed"
ntfs_mnt=$(rv_tmpdir)
ntfs-3g -o no_detach "$ntfs_dev" "$ntfs_mnt" >/dev/null 2>&1 &
ntfs_pid=$!
rv_cleanup_kill "$ntfs_pid"            # only if the unmount below did not end it
rv_cleanup_add "umount $ntfs_mnt"      # runs after the slow disk is detached
for ((i = 0; i < 50; i++)); do
  grep -q " $ntfs_mnt fuseblk " /proc/mounts && break
  sup_alive "$ntfs_pid" || rv_fail "ntfs-3g did not mount $ntfs_dev"
  sleep 0.1   # bounded wait for the FUSE mount
done
truncate -s 64M "$ntfs_mnt/disk.img"
slow=$(losetup --find --show "$ntfs_mnt/disk.img") || rv_fail "losetup of $ntfs_mnt/disk.img failed"
rv_cleanup_add losetup -d "$slow"
rv_log "slow disk $slow: a file on ntfs-3g (pid $ntfs_pid) over $ntfs_dev"

SUP_NOTIFY=1
SUP_MORE_DISKS=$slow
sup_setup "rvtest.reboots=1 rvtest.reboot_delay=10 rvtest.final=wait"
sup_agent_start
rv_cleanup_add "kill -CONT $ntfs_pid"  # first of all at exit: nothing may stay blocked
sup_wait_boots 1 || sup_fail "the guest did not boot"
rv_wait_for '^RVTEST ready' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not get ready"
grep -a -q "recorded ${slow#/dev/} signature" "$SUP_AGENT_LOG" || sup_fail "the slow disk is not among the passed disks"

# --- reads hang -----------------------------------------------------------------------------------
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' \
  "$ntfs_mnt/disk.img"
kill -STOP "$ntfs_pid"
t_stop=$(sup_now)
dd if="$slow" of=/dev/null bs=4k count=1 iflag=direct status=none &
dd_pid=$!
for ((i = 0; i < 20; i++)); do sup_alive "$dd_pid" || break; sleep 0.1; done
sup_alive "$dd_pid" || { kill -CONT "$ntfs_pid"; sup_fail "a read of $slow did not hang with ntfs-3g stopped: the test proves nothing"; }
rv_log "a direct read of $slow hangs (dd $dd_pid: $(cut -d' ' -f3 "/proc/$dd_pid/stat") state)"

rv_wait_for 'guest restarted itself' "$SUP_AGENT_LOG" 60 || { kill -CONT "$ntfs_pid"; sup_fail "the guest's reboot was not handled"; }
# The reboot makes the agent read the disks' signatures: one of its threads must now wait on the disk.
agent_blocked=0
for ((i = 0; i < 50 && !agent_blocked; i++)); do
  for t in /proc/"$SUP_AGENT_PID"/task/*; do
    [[ $(cut -d' ' -f3 "$t/stat" 2>/dev/null) == D ]] && agent_blocked=1
  done
  ((agent_blocked)) || sleep 0.1   # bounded wait for the worker to reach the disk
done
((agent_blocked)) || { kill -CONT "$ntfs_pid"; sup_fail "no thread of the agent waits on the disk: its signature read did not hang, nothing proven"; }
rv_log "agent threads (state): $(for t in /proc/"$SUP_AGENT_PID"/task/*; do cut -d' ' -f3 "$t/stat"; done | sort | uniq -c | tr '\n' ' ')"
worst=0
for _ in 1 2 3 4 5; do
  t0=$(date +%s%N)
  state=$(timeout 5 "$RESCUEVM" --config "$SUP_CONF" --kernel-cmdline "$SUP_CMDLINE" status --json | jq -r .vm.state) \
    || { kill -CONT "$ntfs_pid"; sup_fail "status did not answer with a disk hanging"; }
  ms=$((($(date +%s%N) - t0) / 1000000))
  ((ms > worst)) && worst=$ms
  ((ms < 1000)) || { kill -CONT "$ntfs_pid"; sup_fail "status took $ms ms with a disk hanging"; }
  beats=$(rv_count 'WATCHDOG=1' "$SUP_NOTIFY_LOG")
  rv_wait_for_count $((beats + 1)) 'WATCHDOG=1' "$SUP_NOTIFY_LOG" 5 || true   # one query per watchdog beat
done
gap=$(sup_watchdog_gap "$t_stop")
stalled=$(python3 -c "import time; print('%.1f' % (time.monotonic() - $t_stop))")
sup_alive "$dd_pid" || { kill -CONT "$ntfs_pid"; sup_fail "the disk stopped hanging during the test ($stalled s): nothing proven"; }
kill -CONT "$ntfs_pid"
python3 -c "import sys; sys.exit(0 if float('$gap') < 3.0 else 1)" || sup_fail "WATCHDOG=1 stopped for $gap s while the disk hung"
rv_pass "disk $slow hanging for $stalled s: the guest's reboot was logged, an agent thread waited on the disk, status answered 5 times (worst $worst ms, VM $state), WATCHDOG=1 longest gap $gap s"

wait "$dd_pid" || true
sup_wait_boots 2 || sup_fail "the guest did not boot again once the disk answered"
sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
rv_pass "after SIGCONT the guest booted again; agent exit 0"
