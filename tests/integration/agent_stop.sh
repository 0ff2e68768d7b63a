#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# agent_stop: `vm resume|stop|start|powerdown` answered after QEMU acted; a first SIGTERM during a power-down leaves the guest its time; supervisor.max_session warns, then stops with ACPI first, and a SIGTERM during that power-down does not cut it short.
#
# Usage (root): tests/integration/agent_stop.sh   (meson: meson test -C BUILD agent_stop)
#
# The test guest takes 5 s to power off after the ACPI button (rvtest.acpi_delay=5), as Windows
# takes its time. Two agents run on the same disk (its boot counter goes on across them):
#   1. `vm resume` of a running VM is refused; `vm stop`: the guest powers off on the ACPI
#      button, QEMU ends, the VM is "off" and the agent stays; a second `vm stop` is refused;
#      `vm start` answers once the guest runs again (a new QEMU); `vm powerdown`, then SIGTERM
#      while the guest is still shutting down: the agent waits, the guest powers off by itself
#      (SHUTDOWN guest-shutdown), exit 0.
#   2. supervisor.max_session = "40s": the half-way warning, then the ACPI button at the end; a
#      SIGTERM while the guest shuts down is logged and waits (it is the first one; the session
#      limit is no SIGTERM); the guest powers off by itself; the agent ends with 0.
# A second SIGTERM cutting a power-down short: agent_control.sh (its last part). `vm reset`:
# agent_control.sh (5 resets answered and carried out) and agent_panic.sh (a reset reboots a
# guest left paused, in the same QEMU).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

sup_setup "rvtest.acpi_delay=5 rvtest.final=wait" '[supervisor]
shutdown_timeout = "90s"'

# vm_cmd ARGS...: `rescuevm vm ARGS`; sets VM_OUT (stdout+stderr) and VM_RC.
vm_cmd() {
  VM_RC=0
  VM_OUT=$(sup_rescuevm vm "$@" 2>&1) || VM_RC=$?
  rv_log "vm $*: exit $VM_RC: $VM_OUT"
}
qemu_alive_for_rt() { [[ -n $(sup_qemu_pids) ]]; }

# --- 1: resume refused, vm stop -> off -> vm start, vm powerdown + one SIGTERM ----------------
sup_agent_start
sup_wait_boots 1 || sup_fail "the guest did not boot"
rv_wait_for '^RVTEST ready' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not get ready"
pid1=$(sup_status vm.qemu_pid)

vm_cmd resume
[[ $VM_RC == 1 && $VM_OUT == *"nothing to resume"* ]] || sup_fail "vm resume of a running VM: want a refusal, got $VM_RC: $VM_OUT"
rv_pass "vm resume of a running VM is refused: $VM_OUT"

vm_cmd stop
[[ $VM_RC == 0 && $VM_OUT == *"ACPI power button sent"* ]] || sup_fail "vm stop: got $VM_RC: $VM_OUT"
sup_wait_status vm.state off 60 || sup_fail "the VM did not go off after vm stop"
(($(rv_count '^RVTEST acpi-powerdown' "$SUP_CONSOLE") == 1)) || sup_fail "the guest did not power off by itself on vm stop"
grep -a -q 'event SHUTDOWN .*"reason":"guest-shutdown"' "$SUP_AGENT_LOG" || sup_fail "QEMU did not see the guest's own poweroff on vm stop"
! sup_alive "$pid1" || sup_fail "QEMU $pid1 still runs with the VM off"
sup_alive "$SUP_AGENT_PID" || sup_fail "the agent ended on vm stop"
[[ $(sup_status vm.qemu_pid) == 0 ]] || sup_fail "status shows a QEMU pid with the VM off"
vm_cmd stop
[[ $VM_RC == 1 && $VM_OUT == *"nothing to stop"* ]] || sup_fail "vm stop of an off VM: want a refusal, got $VM_RC: $VM_OUT"
rv_pass "vm stop: the guest powered off on the ACPI button (after its 5 s), QEMU ended, the agent stays with the VM off; a second vm stop is refused"

vm_cmd start
[[ $VM_RC == 0 && $VM_OUT == *"guest is running"* ]] || sup_fail "vm start: want 'the guest is running', got $VM_RC: $VM_OUT"
pid2=$(sup_status vm.qemu_pid)
[[ $pid2 =~ ^[1-9][0-9]*$ && $pid2 != "$pid1" ]] || sup_fail "vm start: QEMU pid '$pid2' (the old one was $pid1)"
sup_wait_boots 2 || sup_fail "the guest did not boot after vm start"
rv_wait_for_count 2 '^RVTEST acpi-listen' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest does not watch the power button"
rv_pass "vm start: answered once the guest ran, in a new QEMU $pid2"

