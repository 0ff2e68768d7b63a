#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# agent_panic: a guest that crashes (pvpanic) is screenshotted and restarted in place after a growing backoff; after 5 crashes in a row it is left paused, `vm resume` cannot revive it, `vm reset` boots it again.
#
# Usage (root): tests/integration/agent_panic.sh   (meson: meson test -C BUILD agent_panic)
#
# The test guest crashes its kernel after every boot (rvtest.final=panic: echo c >
# /proc/sysrq-trigger; QEMU's pvpanic reports GUEST_PANICKED). Asserted:
#   - each crash is logged ("guest crashed: panic reported through pvpanic"), its screenshot
#     panic-N.ppm is a valid PPM of the guest's screen, and the restart is in the same QEMU
#     after 1, 2, 4, 8 s (measured between QEMU's own GUEST_PANICKED and RESET timestamps);
#   - the 5th crash in a row leaves the VM paused with the line saying so and what to do;
#     status shows paused, 5 panics, its reason; no restart follows;
#   - `vm resume` of the crashed guest is refused, pointing to `vm reset` (QEMU cannot continue
#     a panicked guest); `vm reset` answers "VM reset" and the guest boots again (6th boot);
#   - at most 5 screenshots are kept (the 6th crash reuses panic-1.ppm);
#   - SIGTERM ends the agent with 0 and QEMU with it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

sup_setup "rvtest.final=panic"
sup_agent_start

for n in 1 2 3 4 5; do
  sup_wait_boots "$n" || sup_fail "the guest did not boot the ${n}th time"
  rv_wait_for_count "$n" 'guest crashed: panic reported through pvpanic' "$SUP_AGENT_LOG" 120 \
    || sup_fail "crash $n was not logged"
done
rv_wait_for 'that is 5 crashes in a row: the VM is left paused' "$SUP_AGENT_LOG" 30 \
  || sup_fail "the 5th crash in a row did not leave the VM paused with a line saying so"
grep -a 'that is 5 crashes in a row' "$SUP_AGENT_LOG" | grep -q 'rescuevm vm reset' \
  || sup_fail "the line about the paused VM does not say what to do (vm reset)"
rv_wait_for 'screenshot of the crashed guest saved to .*/panic-5.ppm' "$SUP_AGENT_LOG" 30 \
  || sup_fail "the 5th screenshot was not saved"
qemu_pid=$(sup_status vm.qemu_pid)
[[ $(sup_status vm.state) == paused ]] || sup_fail "status shows $(sup_status vm.state) after 5 crashes, want paused"
[[ $(sup_status vm.panics) == 5 ]] || sup_fail "status counts $(sup_status vm.panics) panics, want 5"
[[ $(sup_status vm.pause_reason) == *"crashed 5 times in a row"* ]] || sup_fail "pause reason: $(sup_status vm.pause_reason)"
(($(sup_status vm.qemu_starts) == 1)) || sup_fail "the crashes were handled by starting new QEMUs"
for n in 1 2 3 4 5; do
  f=$SUP_RT/panic-$n.ppm
  [[ -f $f ]] || sup_fail "no screenshot $f"
  magic=$(sup_image_magic "$f")
  [[ $magic == "ppm "* ]] || sup_fail "$f is not a valid PPM: $magic"
done
rv_pass "5 crashes: each logged with a valid screenshot panic-1..5.ppm ($magic), restarted in QEMU $qemu_pid, then left paused"

# Backoff: QEMU's own timestamps of each GUEST_PANICKED and the RESET that restarted the guest.
python3 - "$SUP_AGENT_LOG" <<'EOF' || sup_fail "the restarts did not wait for their backoff (see above)"
import re, sys
events = []
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"event (GUEST_PANICKED|RESET) .* qemu_time=(\d+)\.(\d+)", line)
    if m:
        events.append((m.group(1), int(m.group(2)) + int(m.group(3)) / 1e6))
waits = []
for i, (name, t) in enumerate(events):
    if name != "GUEST_PANICKED":
        continue
    nxt = next((u for n, u in events[i + 1:] if n == "RESET"), None)
    waits.append(None if nxt is None else nxt - t)
print("restart after each crash (s):", ["-" if w is None else round(w, 2) for w in waits])
want = [1, 2, 4, 8]
if len(waits) < 5:
    sys.exit(f"only {len(waits)} GUEST_PANICKED events in the log")
for w, d in zip(waits, want):
    if w is None or w < d - 0.1:
        sys.exit(f"a restart came {w} s after its crash, want at least {d} s")
if waits[4] is not None:
    sys.exit("the 5th crash was followed by a restart")
EOF
rv_pass "the in-place restarts waited 1, 2, 4 and 8 s after each crash (QEMU's timestamps); none after the 5th"

out=$(sup_rescuevm vm resume 2>&1) && sup_fail "vm resume of a crashed guest said: $out"
[[ $out == *"crashed and cannot continue"* && $out == *"vm reset"* ]] || sup_fail "vm resume of a crashed guest: $out"
[[ $(sup_status vm.state) == paused ]] || sup_fail "vm resume of a crashed guest changed the state to $(sup_status vm.state)"
rv_pass "vm resume of the crashed guest is refused: $out"

out=$(sup_rescuevm vm reset 2>&1) || sup_fail "vm reset of the paused VM failed: $out"
[[ $out == "VM reset" ]] || sup_fail "vm reset answered: $out"
sup_wait_boots 6 || sup_fail "the guest did not boot again after vm reset"
[[ $(sup_status vm.qemu_pid) == "$qemu_pid" ]] || sup_fail "vm reset started another QEMU"
rv_pass "vm reset of the VM left paused: answered '$out', the guest booted a 6th time in the same QEMU"

rv_wait_for_count 6 'guest crashed: panic reported through pvpanic' "$SUP_AGENT_LOG" 120 || sup_fail "crash 6 was not logged"
rv_wait_for_count 2 'screenshot of the crashed guest saved to .*/panic-1.ppm' "$SUP_AGENT_LOG" 30 \
  || sup_fail "the 6th crash did not reuse panic-1.ppm"
shots=$(find "$SUP_RT" -name 'panic-*' | wc -l)
((shots == 5)) || sup_fail "$shots screenshot files in $SUP_RT, want 5"
grep -a 'guest crashed' "$SUP_AGENT_LOG" | tail -n 1 | grep -q 'crash 1 in a row' \
  || sup_fail "after vm reset the crash count did not start again: $(grep -a 'guest crashed' "$SUP_AGENT_LOG" | tail -n 1)"
rv_pass "6th crash after vm reset: counted as the first in a row again, its screenshot reused panic-1.ppm ($shots files kept)"

sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
! sup_alive "$qemu_pid" || sup_fail "QEMU $qemu_pid still runs after the agent stopped"
rv_pass "SIGTERM with a crashing guest: agent exit 0, QEMU gone"
