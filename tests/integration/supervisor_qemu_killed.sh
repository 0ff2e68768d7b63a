#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `rescuevm run`: QEMU killed with SIGKILL is started again (a new process within the backoff), the agent stays up and the guest boots again.
#
# Usage (root): tests/integration/supervisor_qemu_killed.sh   (meson: meson test -C BUILD supervisor_qemu_killed)
#
# The test guest counts its boots on the passed loop disk and stays up (rvtest.final=wait).
# After its first boot, SIGKILL goes to the QEMU pid from status --json. Asserted: that pid is
# gone; within 60 s (the first backoff is 1 s; the rest is TCG start-up on a loaded machine)
# status shows a different, live QEMU pid, qemu.json names it, vm.qemu_starts is 2; the guest
# boots again ("RVTEST boots n=2": the disk's counter, so a real second boot); the agent is
# alive throughout; SIGTERM ends it with 0.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

sup_setup "rvtest.final=wait"
sup_agent_start

sup_wait_boots 1 || sup_fail "the guest did not boot"
rv_wait_for '^RVTEST wait' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not finish its boot"
pid1=$(sup_status vm.qemu_pid)
[[ $pid1 =~ ^[1-9][0-9]*$ ]] || sup_fail "status shows no QEMU pid: '$pid1'"
rv_log "killing QEMU $pid1 with SIGKILL"
kill -KILL "$pid1"

deadline=$((SECONDS + 60))
pid2=
while ((SECONDS < deadline)); do
  p=$(sup_status vm.qemu_pid 2>/dev/null) || p=0
  if [[ $p =~ ^[1-9][0-9]*$ && $p != "$pid1" ]]; then pid2=$p; break; fi
  sleep 0.5   # bounded poll of the agent's answer
done
[[ -n $pid2 ]] || sup_fail "no new QEMU within 60 s of killing $pid1"
! sup_alive "$pid1" || sup_fail "the killed QEMU $pid1 is still there"
sup_alive "$pid2" || sup_fail "the new QEMU $pid2 is not running"
sup_alive "$SUP_AGENT_PID" || sup_fail "the agent died when QEMU was killed"
rv_log "new QEMU $pid2"

sup_wait_boots 2 || sup_fail "the guest did not boot in the new QEMU (no 'RVTEST boots n=2')"
[[ $(sup_record_pid) == "$pid2" ]] || sup_fail "qemu.json names $(sup_record_pid), not the new QEMU $pid2"
starts=$(sup_status vm.qemu_starts)
[[ $starts == 2 ]] || sup_fail "status counts $starts QEMU start(s), want 2"
sup_wait_status vm.state running 60 || sup_fail "the VM is not 'running' in the new QEMU"

sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
rv_pass "QEMU $pid1 killed: new QEMU $pid2 started by the agent, the guest booted again, agent up"
