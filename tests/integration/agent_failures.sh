#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# agent_failures: READY=1 and WATCHDOG=1 reach systemd whatever the VM does; 5 quick QEMU failures stop the restarts until `vm start`; a lost QMP connection is made again; a frozen QEMU is noticed and `vm reset` fails after its deadline.
#
# Usage (root): tests/integration/agent_failures.sh   (meson: meson test -C BUILD agent_failures)
#
# The agent runs with NOTIFY_SOCKET (a datagram socket this test listens on) and
# WATCHDOG_USEC=4000000. Asserted:
#   1. paths.qemu names a program that does not exist yet: READY=1 still comes (the agent is up
#      and answering) and the start fails; then a wrapper that exits 1 (while a flag file
#      exists) takes that name: after 5 failures in a row (both kinds counted) the agent says
#      "not restarting", stays up, status and STATUS= say the VM failed, it never ran;
#   2. flag removed, `vm start` answers once the guest runs; READY=1 came before STATUS=VM running;
#   3. the agent's QMP connection is shut down from outside (a copy of its fd taken with
#      pidfd_getfd, then shutdown(2)): the agent logs the loss and connects again; the guest
#      goes on (same QEMU, same boot, heartbeats go on) and QMP works (a screenshot);
#   4. QEMU frozen with SIGSTOP: status answers at once and shows qmp_answering false; `vm
#      reset` is answered with an error after its deadline, not "VM reset"; after SIGCONT the
#      agent logs that QEMU answers again and status shows it;
#   5. WATCHDOG=1 came at least every 3 s through all of it; SIGTERM: exit 0.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"
rv_require ss

bin=$(rv_tmpdir)
flag=$bin/fail
cat >"$bin/qemu.wrapper" <<EOF
#!/bin/bash
# Test wrapper: fails like a broken QEMU while $flag exists, else is QEMU.
if [[ -e $flag ]]; then echo "rvtest wrapper: failing on purpose" >&2; exit 1; fi
exec qemu-system-x86_64 "\$@"
EOF
chmod 0755 "$bin/qemu.wrapper"

SUP_NOTIFY=1
# shutdown_timeout: the last stop may find the guest rebooting (the late reset), deaf to ACPI.
sup_setup "rvtest.heartbeat=2 rvtest.final=wait" "qemu = \"$bin/qemu\"
[supervisor]
shutdown_timeout = \"5s\""

# notify_index PATTERN: line number of the first notify message matching PATTERN (0: none).
notify_index() { grep -n -E -- "$1" "$SUP_NOTIFY_LOG" | head -n 1 | cut -d: -f1 || true; }

# --- 1+2: QEMU missing, then failing: 5 in a row -------------------------------------------------
t_start=$(sup_now)
sup_agent_start
rv_wait_for 'READY=1' "$SUP_NOTIFY_LOG" 30 || sup_fail "no READY=1 on NOTIFY_SOCKET"
rv_wait_for 'cannot start QEMU' "$SUP_AGENT_LOG" 30 || sup_fail "the missing QEMU was not logged"
# Now a QEMU that exits 1 (the wrapper, with its flag) takes the missing one's place.
touch "$flag"
mv -f "$bin/qemu.wrapper" "$bin/qemu"
rv_wait_for 'times in a row: not restarting it' "$SUP_AGENT_LOG" 90 || sup_fail "the failing starts were not given up"
spawned=$(rv_count 'cannot start QEMU' "$SUP_AGENT_LOG")
exited=$(rv_count 'QEMU ended unexpectedly \(exited with status 1\)' "$SUP_AGENT_LOG")
((spawned >= 1 && exited >= 1 && spawned + exited == 5)) \
  || sup_fail "$spawned failed starts and $exited QEMU exits (status 1) logged, want 5 in all, each kind at least once"
sup_wait_status vm.state failed 10 || sup_fail "status does not show the VM failed"
(($(sup_status vm.qemu_starts) == 5)) || sup_fail "status counts $(sup_status vm.qemu_starts) QEMU starts, want 5"
rv_wait_for 'STATUS=VM failed' "$SUP_NOTIFY_LOG" 10 || sup_fail "no STATUS=VM failed on NOTIFY_SOCKET"
[[ $(notify_index 'STATUS=VM running') == "" ]] || sup_fail "the VM ran although QEMU failed"
gap=$(sup_watchdog_gap "$t_start")
python3 -c "import sys; sys.exit(0 if float('$gap') < 3.0 else 1)" || sup_fail "WATCHDOG=1 stopped for $gap s"
sup_alive "$SUP_AGENT_PID" || sup_fail "the agent ended after the failed starts"
rv_pass "QEMU missing ($spawned failed starts), then exiting 1 ($exited times): READY=1 sent anyway, 'not restarting' after 5, VM failed (STATUS=VM failed), the agent stays up, watchdog fed (longest gap $gap s)"

rm -f "$flag"
out=$(sup_rescuevm vm start 2>&1) || sup_fail "vm start after the failures: $out"
[[ $out == *"guest is running"* ]] || sup_fail "vm start answered: $out"
sup_wait_boots 1 || sup_fail "the guest did not boot after vm start"
ready=$(notify_index 'READY=1')
running=$(notify_index 'STATUS=VM running')
if [[ -z $ready || -z $running ]] || ((ready > running)); then
  sup_fail "READY=1 (line $ready) did not come before STATUS=VM running (line $running)"
