#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# agent_reattach_net: an agent killed with SIGKILL leaves QEMU and the macvtap as they were; the next one (uplink = "auto") re-attaches without touching the tap, the guest loses no packet, a QEMU restart still gives it its IP, and the stop gives the uplink back.
#
# Usage (root): tests/integration/agent_reattach_net.sh   (meson: meson test -C BUILD agent_reattach_net)
#
# The agent runs in a server namespace with network.mode = "macvtap" and uplink = "auto" (the
# default route's interface, up0). The test guest takes 203.0.113.10/32 from the config drive,
# counts what TCP port 5001 receives (rvtest.tcp_sink) and beats every 2 s. Asserted:
#   1. after SIGKILL of the agent QEMU runs on, rvtap0 is still there and the guest still
#      answers on 203.0.113.10: nothing was given back to the host;
#   2. a new agent does not exit 3 although the host has no default route any more (the
#      network facts of the running session come from the claim record): it re-attaches to the
#      same QEMU, status shows up0 with 203.0.113.10/32 handed to the VM; it holds no /dev/tapN
#      and the macvtap has one open file (one queue: QEMU's, compared with kcmp);
#   3. 1000 pings from the gateway namespace get 1000 answers and 6 TCP transfers of 512 KiB (6
#      flows, so 6 queue hashes) reach the guest complete (bytes and md5 as sent);
#   4. QEMU killed: the agent restarts it and the guest again finds 203.0.113.10/32 on its
#      config drive and reaches the gateway;
#   5. SIGTERM: exit 0; the server namespace has exactly its addresses, routes and links back.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

SUP_UPLINK=auto
sup_netns_setup
before=$(sup_netns_snapshot "$SUP_SRV")
sup_setup "rvtest.net=configdrive rvtest.ping_count=1 rvtest.tcp_sink=5001 rvtest.heartbeat=2 rvtest.final=wait"
sup_agent_start
agent1=$SUP_AGENT_PID
rv_wait_for '^RVTEST ping gw=203\.0\.113\.1 ok' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not reach the gateway"
rv_wait_for '^RVTEST tcp-sink listen port=5001' "$SUP_CONSOLE" 60 || sup_fail "the guest's TCP sink did not start"
qemu_pid=$(sup_status vm.qemu_pid)
tap=/dev/tap$(ip -n "$SUP_SRV" -j link show rvtap0 | jq -r '.[0].ifindex')

uplink_is_guests() {
  ip -n "$SUP_SRV" -d -j link show rvtap0 2>/dev/null | jq -e '.[0].linkinfo.info_kind == "macvtap"' >/dev/null \
    || sup_fail "$1: no macvtap rvtap0 in the server namespace"
  [[ -z $(ip -n "$SUP_SRV" -j addr show dev up0 | jq -r '.[].addr_info[] | select(.family == "inet")') ]] \
    || sup_fail "$1: up0 carries an address: $(ip -n "$SUP_SRV" addr show dev up0)"
  sup_pings "$SUP_GW" 203.0.113.10 || sup_fail "$1: the guest does not answer on 203.0.113.10"
}
# tap_queues: "<open files> <pid:fd...>": every fd on the macvtap's character device, and how
# many distinct open files they are (kcmp): each open of /dev/tapN is a queue of its own.
tap_queues() {
  python3 - "$tap" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_kcmp, KCMP_FILE = 312, 0
fds = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        entries = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        continue
    for fd in entries:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.endswith(sys.argv[1]):   # /dev/tapN, or runtime_dir/dev/tapN made by the agent
            fds.append((int(pid), int(fd)))
files = []
for p, f in fds:
    if not any(libc.syscall(SYS_kcmp, p, q, KCMP_FILE, f, g) == 0 for q, g in files):
        files.append((p, f))
print(len(files), " ".join(f"{p}:{f}" for p, f in fds))
PY
}
uplink_is_guests "first agent"
queues=$(tap_queues)
[[ ${queues%% *} == 1 && $queues == *" $qemu_pid:"* ]] || sup_fail "$tap: want one open file (queue) held by QEMU $qemu_pid, got: $queues"
rv_log "first agent: $tap open files and holders: $queues"

# --- 1: SIGKILL ---------------------------------------------------------------------------------
kill -KILL "$agent1"
wait "$agent1" 2>/dev/null || true
sup_alive "$qemu_pid" || sup_fail "QEMU died with the agent"
uplink_is_guests "agent killed"
[[ -f $SUP_RT/network-claim.json ]] || sup_fail "the claim record is gone after SIGKILL"
rv_pass "agent SIGKILLed: QEMU $qemu_pid runs on, rvtap0 stays, up0 stays bare, the guest answers on 203.0.113.10"

# --- 2: a new agent re-attaches -----------------------------------------------------------------
[[ $(ip -n "$SUP_SRV" -j route show default | jq length) == 0 ]] || sup_fail "setup: the host has a default route while the VM owns the uplink"
sup_agent_start
sup_wait_status vm.state running 60 || sup_fail "the new agent does not show the VM running"
[[ $(sup_status vm.qemu_pid) == "$qemu_pid" ]] || sup_fail "the new agent runs QEMU $(sup_status vm.qemu_pid), not $qemu_pid"
[[ $(sup_qemu_pids | tr '\n' ' ') == "$qemu_pid " ]] || sup_fail "QEMUs on the runtime_dir: $(sup_qemu_pids | tr '\n' ' ')"
[[ $(sup_status network.uplink) == up0 && $(sup_status network.handed_to_vm) == True ]] \
  || sup_fail "status network: $(sup_status network.uplink) handed=$(sup_status network.handed_to_vm)"
