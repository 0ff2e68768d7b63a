#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `rescuevm vm console` through ptys: typed commands run in the guest's shell on COM1, one console has the keyboard, Ctrl-] detaches, the guest is unaffected, the bounded log rotates under a flood, the agent's log lines wait while a console holds its terminal.
#
# Usage (root): tests/integration/guest_console.sh   (meson: meson test -C BUILD guest_console)
#
# The test guest floods its console (rvtest.flood=393216: 6144 numbered 64-byte lines), then
# runs a shell on ttyS0 (rvtest.console=shell). guest.console_log_size is 64KiB. The agent's
# stderr is a pty (console_driver.py pty-sink copies it to the agent log), so the agent logs to a
# terminal, as it does on the serial console. Asserted:
#   - rotation: guest-console.log and guest-console.log.1 are each at most 64 KiB; together they
#     end with the flood's last lines, numbered without a gap or a repeat (no byte lost or doubled
#     by the agent), then "RVTEST flood done"; status counts at least the flood's bytes;
#   - console_driver.py interactive: typed commands run in the guest and their output comes back;
#     a second console is read-only (what it types never reaches the guest) and sees the output;
#     --force takes the keyboard (the former one is told); Ctrl-] detaches with status 0,
#     SIGTERM and SIGHUP end it; each time the pty's termios is as before; a new console still
#     works afterwards (the guest is unaffected); `vm console --last` prints printable lines;
#   - what was typed is in the guest console log too (42rvsum), what the read-only one typed is not;
#   - console_driver.py hold: a console on the agent's own terminal holds the agent's log lines
#     (a screenshot's log line does not appear while it is attached) and they come after it;
#   - the VM kept running the same boot throughout (one "RVTEST boot" line, VM running);
#   - console_driver.py agent-ends: SIGTERM to the agent with a console attached: the console
#     shows the guest's "RVTEST acpi-powerdown", then ends with status 1 and the reason, the
#     terminal restored; the agent exits 0 and removes console.sock.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

DRIVER=$RV_LIB_DIR/console_driver.py
FLOOD=393216
LIMIT=65536

sup_setup "rvtest.flood=$FLOOD rvtest.console=shell"
# A small bound, from the kernel command line the test gives the agent (overrides win over the file).
echo "rescuevm.guest.console_log_size=64KiB" >"$SUP_CMDLINE"
export RV_CONSOLE_CMD
RV_CONSOLE_CMD=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \
  "$RESCUEVM" --config "$SUP_CONF" --kernel-cmdline "$SUP_CMDLINE")

# The agent logs to a terminal, as on the host's serial console.
python3 "$DRIVER" pty-sink "$SUP_TMP/pty" "$SUP_AGENT_LOG" &
sink=$!
rv_cleanup_kill "$sink"
for ((i = 0; i < 50; i++)); do [[ -s $SUP_TMP/pty ]] && break; sleep 0.1; done
slave=$(cat "$SUP_TMP/pty") || rv_fail "no pty from console_driver.py pty-sink"
echo "---- agent started $(date +%T) on $slave" >>"$SUP_AGENT_LOG"
"$RESCUEVM" --config "$SUP_CONF" --kernel-cmdline "$SUP_CMDLINE" --log-level debug run >"$slave" 2>&1 </dev/null &
SUP_AGENT_PID=$!
rv_cleanup_kill "$SUP_AGENT_PID"
sup_wait_status vm.state running 120 || sup_fail "the VM did not start"

console=$SUP_RT/guest-console.log
previous=$SUP_RT/guest-console.log.1
rv_wait_for '^RVTEST console shell' "$console" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest's shell did not start"

# --- the bounded log --------------------------------------------------------------------------
[[ -f $previous ]] || sup_fail "no $previous: the log did not rotate under a $FLOOD-byte flood"
size=$(stat -c %s "$console") prev_size=$(stat -c %s "$previous")
((size <= LIMIT && prev_size <= LIMIT)) || sup_fail "log sizes $size and $prev_size, want each <= $LIMIT"
python3 - "$previous" "$console" "$FLOOD" <<'EOF' || sup_fail "the flood's lines in the rotated log are not contiguous"
import re, sys
data = open(sys.argv[1], "rb").read() + open(sys.argv[2], "rb").read()
last = int(sys.argv[3]) // 64
numbers = [int(n) for n in re.findall(rb"^rvflood (\d{9}) ", data, re.M)]
if not numbers or numbers[-1] != last:
    sys.exit(f"the last flood line is {numbers[-1] if numbers else None}, want {last}")
if numbers != list(range(numbers[0], last + 1)):
    sys.exit(f"gaps or repeats between {numbers[0]} and {last}")
if not re.search(rb"^RVTEST flood done bytes=" + sys.argv[3].encode(), data, re.M):
    sys.exit("no 'RVTEST flood done' after the flood")
print(f"  flood lines {numbers[0]}..{last} contiguous in the two files", file=sys.stderr)
EOF
bytes=$(sup_status guest.console.bytes)
((bytes >= FLOOD)) || sup_fail "status says the guest wrote $bytes bytes, want >= $FLOOD"
rv_log "log rotated: .1 $prev_size bytes, current $size bytes; $bytes bytes seen"

# --- interactive ------------------------------------------------------------------------------
python3 "$DRIVER" interactive || sup_fail "vm console (interactive) failed"
grep -a -q '42rvsum' "$console" || sup_fail "the guest's answer to a typed command is not in the log"
! grep -a -q '25ro' "$console" "$previous" || sup_fail "what the read-only console typed reached the guest"
grep -a -q 'attached to the guest console (with the keyboard)' "$SUP_AGENT_LOG" \
  || sup_fail "the agent did not log the attach"

# --- the agent's log lines and an attached console on the same terminal ----------------------------
python3 "$DRIVER" hold "$slave" "$SUP_AGENT_LOG" "$SUP_RT" || sup_fail "the agent's log lines were not held"

[[ $(sup_status vm.state) == running ]] || sup_fail "the VM is not running any more"
(($(rv_count '^RVTEST boot ' "$console") + $(rv_count '^RVTEST boot ' "$previous") <= 1)) \
  || sup_fail "the guest booted again"
# --- the agent stops while a console is attached ------------------------------------------------
python3 "$DRIVER" agent-ends "$SUP_AGENT_PID" || sup_fail "a console attached while the agent stopped"
SUP_AGENT_RC=0
wait "$SUP_AGENT_PID" || SUP_AGENT_RC=$?
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
[[ ! -e $SUP_RT/console.sock ]] || sup_fail "console.sock left behind"
rv_pass "log rotated at $LIMIT bytes without loss; typed commands ran; one keyboard; Ctrl-]/SIGTERM/SIGHUP/the agent ending detach and restore the tty; agent log held while attached"