fi
rv_pass "vm start after 'not restarting' brought the VM back; READY=1 came before the VM ran (notify lines $ready < $running)"

# --- 3: QMP connection cut from outside --------------------------------------------------------
rv_wait_for_count 2 '^RVTEST alive ' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "no heartbeat from the guest"
qemu_pid=$(sup_status vm.qemu_pid)
boot_id=$(tr -d '\r' <"$SUP_CONSOLE" | grep -a '^RVTEST boot ' | tail -n 1 | sed -n 's/.*boot_id=\([^ ]*\).*/\1/p')
fd=$(sup_cut_qmp "$qemu_pid")
rv_log "shut down the agent's QMP fd $fd (QEMU $qemu_pid)"
rv_wait_for 'lost the QMP connection to QEMU; reconnecting' "$SUP_AGENT_LOG" 20 || sup_fail "the agent did not notice the QMP connection ending"
rv_wait_for 'QMP connection to QEMU made again' "$SUP_AGENT_LOG" 60 || sup_fail "the agent did not connect to QMP again"
beats=$(rv_count '^RVTEST alive ' "$SUP_CONSOLE")
rv_wait_for_count $((beats + 2)) '^RVTEST alive ' "$SUP_CONSOLE" 60 || sup_fail "the guest's heartbeat stopped after the QMP loss"
last=$(tr -d '\r' <"$SUP_CONSOLE" | grep -a '^RVTEST alive ' | tail -n 1)
[[ $last == *"boot_id=$boot_id "* ]] || sup_fail "the guest rebooted: $last (boot $boot_id)"
[[ $(sup_status vm.qemu_pid) == "$qemu_pid" && $(sup_status vm.state) == running ]] \
  || sup_fail "after the QMP loss: QEMU $(sup_status vm.qemu_pid), VM $(sup_status vm.state)"
out=$(sup_rescuevm vm screenshot "$SUP_TMP/after-reconnect.ppm" 2>&1) || sup_fail "no screenshot after the reconnect: $out"
[[ $(sup_image_magic "$SUP_TMP/after-reconnect.ppm") == "ppm "* ]] || sup_fail "the screenshot after the reconnect is no PPM"
rv_pass "QMP connection shut down from outside: logged, connected again, QMP works, the guest ran on (boot $boot_id, QEMU $qemu_pid)"

# --- 4: QEMU frozen -----------------------------------------------------------------------------
unanswered=$(rv_count 'QEMU does not answer on QMP' "$SUP_AGENT_LOG")
restored=$(rv_count 'QEMU answers on QMP again' "$SUP_AGENT_LOG")
kill -STOP "$qemu_pid"
rv_cleanup_add "kill -CONT $qemu_pid 2>/dev/null"
rv_wait_for_count $((unanswered + 1)) 'QEMU does not answer on QMP' "$SUP_AGENT_LOG" 30 || { kill -CONT "$qemu_pid"; sup_fail "a frozen QEMU was not noticed"; }
t0=$(date +%s.%N)
answer=$(sup_status vm.qmp_answering)
t1=$(date +%s.%N)
[[ $answer == False ]] || { kill -CONT "$qemu_pid"; sup_fail "status shows qmp_answering=$answer with QEMU frozen"; }
python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 1.0 else 1)" || { kill -CONT "$qemu_pid"; sup_fail "status took more than 1 s with QEMU frozen"; }
s0=$SECONDS
rc=0
out=$(sup_rescuevm vm reset 2>&1) || rc=$?
took=$((SECONDS - s0))
kill -CONT "$qemu_pid"
[[ $rc == 1 && $out != *"VM reset"* && $out == *"may still carry it out"* ]] \
  || sup_fail "vm reset with QEMU frozen: exit $rc: $out (want an error saying QEMU may still do it)"
((took >= 8)) || sup_fail "vm reset with QEMU frozen failed after $took s, before QEMU's deadline: $out"
rv_pass "QEMU frozen: status answered at once with qmp_answering false; vm reset answered after $took s: $out"

rv_wait_for_count $((restored + 1)) 'QEMU answers on QMP again' "$SUP_AGENT_LOG" 30 || sup_fail "the agent did not notice QEMU answering again"
sup_wait_status vm.qmp_answering True 20 || sup_fail "status does not show QMP answering after SIGCONT"
[[ $(sup_status vm.qemu_pid) == "$qemu_pid" ]] || sup_fail "another QEMU after SIGCONT"
# The unanswered system_reset was in QEMU's socket: QEMU carries it out once it runs again.
late=$(rv_wait_for_count 1 'event RESET .*"reason":"host-qmp-system-reset"' "$SUP_AGENT_LOG" 10 && echo "QEMU carried out the late reset" || echo "no late reset")
rv_pass "after SIGCONT: 'QEMU answers on QMP again', status shows it, same QEMU $qemu_pid ($late, as the answer warned)"

gap=$(sup_watchdog_gap "$t_start")
python3 -c "import sys; sys.exit(0 if float('$gap') < 3.0 else 1)" || sup_fail "WATCHDOG=1 stopped for $gap s"
sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
rv_pass "WATCHDOG=1 every 2 s through QEMU failures, vm start, the QMP reconnect and a frozen QEMU (longest gap $gap s over the whole test); agent exit 0"
