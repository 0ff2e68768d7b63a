#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# agent_control: with the uplink handed to the guest, malformed control requests, stray signals, half-closed clients, screenshots to hostile paths and a deleted runtime_dir leave the agent, the guest and the uplink as they were.
#
# Usage (root): tests/integration/agent_control.sh   (meson: meson test -C BUILD agent_control)
#
# The agent runs in a server namespace with network.mode = "macvtap" (sup_netns_setup); the
# test guest takes the server's address from the config drive, paints its screen blue
# (rvtest.screen=blue) and beats every 2 s. Asserted:
#   - every malformed request (wrong types: {"command":"vm","action":42}, {"command":5}, [],
#     "x", null, 42, true, {}, a missing or null action, screenshot without or with a bad path
#     or format, nested values, 30000 nested arrays...) gets {"ok":false,"error":...}; then
#     status answers from the same agent, the guest still runs (same QEMU, its heartbeat goes
#     on) and the uplink is still the guest's (rvtap0 exists, up0 bare, the gateway reaches
#     203.0.113.10, status handed_to_vm);
#   - garbage (the socket is 0600): not JSON, binary, an unknown command or vm action, a 1 MiB
#     line (refused or dropped), a hang-up mid-line, a request split over two writes (answered);
#   - SIGUSR1, SIGUSR2, SIGALRM and SIGHUP are logged as ignored, the agent lives;
#   - 5 `vm reset`s each sent on a connection half-closed right after the request are all
#     answered "VM reset" and all carried out (5 RESET events); two requests followed by EOF
#     on one connection get two answers;
#   - `vm screenshot` makes a valid PPM (the guest's blue screen) and PNG (same size); it is
#     refused for an existing file, a loop device (left unchanged), a symlink, a path through
#     a symlinked directory, a world-writable directory and a directory owned by another user,
#     creating nothing;
#   - rm -rf of runtime_dir: the control socket is back within 10 s with a log line, qemu.json
#     too; QEMU and the guest untouched;
#   - SIGTERM (the guest takes 300 s to power off: rvtest.acpi_delay), then a second SIGTERM:
#     QEMU is quit before the guest finished, the agent exits 0 and the server namespace has
#     its addresses and routes back.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

sup_netns_setup
before=$(sup_netns_snapshot "$SUP_SRV")
sup_setup "rvtest.net=configdrive rvtest.ping_count=1 rvtest.screen=blue rvtest.heartbeat=2 rvtest.acpi_delay=300 rvtest.final=wait"
sup_agent_start
rv_wait_for '^RVTEST ping gw=203\.0\.113\.1 ok' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not reach the gateway"
rv_wait_for '^RVTEST screen colour=0000ff' "$SUP_CONSOLE" 60 || sup_fail "the guest did not paint its screen"
rv_wait_for '^RVTEST alive ' "$SUP_CONSOLE" 60 || sup_fail "no heartbeat"
qemu_pid=$(sup_status vm.qemu_pid)

uplink_is_guests() { # the macvtap exists, up0 is bare, the guest answers on 203.0.113.10
  ip -n "$SUP_SRV" -d -j link show rvtap0 2>/dev/null | jq -e '.[0].linkinfo.info_kind == "macvtap"' >/dev/null \
    || sup_fail "$1: no macvtap rvtap0 in the server namespace"
  [[ -z $(ip -n "$SUP_SRV" -j addr show dev up0 | jq -r '.[].addr_info[] | select(.family == "inet")') ]] \
    || sup_fail "$1: up0 carries an address again: $(ip -n "$SUP_SRV" addr show dev up0)"
  sup_pings "$SUP_GW" 203.0.113.10 || sup_fail "$1: the guest does not answer on 203.0.113.10"
  [[ $(sup_status network.handed_to_vm) == True ]] || sup_fail "$1: status says the uplink is the host's"
}
guest_runs() { # same QEMU, two new heartbeats
  local beats
  sup_alive "$SUP_AGENT_PID" || sup_fail "$1: the agent died"
  [[ $(sup_status agent.pid) == "$SUP_AGENT_PID" ]] || sup_fail "$1: status is answered by another pid"
  [[ $(sup_status vm.qemu_pid) == "$qemu_pid" && $(sup_status vm.state) == running ]] \
    || sup_fail "$1: QEMU $(sup_status vm.qemu_pid) (was $qemu_pid), VM $(sup_status vm.state)"
  beats=$(rv_count '^RVTEST alive ' "$SUP_CONSOLE")
  rv_wait_for_count $((beats + 2)) '^RVTEST alive ' "$SUP_CONSOLE" 30 || sup_fail "$1: the guest's heartbeat stopped"
}
uplink_is_guests "before the requests"

