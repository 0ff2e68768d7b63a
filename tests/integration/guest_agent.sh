#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The guest agent channel: status shows qemu-ga's facts and SIGTERM stops the guest through guest-shutdown; a guest writing garbage on both channels (no qemu-ga) neither stalls nor grows the agent, and SIGTERM then takes the ACPI path.
#
# Usage (root): tests/integration/guest_agent.sh   (meson: meson test -C BUILD guest_agent)
#
# Run 1, rvtest.qga=1 (Debian's qemu-ga in the guest on org.qemu.guest_agent.0):
#   - `status --json` reaches guest.agent.state "answering", with os.id "rvtest", os.name
#     "rescuevm test guest", hostname "rvtest", qemu-ga's version and the guest's lo address
#     127.0.0.1/8; `status` prints the guest agent line; the agent logged the facts once;
#   - SIGTERM: the guest prints "RVTEST qga-shutdown mode=powerdown" (it was stopped through
#     guest-shutdown), never "RVTEST acpi-powerdown"; the agent exits 0.
# Run 2, rvtest.garbage=1 rvtest.console=shell, no qemu-ga: the guest writes invalid UTF-8,
# escapes, NUL, a 256 KiB line to COM1, and an unterminated command, binary bytes with 0xFF and a
# 1 MiB JSON string to the guest agent port:
#   - the guest's port writes complete ("RVTEST garbage qga-port ... done": the agent drained it);
#   - the guest agent is "never answered" (garbage is never taken for an answer);
#   - the agent's RSS stays below 64 MiB and grows by less than 24 MiB from before the garbage;
#     status answers throughout; a console attached afterwards still runs a command in the guest;
#   - SIGTERM: the ACPI path ("RVTEST acpi-powerdown"), exit 0.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

DRIVER=$RV_LIB_DIR/console_driver.py

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# --- run 1: qemu-ga answers ----------------------------------------------------------------------
sup_setup "rvtest.qga=1 rvtest.final=wait"
sup_agent_start
rv_wait_for '^RVTEST qga started' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "qemu-ga did not start in the guest"
rv_wait_for '^RVTEST wait' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not finish its boot"
sup_wait_status guest.agent.state answering 60 || sup_fail "the guest agent never answered"
sup_rescuevm status --json >"$SUP_TMP/status.json"
python3 - "$SUP_TMP/status.json" <<'EOF' || sup_fail "status does not show the guest agent's facts: $(cat "$SUP_TMP/status.json")"
import json, sys
a = json.load(open(sys.argv[1]))["guest"]["agent"]
problems = []
if a["os"]["id"] != "rvtest": problems.append(f"os.id {a['os']['id']!r}")
if a["os"]["name"] != "rescuevm test guest": problems.append(f"os.name {a['os']['name']!r}")
if a["hostname"] != "rvtest": problems.append(f"hostname {a['hostname']!r}")
if not a["version"].startswith("7."): problems.append(f"version {a['version']!r}")
addresses = [x for i in a["interfaces"] for x in i["addresses"]]
if "127.0.0.1/8" not in addresses: problems.append(f"addresses {addresses}")
if a["holds_server_address"] is not None: problems.append("holds_server_address without a network")
if a["last_answer_age_s"] < 0 or a["last_answer_age_s"] > 60: problems.append(f"age {a['last_answer_age_s']}")
sys.exit("; ".join(problems) if problems else None)
EOF
sup_rescuevm status | grep -q '^guest:    guest agent answering .*rescuevm test guest.*host name rvtest' \
  || sup_fail "status text has no guest agent line: $(sup_rescuevm status)"
grep -a -q 'guest agent qemu-ga 7\..*rescuevm test guest.*hostname rvtest, addresses' "$SUP_AGENT_LOG" \
  || sup_fail "the agent did not log the guest agent's facts"
qemu_pid=$(sup_status vm.qemu_pid)
rv_log "guest agent answers; SIGTERM to the agent"
sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
grep -a -q '^RVTEST qga-shutdown mode=powerdown' "$SUP_CONSOLE" \
  || sup_fail "the guest was not stopped through guest-shutdown"
! grep -a -q '^RVTEST acpi-powerdown' "$SUP_CONSOLE" || sup_fail "the ACPI button was pressed as well"
grep -a -q 'the guest agent took the shutdown' "$SUP_AGENT_LOG" || sup_fail "the agent did not log guest-shutdown"
! sup_alive "$qemu_pid" || sup_fail "QEMU $qemu_pid still runs"
run1="qemu-ga facts in status, SIGTERM -> guest-shutdown"

# --- run 2: garbage on both channels, no qemu-ga --------------------------------------------------
sup_setup "rvtest.garbage=1 rvtest.console=shell rvtest.final=wait"
export RV_CONSOLE_CMD
RV_CONSOLE_CMD=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \
  "$RESCUEVM" --config "$SUP_CONF" --kernel-cmdline "$SUP_CMDLINE")
sup_agent_start
rv_wait_for '^RVTEST ready' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not boot"
rss_before=$(rss_kib "$SUP_AGENT_PID")
rv_wait_for '^RVTEST garbage done' "$SUP_CONSOLE" 120 || sup_fail "the guest's console garbage did not go through"
rv_wait_for '^RVTEST garbage qga-port dev=vport.* done' "$SUP_CONSOLE" 180 \
  || sup_fail "the guest agent port's garbage was not drained by the agent"
rss_peak=$rss_before
for ((i = 0; i < 10; i++)); do   # status answers throughout; RSS sampled meanwhile
  sup_rescuevm status --json >/dev/null || sup_fail "status did not answer after the garbage"
  rss=$(rss_kib "$SUP_AGENT_PID")
  ((rss > rss_peak)) && rss_peak=$rss
  sleep 1
done
((rss_peak < 65536 && rss_peak - rss_before < 24576)) \
  || sup_fail "agent RSS ${rss_before} KiB before, ${rss_peak} KiB after the garbage"
[[ $(sup_status guest.agent.state) == "never answered" ]] || sup_fail "garbage was taken for a guest agent answer"
rv_wait_for '^RVTEST console shell' "$SUP_CONSOLE" 60 || sup_fail "the guest's shell did not start"
python3 "$DRIVER" typed garbage || sup_fail "the console does not work after the garbage"
sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
rv_wait_for '^RVTEST acpi-powerdown' "$SUP_CONSOLE" 1 || sup_fail "without a guest agent the ACPI button was not used"
rv_pass "$run1; garbage on COM1 and the agent port: RSS ${rss_before}->${rss_peak} KiB, status answered, console works, SIGTERM -> ACPI"