sup_status network.addresses | grep -q '203.0.113.10/32' || sup_fail "status shows no 203.0.113.10/32: $(sup_status network.addresses)"
queues=$(tap_queues)
[[ ${queues%% *} == 1 && $queues == *" $qemu_pid:"* && $queues != *" $SUP_AGENT_PID:"* ]] \
  || sup_fail "after the re-attach: want one open file on $tap, QEMU's, none in agent $SUP_AGENT_PID; got: $queues"
grep -a -q 'found the VM of an earlier agent still running' "$SUP_AGENT_LOG" || sup_fail "no re-attach line in the log"
rv_pass "uplink auto, no default route left on the host: the new agent did not exit 3, re-attached to QEMU $qemu_pid, status shows up0 203.0.113.10/32 handed to the VM, $tap has one queue, QEMU's ($queues)"

# --- 3: nothing lost ----------------------------------------------------------------------------
out=$(ip netns exec "$SUP_GW" busybox ping -q -A -c 1000 -W 5 203.0.113.10 2>&1 || true)
rv_log "ping: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
[[ $out == *"1000 packets transmitted, 1000 packets received"* ]] || sup_fail "pings lost after the re-attach: $out"
sinks=$(rv_count '^RVTEST tcp-sink port=5001 bytes=' "$SUP_CONSOLE")
sent=$(ip netns exec "$SUP_GW" python3 - <<'EOF'
import hashlib, os, socket, sys, time
for i in range(6):
    data = os.urandom(512 * 1024)
    for attempt in range(50):          # the guest's nc listens again a moment after each transfer
        s = socket.socket()
        s.settimeout(30)
        try:
            s.connect(("203.0.113.10", 5001))
            break
        except (ConnectionRefusedError, socket.timeout):
            s.close()
            time.sleep(0.2)
    else:
        sys.exit("cannot connect to the guest's TCP sink")
    s.sendall(data)
    s.close()
    print(len(data), hashlib.md5(data).hexdigest())
    # wait until the guest has reported this one before the next (one listener)
    time.sleep(0.1)
EOF
) || sup_fail "TCP transfers to the guest failed: $sent"
i=0
while read -r bytes md5; do
  i=$((i + 1))
  rv_wait_for_count $((sinks + i)) '^RVTEST tcp-sink port=5001 bytes=' "$SUP_CONSOLE" 60 || sup_fail "transfer $i never ended in the guest"
  got=$(tr -d '\r' <"$SUP_CONSOLE" | grep -a '^RVTEST tcp-sink port=5001 bytes=' | sed -n "$((sinks + i))p")
  [[ $got == "RVTEST tcp-sink port=5001 bytes=$bytes md5=$md5" ]] || sup_fail "transfer $i: sent $bytes bytes md5 $md5, the guest got: $got"
done <<<"$sent"
((i == 6)) || sup_fail "$i transfers made, want 6"
rv_pass "after the re-attach: 1000/1000 pings answered, 6 TCP transfers of 512 KiB arrived complete (md5 checked)"

# --- 4: a QEMU restart still gives the guest its address ---------------------------------------
pings_before=$(rv_count '^RVTEST ping gw=203\.0\.113\.1 ok' "$SUP_CONSOLE")
kill -KILL "$qemu_pid"
rv_wait_for 'QEMU ended unexpectedly' "$SUP_AGENT_LOG" 30 || sup_fail "the agent did not see QEMU die"  # not its child: no exit status
rv_wait_for_count $((pings_before + 1)) '^RVTEST ping gw=203\.0\.113\.1 ok' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" \
  || sup_fail "after the QEMU restart the guest did not reach the gateway"
(($(rv_count '^RVTEST configdrive network .*dev=eth0 address=203\.0\.113\.10/32' "$SUP_CONSOLE") >= 2)) \
  || sup_fail "the restarted guest's config drive did not give it 203.0.113.10/32"
qemu2=$(sup_status vm.qemu_pid)
[[ $qemu2 != "$qemu_pid" ]] || sup_fail "no new QEMU"
uplink_is_guests "after the QEMU restart"
rv_pass "QEMU killed under the re-attached agent: restarted (pid $qemu2), the config drive still gave 203.0.113.10/32, the guest reached the gateway"

# --- 5: the stop gives the uplink back -----------------------------------------------------------
sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
after=$(sup_netns_snapshot "$SUP_SRV")
[[ $after == "$before" ]] || sup_fail "the server namespace is not as before: $(diff <(echo "$before") <(echo "$after") || true)"
sup_pings "$SUP_SRV" 203.0.113.1 || sup_fail "the server does not reach its gateway after the stop"
[[ ! -e $SUP_RT/network-claim.json ]] || sup_fail "the claim record is still there after the stop"
rv_pass "SIGTERM after the re-attach: exit 0, up0's address, routes and links exactly as before, the server reaches its gateway"
