#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# agent_stop: `vm reset|resume|powerdown|stop|start` answered after QEMU acted; a first SIGTERM during a power-down leaves the guest its time, a second cuts it short; supervisor.max_session warns, then stops with ACPI first.
#
# Usage (root): tests/integration/agent_stop.sh   (meson: meson test -C BUILD agent_stop)
#
# The test guest takes 6 s to power off after the ACPI button (rvtest.acpi_delay=6), as Windows
# takes its time. Three agents run on the same disk (its boot counter goes on across them):
#   1. `vm resume` of a running VM is refused; `vm reset` answers "VM reset" and the guest boots
#      again in the same QEMU; `vm powerdown`, then SIGTERM while the guest is still shutting
#      down: the agent waits, the guest powers off by itself (SHUTDOWN guest-shutdown), exit 0.
#   2. `vm stop`: the guest powers off, QEMU ends, the VM is "off" and the agent stays;
#      `vm start` answers once the guest runs again (a new QEMU); `vm stop`, then two SIGTERMs:
#      the second one quits QEMU before the guest finished (SHUTDOWN host-qmp-quit), exit 0.
#   3. supervisor.max_session = "60s": the half-way warning, then the ACPI button at the end
#      and the guest's own poweroff; the agent ends by itself with 0.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

sup_setup "rvtest.heartbeat=2 rvtest.acpi_delay=6 rvtest.final=wait" '[supervisor]
shutdown_timeout = "90s"'

# vm_cmd ARGS...: `rescuevm vm ARGS`; sets VM_OUT (stdout+stderr) and VM_RC.
vm_cmd() {
  VM_RC=0
  VM_OUT=$(sup_rescuevm vm "$@" 2>&1) || VM_RC=$?
  rv_log "vm $*: exit $VM_RC: $VM_OUT"
}
qemu_alive_for_rt() { [[ -n $(sup_qemu_pids) ]]; }

# --- 1: reset, resume refused, powerdown + one SIGTERM --------------------------------------
sup_agent_start
sup_wait_boots 1 || sup_fail "the guest did not boot"
rv_wait_for '^RVTEST ready' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not get ready"
pid1=$(sup_status vm.qemu_pid)

vm_cmd resume
[[ $VM_RC == 1 && $VM_OUT == *"nothing to resume"* ]] || sup_fail "vm resume of a running VM: want a refusal, got $VM_RC: $VM_OUT"
rv_pass "vm resume of a running VM is refused: $VM_OUT"

vm_cmd reset
[[ $VM_RC == 0 && $VM_OUT == "VM reset" ]] || sup_fail "vm reset: want exit 0 and 'VM reset', got $VM_RC: $VM_OUT"
grep -a -q 'event RESET .*"reason":"host-qmp-system-reset"' "$SUP_AGENT_LOG" \
  || sup_fail "vm reset answered before QEMU reset the guest (no RESET host-qmp-system-reset event in the log)"
sup_wait_boots 2 || sup_fail "the guest did not boot again after vm reset"
rv_wait_for_count 2 '^RVTEST acpi-listen' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the rebooted guest does not watch the power button"
[[ $(sup_status vm.qemu_pid) == "$pid1" ]] || sup_fail "vm reset started another QEMU"
[[ $(sup_status vm.boots) == 2 ]] || sup_fail "status counts $(sup_status vm.boots) boots after vm reset, want 2"
rv_pass "vm reset: answered 'VM reset' after QEMU's RESET, the guest booted again in the same QEMU $pid1"

vm_cmd powerdown
[[ $VM_RC == 0 && $VM_OUT == *"ACPI power button sent"* ]] || sup_fail "vm powerdown: got $VM_RC: $VM_OUT"
[[ $(sup_status vm.state) == stopping ]] || sup_fail "after vm powerdown the VM is $(sup_status vm.state), not stopping"
rv_wait_for '^RVTEST acpi-button' "$SUP_CONSOLE" 30 || sup_fail "the guest never saw the power button"
kill -TERM "$SUP_AGENT_PID"
rv_wait_for 'already powering down; waiting up to 90 s' "$SUP_AGENT_LOG" 10 \
  || sup_fail "the first SIGTERM during vm powerdown did not say it waits for the guest"
sup_alive "$pid1" || sup_fail "QEMU $pid1 ended at once on the first SIGTERM during vm powerdown"
rv_wait_for '^RVTEST acpi-powerdown' "$SUP_CONSOLE" 30 || sup_fail "the guest did not finish its power-down"
rc=0
wait "$SUP_AGENT_PID" || rc=$?
[[ $rc == 0 ]] || sup_fail "the agent exited $rc, want 0"
grep -a -q 'event SHUTDOWN .*"reason":"guest-shutdown"' "$SUP_AGENT_LOG" \
  || sup_fail "QEMU was ended before the guest powered off (no SHUTDOWN guest-shutdown)"
! grep -a -q 'not waiting for the guest any longer' "$SUP_AGENT_LOG" || sup_fail "one SIGTERM cut the power-down short"
! sup_alive "$pid1" || sup_fail "QEMU $pid1 still runs after the agent ended"
rv_pass "vm powerdown + one SIGTERM: QEMU lived on while the guest took its 6 s, the guest powered itself off, agent exit 0"