vm_cmd powerdown
[[ $VM_RC == 0 && $VM_OUT == *"ACPI power button sent"* ]] || sup_fail "vm powerdown: got $VM_RC: $VM_OUT"
[[ $(sup_status vm.state) == stopping ]] || sup_fail "after vm powerdown the VM is $(sup_status vm.state), not stopping"
rv_wait_for_count 2 '^RVTEST acpi-button' "$SUP_CONSOLE" 30 || sup_fail "the guest never saw the power button"
kill -TERM "$SUP_AGENT_PID"
rv_wait_for 'already powering down; waiting up to 90 s' "$SUP_AGENT_LOG" 10 \
  || sup_fail "the first SIGTERM during vm powerdown did not say it waits for the guest"
sup_alive "$pid2" || sup_fail "QEMU $pid2 ended at once on the first SIGTERM during vm powerdown"
(($(rv_count '^RVTEST acpi-powerdown' "$SUP_CONSOLE") == 1)) || sup_fail "the guest finished before the check: the test proves nothing"
rc=0
wait "$SUP_AGENT_PID" || rc=$?
[[ $rc == 0 ]] || sup_fail "the agent exited $rc, want 0"
(($(rv_count '^RVTEST acpi-powerdown' "$SUP_CONSOLE") == 2)) || sup_fail "the guest did not finish its power-down"
(($(rv_count 'event SHUTDOWN .*"reason":"guest-shutdown"' "$SUP_AGENT_LOG") == 2)) \
  || sup_fail "QEMU was ended before the guest powered off (no second SHUTDOWN guest-shutdown)"
! grep -a -q 'not waiting for the guest any longer' "$SUP_AGENT_LOG" || sup_fail "one SIGTERM cut the power-down short"
! sup_alive "$pid2" || sup_fail "QEMU $pid2 still runs after the agent ended"
rv_pass "vm powerdown + one SIGTERM: QEMU lived on while the guest took its 5 s, the guest powered itself off, agent exit 0"

# --- 2: supervisor.max_session, with a SIGTERM during its power-down ----------------------------
# 40 s from the agent's start: time for the guest to boot and watch the button under TCG (~15 s).
echo 'max_session = "40s"' >>"$SUP_CONF"
sup_agent_start
start=$SECONDS
sup_wait_boots 3 || sup_fail "the guest did not boot under the second agent"
rv_wait_for_count 3 '^RVTEST acpi-listen' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest does not watch the power button"
grep -a -q 'session limit reached' "$SUP_AGENT_LOG" \
  && sup_fail "the session ended before the guest watched its power button ($((SECONDS - start)) s): the machine is too slow for this test"
pid3=$(sup_status vm.qemu_pid)
rv_wait_for 'session limit \(supervisor.max_session\): the VM will be powered down in 20 s' "$SUP_AGENT_LOG" 60 \
  || sup_fail "no warning half way through a 40 s session"
rv_wait_for_count 3 '^RVTEST acpi-button' "$SUP_CONSOLE" 60 || sup_fail "the guest never saw the power button at the session end"
((SECONDS - start >= 35)) || sup_fail "the session ended after $((SECONDS - start)) s, before its 40 s"
grep -a -q 'session limit reached (supervisor.max_session): asking the guest to power down (ACPI power button)' \
  "$SUP_AGENT_LOG" || sup_fail "the session end did not press the ACPI button first"
kill -TERM "$SUP_AGENT_PID"
rv_wait_for 'stop requested \(SIGTERM/SIGINT\): the guest is already powering down; waiting for it' "$SUP_AGENT_LOG" 10 \
  || sup_fail "a SIGTERM during the session end's power-down did not say it waits for the guest"
sup_alive "$pid3" || sup_fail "QEMU $pid3 ended at once on a SIGTERM during the session end's power-down"
rc=0
wait "$SUP_AGENT_PID" || rc=$?
[[ $rc == 0 ]] || sup_fail "the agent exited $rc at the end of the session, want 0"
(($(rv_count '^RVTEST acpi-powerdown' "$SUP_CONSOLE") == 3)) || sup_fail "the guest did not power off by itself at the session end"
(($(rv_count 'event SHUTDOWN .*"reason":"guest-shutdown"' "$SUP_AGENT_LOG") == 3)) \
  || sup_fail "QEMU did not see the guest's own poweroff at the session end"
! grep -a -q 'not waiting for the guest any longer' "$SUP_AGENT_LOG" || sup_fail "the SIGTERM cut the session end's power-down short"
! qemu_alive_for_rt || sup_fail "a QEMU still runs on $SUP_RT"
rv_pass "max_session 40 s: warned half way, ACPI at the end, a SIGTERM during the power-down waited, the guest powered off by itself, agent exit 0 after $((SECONDS - start)) s"
