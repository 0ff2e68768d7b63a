#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `rescuevm run` on SIGTERM: the guest gets the ACPI power button and powers off before QEMU ends; the agent exits 0 and leaves nothing running and a clean runtime_dir.
#
# Usage (root): tests/integration/supervisor_sigterm.sh   (meson: meson test -C BUILD supervisor_sigterm)
#
# The test guest stays up (rvtest.final=wait) and watches the power button ("RVTEST
# acpi-listen"). After "RVTEST wait", SIGTERM goes to the agent. Asserted:
#   - the agent exits with status 0;
#   - the guest console shows "RVTEST acpi-powerdown" (the guest saw the button and powered off);
#   - QEMU reported SHUTDOWN with reason guest-shutdown (the agent's debug log of QMP events):
#     the guest ended the VM, QEMU was not killed first;
#   - no process whose command line names the runtime_dir is left (pgrep -f);
#   - runtime_dir holds no socket, no qemu.json, no overlay, no UEFI vars, no config drive;
#     the logs (guest-console.log, qemu.log) and disk-signatures.json may stay.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

sup_setup "rvtest.final=wait"
sup_agent_start

sup_wait_boots 1 || sup_fail "the guest did not boot"
rv_wait_for '^RVTEST acpi-listen' "$SUP_CONSOLE" 10 || sup_fail "the guest does not watch the power button"
rv_wait_for '^RVTEST wait' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not finish its boot"
qemu_pid=$(sup_status vm.qemu_pid)
rv_log "guest up in QEMU $qemu_pid; SIGTERM to the agent $SUP_AGENT_PID"

sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
rv_wait_for '^RVTEST acpi-powerdown' "$SUP_CONSOLE" 1 || sup_fail "the guest never saw the ACPI power button"
grep -a -q 'event SHUTDOWN .*"reason":"guest-shutdown"' "$SUP_AGENT_LOG" \
  || sup_fail "QEMU did not report the guest's own poweroff (SHUTDOWN guest-shutdown) before it ended"
left=$(pgrep -f "$SUP_RT" | tr '\n' ' ' || true)
[[ -z $left ]] || sup_fail "processes still running on $SUP_RT: $left"
! sup_alive "$qemu_pid" || sup_fail "QEMU $qemu_pid is still running"

leftovers=$(find "$SUP_RT" -mindepth 1 \( -type s -o -name qemu.json -o -name '*.qcow2' -o -name '*vars*' \
  -o -name '*.iso' -o -name '*.fd' \) -printf '%f ' 2>/dev/null)
[[ -z $leftovers ]] || sup_fail "runtime_dir not cleaned: $leftovers"
rv_log "runtime_dir after the stop: $(ls -A "$SUP_RT" | tr '\n' ' ')"
rv_pass "SIGTERM: guest powered off on the ACPI button, agent exited 0, no QEMU left, runtime_dir cleaned"