# --- 2: vm stop -> off -> vm start, then vm stop + two SIGTERMs -------------------------------
sup_agent_start
sup_wait_boots 3 || sup_fail "the guest did not boot under the second agent"
rv_wait_for_count 3 '^RVTEST acpi-listen' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest does not watch the power button"
pid2=$(sup_status vm.qemu_pid)
vm_cmd stop
[[ $VM_RC == 0 && $VM_OUT == *"ACPI power button sent"* ]] || sup_fail "vm stop: got $VM_RC: $VM_OUT"
sup_wait_status vm.state off 60 || sup_fail "the VM did not go off after vm stop"
(($(rv_count '^RVTEST acpi-powerdown' "$SUP_CONSOLE") == 2)) || sup_fail "the guest did not power off by itself on vm stop"
! sup_alive "$pid2" || sup_fail "QEMU $pid2 still runs with the VM off"
sup_alive "$SUP_AGENT_PID" || sup_fail "the agent ended on vm stop"
[[ $(sup_status vm.qemu_pid) == 0 ]] || sup_fail "status shows a QEMU pid with the VM off"
vm_cmd stop
[[ $VM_RC == 1 && $VM_OUT == *"nothing to stop"* ]] || sup_fail "vm stop of an off VM: want a refusal, got $VM_RC: $VM_OUT"
rv_pass "vm stop: the guest powered off on the ACPI button, QEMU ended, the agent stays with the VM off; a second vm stop is refused"

vm_cmd start
[[ $VM_RC == 0 && $VM_OUT == *"guest is running"* ]] || sup_fail "vm start: want 'the guest is running', got $VM_RC: $VM_OUT"
pid3=$(sup_status vm.qemu_pid)
[[ $pid3 =~ ^[1-9][0-9]*$ && $pid3 != "$pid2" ]] || sup_fail "vm start: QEMU pid '$pid3' (the old one was $pid2)"
sup_wait_boots 4 || sup_fail "the guest did not boot after vm start"
rv_wait_for_count 4 '^RVTEST acpi-listen' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest does not watch the power button"
rv_pass "vm start: answered once the guest ran, in a new QEMU $pid3"

vm_cmd stop
[[ $VM_RC == 0 ]] || sup_fail "vm stop: got $VM_RC: $VM_OUT"
rv_wait_for_count 3 '^RVTEST acpi-button' "$SUP_CONSOLE" 30 || sup_fail "the guest never saw the power button"
kill -TERM "$SUP_AGENT_PID"
rv_wait_for 'already powering down' "$SUP_AGENT_LOG" 10 || sup_fail "the first SIGTERM was not logged"
sup_alive "$pid3" || sup_fail "QEMU $pid3 ended on the first SIGTERM"
t0=$SECONDS
kill -TERM "$SUP_AGENT_PID"
rc=0
wait "$SUP_AGENT_PID" || rc=$?
[[ $rc == 0 ]] || sup_fail "the agent exited $rc after two SIGTERMs, want 0"
grep -a -q 'again: not waiting for the guest any longer; stopping QEMU' "$SUP_AGENT_LOG" \
  || sup_fail "the second SIGTERM did not say it cuts the power-down short"
! sup_alive "$pid3" || sup_fail "QEMU $pid3 still runs"
(($(rv_count '^RVTEST acpi-powerdown' "$SUP_CONSOLE") == 2)) \
  || sup_fail "the guest finished its power-down: the second SIGTERM did not cut it short"
(($(rv_count 'event SHUTDOWN .*"reason":"host-qmp-quit"' "$SUP_AGENT_LOG") >= 1)) \
  || sup_fail "QEMU was not quit by the agent after the second SIGTERM"
rv_pass "vm stop + two SIGTERMs: the second quit QEMU $pid3 before the guest finished ($((SECONDS - t0)) s), agent exit 0"

# --- 3: supervisor.max_session --------------------------------------------------------------
echo 'max_session = "60s"' >>"$SUP_CONF"
sup_agent_start
start=$SECONDS
sup_wait_boots 5 || sup_fail "the guest did not boot under the third agent"
rv_wait_for 'session limit \(supervisor.max_session\): the VM will be powered down in 30 s' "$SUP_AGENT_LOG" 60 \
  || sup_fail "no warning half way through a 60 s session"
rc=0
wait "$SUP_AGENT_PID" || rc=$?
[[ $rc == 0 ]] || sup_fail "the agent exited $rc at the end of the session, want 0"
((SECONDS - start >= 55)) || sup_fail "the session ended after $((SECONDS - start)) s, before its 60 s"
grep -a -q 'session limit reached (supervisor.max_session): asking the guest to power down (ACPI power button)' \
  "$SUP_AGENT_LOG" || sup_fail "the session end did not press the ACPI button first"
(($(rv_count '^RVTEST acpi-powerdown' "$SUP_CONSOLE") == 3)) || sup_fail "the guest did not power off by itself at the session end"
(($(rv_count 'event SHUTDOWN .*"reason":"guest-shutdown"' "$SUP_AGENT_LOG") >= 3)) \
  || sup_fail "QEMU did not see the guest's own poweroff at the session end"
! qemu_alive_for_rt || sup_fail "a QEMU still runs on $SUP_RT"
rv_pass "max_session 60 s: warned half way, ACPI at the end, the guest powered off by itself, agent exit 0 after $((SECONDS - start)) s"
