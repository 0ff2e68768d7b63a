#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `rescuevm run` killed with SIGKILL and started again re-attaches to the running QEMU: same pid, the guest is not rebooted, status works.
#
# Usage (root): tests/integration/supervisor_reattach.sh   (meson: meson test -C BUILD supervisor_reattach)
#
# The test guest stays up and prints "RVTEST alive boot_id=... uptime=..." every 2 s
# (rvtest.heartbeat=2 rvtest.final=wait). After its boot the agent gets SIGKILL; QEMU runs on
# (its own process group). A second agent is started on the same config. Asserted: the QEMU
# pid survived the first agent; the second agent's status --json shows that same pid and
# vm.state "running"; no QEMU other than that one runs on the runtime_dir; after the
# re-attach the console shows new heartbeats with the first boot's boot_id and a larger
# uptime, and no second "RVTEST boot" line (the disk's boot counter is still 1); the
# second agent ends with 0 on SIGTERM.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

sup_setup "rvtest.heartbeat=2 rvtest.final=wait"
sup_agent_start
agent1=$SUP_AGENT_PID

sup_wait_boots 1 || sup_fail "the guest did not boot"
rv_wait_for '^RVTEST alive ' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest sent no heartbeat"
boot_id=$(tr -d '\r' <"$SUP_CONSOLE" | grep -a -m1 '^RVTEST boot ' | sed -n 's/.*boot_id=\([^ ]*\).*/\1/p')
[[ -n $boot_id ]] || sup_fail "no boot_id on the guest console"
pid1=$(sup_status vm.qemu_pid)
[[ $pid1 =~ ^[1-9][0-9]*$ ]] || sup_fail "status shows no QEMU pid: '$pid1'"
rv_log "guest boot $boot_id in QEMU $pid1; SIGKILL to agent $agent1"

kill -KILL "$agent1"
wait "$agent1" 2>/dev/null || true
sup_alive "$pid1" || sup_fail "QEMU $pid1 died with the agent"
! sup_rescuevm status >/dev/null 2>&1 || sup_fail "status still answers with the agent killed"

beats_before=$(rv_count '^RVTEST alive ' "$SUP_CONSOLE")
sup_agent_start
agent2=$SUP_AGENT_PID
sup_wait_status vm.state running 60 || sup_fail "the re-attached agent does not show the VM running"
pid2=$(sup_status vm.qemu_pid)
[[ $pid2 == "$pid1" ]] || sup_fail "the second agent shows QEMU $pid2, not the surviving $pid1"
pids=$(sup_qemu_pids | tr '\n' ' ')
[[ $pids == "$pid1 " ]] || sup_fail "QEMUs on the runtime_dir: '$pids', want only $pid1 (never a second QEMU on the same disks)"
out=$(sup_rescuevm status 2>&1) || sup_fail "rescuevm status failed after the re-attach: $out"
rv_log "agent $agent2 re-attached to QEMU $pid2"

rv_wait_for_count $((beats_before + 2)) '^RVTEST alive ' "$SUP_CONSOLE" 120 \
  || sup_fail "the guest's heartbeat stopped after the re-attach"
last=$(tr -d '\r' <"$SUP_CONSOLE" | grep -a '^RVTEST alive ' | tail -n 1)
[[ $last == *"boot_id=$boot_id "* ]] || sup_fail "the heartbeat after the re-attach is from another boot: $last (want $boot_id)"
(($(rv_count '^RVTEST boot ' "$SUP_CONSOLE") == 1)) || sup_fail "the guest booted again: $(rv_count '^RVTEST boot ' "$SUP_CONSOLE") boot lines"
(($(rv_count '^RVTEST boots n=' "$SUP_CONSOLE") == 1)) || sup_fail "the disk's boot counter moved"

sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the re-attached agent exited $SUP_AGENT_RC on SIGTERM, want 0"
rv_pass "agent SIGKILLed and restarted: same QEMU $pid1, same guest boot $boot_id still alive ($last), status works"
