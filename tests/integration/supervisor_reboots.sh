#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `rescuevm run`: two guest reboots stay in the same QEMU, a guest poweroff leaves the VM off and the agent up, `rescuevm vm start` boots it again.
#
# Usage (root): tests/integration/supervisor_reboots.sh   (meson: meson test -C BUILD supervisor_reboots)
#
# The test guest counts its boots on the passed loop disk (rvtest.boot_counter=vda), reboots
# while the counter is at most 2 (rvtest.reboots=2), then stays up 30 s (rvtest.hold=30, time
# for the test to look) and powers off (rvtest.final=poweroff). Asserted:
#   - the console shows boots n=1, 2, 3 (the disk's counter: three real boots);
#   - status --json vm.qemu_pid and qemu.json's pid are the same at the first and the third
#     boot, and the agent's log shows no second "QEMU started" (no new QEMU for a reboot);
#   - after the poweroff the agent is alive and status says vm.state "off", vm.reboots 2
#     (SeaBIOS sends several RESET events per reboot: one reboot each);
#   - `rescuevm vm start` exits 0, the guest boots a fourth time (boots n=4) and status says
#     "running" again;
#   - SIGTERM then ends the agent with status 0.
# Whether QEMU itself stays up (paused) while the VM is off is the policy's choice (today it
# quits QEMU, which releases the disks to the host); the test only logs which it was.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

sup_setup "rvtest.reboots=2 rvtest.hold=30 rvtest.final=poweroff"
sup_agent_start

sup_wait_boots 1 || sup_fail "the guest did not boot (no 'RVTEST boots n=1')"
pid1=$(sup_status vm.qemu_pid)
rec1=$(sup_record_pid)
[[ $pid1 =~ ^[1-9][0-9]*$ ]] || sup_fail "status shows no QEMU pid during the first boot: '$pid1'"
[[ $rec1 == "$pid1" ]] || sup_fail "qemu.json pid '$rec1' differs from status vm.qemu_pid $pid1"
rv_log "first boot, QEMU pid $pid1"

sup_wait_boots 2 || sup_fail "the guest did not come back after its first reboot"
sup_wait_boots 3 || sup_fail "the guest did not come back after its second reboot"
pid3=$(sup_status vm.qemu_pid)
[[ $pid3 == "$pid1" ]] || sup_fail "QEMU pid changed across guest reboots: $pid1 -> $pid3"
[[ $(sup_record_pid) == "$pid1" ]] || sup_fail "qemu.json pid changed across guest reboots: $(sup_record_pid)"
(($(rv_count 'QEMU started' "$SUP_AGENT_LOG") == 1)) || sup_fail "the agent started QEMU more than once for guest reboots"
rv_log "third boot, same QEMU pid $pid3"

rv_wait_for '^RVTEST poweroff' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not power off"
sup_wait_status vm.state off 60 || sup_fail "after the guest's poweroff the VM state is not 'off'"
sup_alive "$SUP_AGENT_PID" || sup_fail "the agent died after the guest's poweroff"
if sup_alive "$pid1"; then qemu_after="QEMU $pid1 still up (paused)"; else qemu_after="QEMU $pid1 quit"; fi
reboots=$(sup_status vm.reboots)
[[ $reboots == 2 ]] || sup_fail "status counts $reboots guest reboot(s), want 2 (a SeaBIOS reset burst is one reboot)"
(($(rv_count '^RVTEST boots n=' "$SUP_CONSOLE") == 3)) || sup_fail "the guest booted $(rv_count '^RVTEST boots n=' "$SUP_CONSOLE") times, want 3"
rv_log "guest powered off: VM off, agent $SUP_AGENT_PID alive, 2 reboots counted, $qemu_after"

out=$(sup_rescuevm vm start 2>&1) || sup_fail "rescuevm vm start failed: $out"
sup_wait_boots 4 || sup_fail "rescuevm vm start did not boot the guest again (no 'RVTEST boots n=4')"
sup_wait_status vm.state running 60 || sup_fail "after vm start the VM is not 'running'"
rv_log "vm start: fourth boot, QEMU pid $(sup_status vm.qemu_pid)"

sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
rv_pass "3 boots in one QEMU (pid $pid1) across 2 guest reboots; poweroff left the VM off and the agent up ($qemu_after); vm start booted it a 4th time"
