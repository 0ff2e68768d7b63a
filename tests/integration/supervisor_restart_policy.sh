#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `rescuevm run` with supervisor.on_guest_poweroff = "restart": a guest poweroff boots the guest again in the same QEMU process.
#
# Usage (root): tests/integration/supervisor_restart_policy.sh   (meson: meson test -C BUILD supervisor_restart_policy)
#
# The test guest counts its boots on the passed loop disk and powers off at once after each
# boot (rvtest.reboots=0 rvtest.final=poweroff). Asserted: "RVTEST poweroff" after the first
# boot, then "RVTEST boots n=2" (the disk's counter: a real second boot), QEMU pid in
# status --json and qemu.json unchanged and the first QEMU still alive, status vm.reboots 0
# (a poweroff is not counted as a reboot) and vm.boots at least 2; SIGTERM ends the agent with 0.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

sup_setup "rvtest.reboots=0 rvtest.final=poweroff" $'\n[supervisor]\non_guest_poweroff = "restart"'
sup_agent_start

sup_wait_boots 1 || sup_fail "the guest did not boot"
pid1=$(sup_status vm.qemu_pid)
[[ $pid1 =~ ^[1-9][0-9]*$ ]] || sup_fail "status shows no QEMU pid: '$pid1'"
rv_wait_for '^RVTEST poweroff' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not power off"
rv_log "guest powered off in QEMU $pid1"

sup_wait_boots 2 || sup_fail "the guest did not boot again after its poweroff (policy restart)"
pid2=$(sup_status vm.qemu_pid)
[[ $pid2 == "$pid1" ]] || sup_fail "the restart used a new QEMU: $pid1 -> $pid2"
[[ $(sup_record_pid) == "$pid1" ]] || sup_fail "qemu.json pid changed: $(sup_record_pid)"
sup_alive "$pid1" || sup_fail "the first QEMU ($pid1) is gone"
reboots=$(sup_status vm.reboots)
[[ $reboots == 0 ]] || sup_fail "status counts $reboots reboot(s) for a poweroff + restart, want 0"
boots=$(sup_status vm.boots)
((boots >= 2)) || sup_fail "status counts $boots boot(s), want at least 2"

sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
rv_pass "guest poweroff under policy restart booted it again in the same QEMU (pid $pid1)"
