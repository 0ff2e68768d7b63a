#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# agent_failures: READY=1 and WATCHDOG=1 reach systemd whatever the VM does; 5 quick QEMU failures stop the restarts until `vm start`; a lost QMP connection is made again; a frozen QEMU is noticed and `vm reset` fails after its deadline.
#
# Usage (root): tests/integration/agent_failures.sh   (meson: meson test -C BUILD agent_failures)
#
# The agent runs with NOTIFY_SOCKET (a datagram socket this test listens on) and
# WATCHDOG_USEC=4000000. Asserted:
#   1. paths.qemu names a program that does not exist: READY=1 still comes (the agent is up and
#      answering), every start fails, after 5 the agent says "not restarting" and stays up,
#      STATUS= says the VM failed, WATCHDOG=1 comes at least every 3 s; SIGTERM: exit 0.
#   2. paths.qemu is a wrapper that exits 1 while a flag file exists: READY=1 comes before
#      the VM runs; 5 QEMU exits in a row -> "not restarting", VM failed; flag removed,
#      `vm start` answers once the guest runs.
#   3. the agent's QMP connection is shut down from outside (gdb calls shutdown(2) in the
#      agent): the agent logs the loss and connects again; the guest goes on (same QEMU, same
#      boot, heartbeats go on) and QMP works (a screenshot).
#   4. QEMU frozen with SIGSTOP: status answers at once and shows qmp_answering false; `vm
#      reset` is answered with an error after its deadline, not "VM reset"; after SIGCONT the
#      agent logs that QEMU answers again and status shows it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"
rv_require gdb ss

bin=$(rv_tmpdir)
flag=$bin/fail
cat >"$bin/qemu" <<EOF
#!/bin/bash
# Test wrapper: fails like a broken QEMU while $flag exists, else is QEMU.
if [[ -e $flag ]]; then echo "rvtest wrapper: failing on purpose" >&2; exit 1; fi
exec qemu-system-x86_64 "\$@"
EOF
chmod 0755 "$bin/qemu"

SUP_NOTIFY=1
sup_setup "rvtest.heartbeat=2 rvtest.final=wait" "qemu = \"/nonexistent/rvtest/qemu-system-x86_64\""

# notify_index PATTERN: line number of the first notify message matching PATTERN (0: none).
notify_index() { grep -n -E -- "$1" "$SUP_NOTIFY_LOG" | head -n 1 | cut -d: -f1 || true; }

# --- 1: QEMU cannot even be started -----------------------------------------------------------
t_start=$(sup_now)
sup_agent_start
rv_wait_for 'READY=1' "$SUP_NOTIFY_LOG" 30 || sup_fail "no READY=1 on NOTIFY_SOCKET"
rv_wait_for 'times in a row: not restarting it' "$SUP_AGENT_LOG" 90 || sup_fail "the failing starts were not given up"
(($(rv_count 'cannot start QEMU' "$SUP_AGENT_LOG") == 5)) \
  || sup_fail "$(rv_count 'cannot start QEMU' "$SUP_AGENT_LOG") failed starts logged, want 5"
sup_wait_status vm.state failed 10 || sup_fail "status does not show the VM failed"
rv_wait_for 'STATUS=VM failed' "$SUP_NOTIFY_LOG" 10 || sup_fail "no STATUS=VM failed on NOTIFY_SOCKET"
gap=$(sup_watchdog_gap "$t_start")
python3 -c "import sys; sys.exit(0 if float('$gap') < 3.0 else 1)" || sup_fail "WATCHDOG=1 stopped for $gap s"
sup_alive "$SUP_AGENT_PID" || sup_fail "the agent ended after the failed starts"
sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
rv_pass "QEMU missing: READY=1 sent, 5 failed starts then 'not restarting', STATUS=VM failed, watchdog fed (longest gap $gap s), exit 0"

# --- 2: 5 quick QEMU failures, then vm start ------------------------------------------------
sed -i "s|^qemu = .*|qemu = \"$bin/qemu\"|" "$SUP_CONF"
touch "$flag"
: >"$SUP_NOTIFY_LOG"
mark=$(wc -l <"$SUP_AGENT_LOG")
t_agent2=$(sup_now)
sup_agent_start
rv_wait_for 'READY=1' "$SUP_NOTIFY_LOG" 30 || sup_fail "no READY=1 from the second agent"
rv_wait_for_count 2 'times in a row: not restarting it' "$SUP_AGENT_LOG" 90 || sup_fail "5 QEMU failures were not given up"
n=$(tail -n +"$mark" "$SUP_AGENT_LOG" | grep -a -c 'QEMU ended unexpectedly (exited with status 1)' || true)
((n == 5)) || sup_fail "$n QEMU failures (exited with status 1) logged, want 5"
sup_wait_status vm.state failed 10 || sup_fail "status does not show the VM failed"
(($(sup_status vm.qemu_starts) == 5)) || sup_fail "status counts $(sup_status vm.qemu_starts) QEMU starts, want 5"
[[ $(notify_index 'STATUS=VM running') == "" ]] || sup_fail "the VM ran although QEMU failed"
rv_pass "5 quick QEMU failures (exited with status 1): 'not restarting', VM failed, the agent stays up; READY=1 was sent anyway"

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
t_gdb=$(sup_now)
fd=$(sup_cut_qmp "$qemu_pid")
t_after_gdb=$(sup_now)
rv_log "shut down the agent's QMP fd $fd (QEMU $qemu_pid); gdb held the agent stopped for up to $(python3 -c "print('%.1f' % ($t_after_gdb - $t_gdb))") s"
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
late=$(rv_wait_for_count 1 'event RESET .*"reason":"host-qmp-system-reset"' "$SUP_AGENT_LOG" 20 && echo "QEMU carried out the late reset" || echo "no late reset")
rv_pass "after SIGCONT: 'QEMU answers on QMP again', status shows it, same QEMU $qemu_pid ($late, as the answer warned)"

# gdb stops the whole agent while it attaches: that window is the test's own doing.
gap1=$(sup_watchdog_gap "$t_agent2" "$t_gdb")
gap2=$(sup_watchdog_gap "$t_after_gdb")
python3 -c "import sys; sys.exit(0 if max(float('$gap1'), float('$gap2')) < 3.0 else 1)" \
  || sup_fail "WATCHDOG=1 stopped for $gap1 s (before gdb) / $gap2 s (after gdb)"
sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
rv_pass "WATCHDOG=1 every 2 s through QEMU failures, vm start, the QMP reconnect and a frozen QEMU (longest gaps $gap1 s / $gap2 s, gdb's stop of the agent excluded); agent exit 0"