# --- malformed requests -------------------------------------------------------------------------
python3 - "$SUP_RT/control.sock" <<'EOF' || sup_fail "a malformed request was not refused properly (see above)"
import json, socket, sys
path = sys.argv[1]
bad = [
    b'{"command":"vm","action":42}', b'{"command":5}', b'[]', b'"x"', b'null', b'42', b'true', b'{}',
    b'{"command":null}', b'{"command":["status"]}', b'{"command":{"nested":true}}', b'{"command":"vm"}',
    b'{"command":"vm","action":null}', b'{"command":"vm","action":["reset"]}', b'{"command":"vm","action":{}}',
    b'{"command":"vm","action":"reset\\u0000"}', b'{"command":"vm","action":"screenshot"}',
    b'{"command":"vm","action":"screenshot","path":5}', b'{"command":"vm","action":"screenshot","path":null}',
    b'{"command":"vm","action":"screenshot","path":"relative.ppm"}',
    b'{"command":"vm","action":"screenshot","path":"/root/x.ppm","format":7}',
    b'{"command":"vm","action":"screenshot","path":"/root/x.gif","format":"gif"}',
    b'{"command":"vm","action":"screenshot","path":"/root/x\\u0000.ppm"}',
    b'{"command":"status","command":5}', b'{"command":"vm","action":"' + b"A" * 5000 + b'"}',
    b'{"command":1e999}', b'{"command":-0.0}', b'[' * 30000 + b']' * 30000,
    b'{"command":"vm","action":"start","path":{"a":[1,2,{"b":null}]}}' ,
]
for payload in bad:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    s.sendall(payload + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    try:
        reply = json.loads(data)
    except ValueError:
        sys.exit(f"{payload[:60]!r}: the answer is not JSON: {data[:200]!r}")
    shown = payload[:60] + (b"..." if len(payload) > 60 else b"")
    if payload == b'{"command":"vm","action":"start","path":{"a":[1,2,{"b":null}]}}':
        # a valid start (extra keys are ignored): refused because the VM runs
        ok = reply.get("ok") is False and "nothing to start" in reply.get("error", "")
    else:
        ok = isinstance(reply, dict) and reply.get("ok") is False and isinstance(reply.get("error"), str) and reply["error"]
    if not ok:
        sys.exit(f"{shown!r}: want {{ok: false, error}}, got {reply!r}")
    print(f"refused {shown!r}: {reply['error'][:110]}")
EOF
guest_runs "after the malformed requests"
uplink_is_guests "after the malformed requests"
rv_pass "29 malformed requests refused with {ok:false,error}; the agent, the guest (QEMU $qemu_pid) and the uplink are as they were"

# --- garbage on the socket (not JSON, binary, an over-long line, a hang-up mid-line, a split request)
mode=$(stat -c %a "$SUP_RT/control.sock")
[[ $mode == 600 ]] || sup_fail "control socket mode is $mode, want 600"
python3 - "$SUP_RT/control.sock" <<'EOF' || sup_fail "the control socket did not refuse garbage properly (see above)"
import json, socket, sys
path = sys.argv[1]

def ask(payload, expect_answer=True, close_early=False):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass   # the agent may close an over-long request while we still send
    if close_early:
        s.close()
        return None
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    s.close()
    if not data:
        return None
    return json.loads(data.decode())

def refused(name, payload, may_drop=False):
    reply = ask(payload)
    if reply is None and may_drop:
        print(f"ok: {name}: connection closed without an answer")
        return
    if not isinstance(reply, dict) or reply.get("ok") is not False or not reply.get("error"):
        sys.exit(f"{name}: want a refusal, got {reply!r}")
    print(f"ok: {name}: {reply['error']}")

refused("not JSON", b"hello agent\n")
refused("binary", bytes(range(1, 256)).replace(b"\n", b"") + b"\n")
refused("JSON array", b'["status"]\n')
refused("JSON string", b'"status"\n')
refused("object without command", b'{"verb":"status"}\n')
refused("command not a string", b'{"command":42}\n')
refused("unknown command", b'{"command":"reboot-host"}\n')
refused("unknown vm action", b'{"command":"vm","action":"explode"}\n')
refused("over-long line", b"x" * (1 << 20), may_drop=True)
ask(b'{"command":"sta', close_early=True)          # hang up mid-request

# A request in two writes is still one request.
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(path)
s.sendall(b'{"command":')
s.sendall(b'"status"}\n')
data = b""
while not data.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
reply = json.loads(data)
if reply.get("ok") is not True or "status" not in reply:
    sys.exit(f"split request: want a status, got {reply!r}")
print("ok: split request answered")
EOF
guest_runs "after the garbage"
rv_pass "control socket (0600): 9 kinds of garbage refused or (the 1 MiB line) dropped, a hang-up mid-line harmless, a request split over two writes answered"

# --- stray signals ------------------------------------------------------------------------------
for sig in USR1 USR2 ALRM HUP; do
  kill -s "$sig" "$SUP_AGENT_PID"
  rv_wait_for "received SIG$sig: ignored" "$SUP_AGENT_LOG" 10 || sup_fail "SIG$sig was not logged as ignored"
done
guest_runs "after SIGUSR1/SIGUSR2/SIGALRM/SIGHUP"
rv_pass "SIGUSR1, SIGUSR2, SIGALRM, SIGHUP: each logged as ignored, agent $SUP_AGENT_PID and the guest go on"

# --- screenshots -----------------------------------------------------------------------------
out=$(sup_rescuevm vm screenshot "$SUP_TMP/shot.ppm" 2>&1) || sup_fail "vm screenshot PPM: $out"
ppm=$(sup_image_magic "$SUP_TMP/shot.ppm")
[[ $ppm == "ppm "* ]] || sup_fail "the PPM screenshot is not valid: $ppm"
python3 - "$SUP_TMP/shot.ppm" <<'EOF' || sup_fail "the PPM screenshot does not show the guest's blue screen"
import sys
d = open(sys.argv[1], "rb").read()
parts = d.split(b"\n", 3)                  # QEMU writes "P6\nW H\n255\n"
w, h = map(int, parts[1].split())
px = parts[3]
centre = (h // 2 * w + w // 2) * 3
blue = sum(1 for i in range(0, len(px), 3) if px[i:i + 3] == b"\x00\x00\xff")
print(f"centre pixel {px[centre:centre + 3].hex()}, {100 * blue // (w * h)}% blue")
sys.exit(0 if px[centre:centre + 3] == b"\x00\x00\xff" and blue > w * h // 2 else 1)
EOF
out=$(sup_rescuevm vm screenshot "$SUP_TMP/shot.png" 2>&1) || sup_fail "vm screenshot PNG: $out"
png=$(sup_image_magic "$SUP_TMP/shot.png")
[[ $png == "png ${ppm#ppm }" ]] || sup_fail "the PNG screenshot is '$png', want png of the PPM's size (${ppm#ppm })"
[[ $(stat -c '%a %U' "$SUP_TMP/shot.png") == "600 root" ]] || sup_fail "screenshot file mode: $(stat -c '%a %U' "$SUP_TMP/shot.png")"
rv_pass "vm screenshot: $ppm showing the guest's blue screen, $png, files 0600"

victim=$(rv_loop_disk 8M)
dd if=/dev/urandom of="$victim" bs=1M count=8 status=none conv=fsync
victim_sum=$(rv_sha256 "$victim")
shot_sum=$(rv_sha256 "$SUP_TMP/shot.ppm")
mkdir "$SUP_TMP/real" "$SUP_TMP/ww" "$SUP_TMP/users"
chmod 1777 "$SUP_TMP/ww"
chown nobody "$SUP_TMP/users"
ln -s "$SUP_TMP/real" "$SUP_TMP/linkdir"
ln -s "$SUP_TMP/real/target.ppm" "$SUP_TMP/link.ppm"
refuse_shot() { # refuse_shot PATH WORDS: vm screenshot PATH fails and says WORDS
  local rc=0 out
  out=$(sup_rescuevm vm screenshot "$1" 2>&1) || rc=$?
  [[ $rc == 1 && $out == *"$2"* ]] || sup_fail "vm screenshot $1: want a refusal saying '$2', got $rc: $out"
  rv_log "refused $1: $out"
}
refuse_shot "$SUP_TMP/shot.ppm" "give the name of a new file"
refuse_shot "$victim" "give the name of a new file"
refuse_shot "$SUP_TMP/link.ppm" "File exists"
refuse_shot "$SUP_TMP/linkdir/x.ppm" "symbolic link is refused"
refuse_shot "$SUP_TMP/ww/x.ppm" "can be written by users other than root"
refuse_shot "$SUP_TMP/users/x.ppm" "can be written by users other than root"
[[ $(rv_sha256 "$victim") == "$victim_sum" ]] || sup_fail "the loop device $victim was changed by vm screenshot"
[[ $(rv_sha256 "$SUP_TMP/shot.ppm") == "$shot_sum" ]] || sup_fail "the existing screenshot was changed"
made=$(find "$SUP_TMP/real" "$SUP_TMP/ww" "$SUP_TMP/users" -mindepth 1)
[[ -z $made ]] || sup_fail "a refused screenshot created: $made"
rc=0
sup_rescuevm vm screenshot relative.ppm >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || sup_fail "vm screenshot with a relative path exited $rc, want 2 (usage)"
rv_pass "vm screenshot refused: an existing file, loop device $victim (unchanged), a symlink, a symlinked directory, a world-writable and a user-owned directory; nothing created"

# --- half-closed clients -------------------------------------------------------------------------
resets_before=$(rv_count 'event RESET .*"reason":"host-qmp-system-reset"' "$SUP_AGENT_LOG")
python3 - "$SUP_RT/control.sock" <<'EOF' || sup_fail "half-closed requests were not all answered (see above)"
import json, socket, sys
def half_closed(lines):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sys.argv[1])
    s.sendall(b"".join(l + b"\n" for l in lines))
    s.shutdown(socket.SHUT_WR)            # EOF right after the request, as printf | socat does
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return [json.loads(l) for l in data.splitlines()]
for i in range(5):
    r = half_closed([b'{"command":"vm","action":"reset"}'])
    if len(r) != 1 or r[0].get("ok") is not True or r[0].get("message") != "VM reset":
        sys.exit(f"reset {i + 1}: {r!r}")
    print(f"reset {i + 1}: {r[0]}")
r = half_closed([b'{"command":"status"}', b'{"command":"status"}'])
if len(r) != 2 or not all(x.get("ok") is True and "status" in x for x in r):
    sys.exit(f"two status requests then EOF: {r!r}")
print("two status requests then EOF: two answers")
EOF
rv_wait_for_count $((resets_before + 5)) 'event RESET .*"reason":"host-qmp-system-reset"' "$SUP_AGENT_LOG" 30 \
  || sup_fail "only $(($(rv_count 'event RESET .*"reason":"host-qmp-system-reset"' "$SUP_AGENT_LOG") - resets_before)) of 5 half-closed vm resets were carried out"
rv_pass "5 vm resets each followed at once by EOF: 5 answers 'VM reset', 5 RESET events; 2 status requests + EOF: 2 answers"

# --- runtime_dir deleted -------------------------------------------------------------------------
sup_wait_boots 2 || sup_fail "the guest did not boot after the resets"
rv_wait_for_count 2 '^RVTEST ping gw=203\.0\.113\.1 ok' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the rebooted guest did not reach the gateway"
rv_wait_for_count 2 '^RVTEST acpi-listen' "$SUP_CONSOLE" 60 || sup_fail "the rebooted guest does not watch the power button"
rm -rf "$SUP_RT"
t0=$SECONDS
rv_wait_for 'the control socket .* was removed \(runtime directory deleted\?\): made it again' "$SUP_AGENT_LOG" 15 \
  || sup_fail "the control socket was not made again within 15 s"
sup_rescuevm status >/dev/null 2>&1 || sup_fail "status does not answer after runtime_dir was deleted"
took=$((SECONDS - t0))
[[ -S $SUP_RT/control.sock && $(stat -c %a "$SUP_RT/control.sock") == 600 ]] || sup_fail "control.sock is not back as a 0600 socket"
[[ $(stat -c '%a %U' "$SUP_RT") == "700 root" ]] || sup_fail "runtime_dir made again as $(stat -c '%a %U' "$SUP_RT")"
rv_wait_for '"pid"' "$SUP_RT/qemu.json" 10 || sup_fail "qemu.json was not written again"
[[ $(sup_record_pid) == "$qemu_pid" ]] || sup_fail "qemu.json names $(sup_record_pid), not $qemu_pid"
[[ $(sup_status vm.qemu_pid) == "$qemu_pid" && $(sup_status vm.state) == running ]] || sup_fail "the VM changed after rm -rf runtime_dir"
uplink_is_guests "after rm -rf runtime_dir"
rv_pass "rm -rf runtime_dir: control socket (0600) and qemu.json back within $took s with a log line; QEMU $qemu_pid and the uplink untouched"

# --- stop: two SIGTERMs cut the power-down short; the uplink goes back ------------------------
# rm -rf took the guest console log away: the agent (which writes it from the guest's serial
# socket) writes it again at its path once runtime_dir is back; the guest beats every 2 s.
rv_wait_for '^RVTEST alive' "$SUP_CONSOLE" 30 || sup_fail "the agent did not write the guest console log again after rm -rf runtime_dir"
kill -TERM "$SUP_AGENT_PID"
rv_wait_for '^RVTEST acpi-button' "$SUP_CONSOLE" 30 || sup_fail "the guest never saw the power button on SIGTERM"
sup_alive "$qemu_pid" || sup_fail "QEMU $qemu_pid ended at once on the first SIGTERM"
kill -TERM "$SUP_AGENT_PID"
rc=0
wait "$SUP_AGENT_PID" || rc=$?
[[ $rc == 0 ]] || sup_fail "the agent exited $rc after two SIGTERMs, want 0"
grep -a -q 'again: not waiting for the guest any longer; stopping QEMU' "$SUP_AGENT_LOG" \
  || sup_fail "the second SIGTERM did not say it cuts the power-down short"
! sup_alive "$qemu_pid" || sup_fail "QEMU $qemu_pid still runs"
(($(rv_count '^RVTEST acpi-powerdown' "$SUP_CONSOLE") == 0)) || sup_fail "the guest finished its power-down: nothing was cut short"
(($(rv_count 'event SHUTDOWN .*"reason":"host-qmp-quit"' "$SUP_AGENT_LOG") == 1)) \
  || sup_fail "QEMU was not quit by the agent after the second SIGTERM"
after=$(sup_netns_snapshot "$SUP_SRV")
[[ $after == "$before" ]] || sup_fail "the server namespace is not as before: $(diff <(echo "$before") <(echo "$after") || true)"
sup_pings "$SUP_SRV" 203.0.113.1 || sup_fail "the server does not reach its gateway after the stop"
rv_pass "SIGTERM (ACPI, the guest takes its time) then a second SIGTERM: QEMU quit before the guest finished, agent exit 0, up0's address and routes back, the server reaches its gateway"
