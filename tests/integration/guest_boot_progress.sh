#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Boot progress: a guest that neither writes to its serial console nor answers the guest agent is reported once, with a screenshot, and keeps running.
#
# Usage (root): tests/integration/guest_boot_progress.sh   (meson: meson test -C BUILD guest_boot_progress)
#
# The test guest boots with console=tty0 (its kernel and /init write to the screen, never to
# COM1) and no qemu-ga; supervisor.boot_progress_timeout is 20s. Asserted:
#   - the agent logs "neither written to its serial console nor answered the guest agent 20 s
#     after it started" exactly once, and saves boot-progress.ppm (a PPM image) in runtime_dir;
#   - status says boot_progress_warned, the guest console has never had output, the guest agent
#     never answered, and the VM is still running (the same QEMU) 10 s later;
#   - after `vm reset` the clock starts again: a second warning comes for the second boot.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

sup_setup "rvtest.final=wait"
sed -i 's/^append = "console=ttyS0 /append = "console=tty0 /' "$SUP_CONF"
grep -q '^append = "console=tty0 ' "$SUP_CONF" || rv_fail "could not point the guest's console away from COM1"
echo "rescuevm.supervisor.boot_progress_timeout=20s" >"$SUP_CMDLINE"
sup_agent_start
sup_wait_status vm.state running 120 || sup_fail "the VM did not start"
qemu_pid=$(sup_status vm.qemu_pid)
warning='neither written to its serial console nor answered the guest agent 20 s after it started'
rv_wait_for "$warning" "$SUP_AGENT_LOG" 90 || sup_fail "no boot-progress warning"
rv_wait_for 'screenshot of the guest without a sign of life saved to' "$SUP_AGENT_LOG" 30 \
  || sup_fail "no boot-progress screenshot"
[[ $(head -c 2 "$SUP_RT/boot-progress.ppm") == P6 ]] || sup_fail "boot-progress.ppm is not a PPM image"
[[ $(sup_status guest.boot_progress_warned) == True ]] || sup_fail "status does not say boot_progress_warned"
[[ $(sup_status guest.console.last_output_age_s) == -1 ]] || sup_fail "the guest wrote to COM1 after all"
[[ $(sup_status guest.agent.state) == "never answered" ]] || sup_fail "a guest agent answered"
sleep 10
[[ $(sup_status vm.state) == running && $(sup_status vm.qemu_pid) == "$qemu_pid" ]] \
  || sup_fail "the VM did not keep running"
(($(rv_count "$warning" "$SUP_AGENT_LOG") == 1)) || sup_fail "the warning was given more than once"

sup_rescuevm vm reset >/dev/null || sup_fail "vm reset failed"
rv_wait_for_count 2 "$warning" "$SUP_AGENT_LOG" 90 || sup_fail "no warning for the second boot"
sup_agent_stop
rv_pass "a silent guest was reported once per boot with a screenshot and kept running"
