#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Manual check (not run by meson): boots the test guest twice and proves its serial-console, guest-agent and screen/keyboard features work.
#
# Usage (root): tests/guest/check-features.sh
# Environment: BUILD_ROOT (reuse $BUILD_ROOT/guest), RV_KEEP_DIR (keep the run's files there).
# Direct boot (fast), all parameters from a params block on a loop disk. The serial port is a
# socket chardev with a log file (so the test can type), plus virtio-serial with the guest-agent
# port, VGA, qemu-xhci with usb-tablet and usb-kbd.
#  Boot 1 "rvtest.qga=1 rvtest.keys=1 rvtest.pointer=1 rvtest.screen=magenta rvtest.console=shell":
#   - screen: the line, and QMP screendump is all ff00ff
#   - qemu-ga: guest-sync-delimited, guest-ping, guest-info, guest-get-osinfo (id rvtest),
#     guest-get-host-name (rvtest), guest-network-get-interfaces (lo 127.0.0.1)
#   - keys: QMP send-key "a" on the USB keyboard (code 30 press and release), ctrl-alt-delete
#     ("RVTEST ctrl-alt-del"), input-send-event on the tablet (pointer line); the PS/2 keyboard
#     is listened to before "ready"
#   - shell: "echo rv-$((6*7))" typed on the serial console answers rv-42 on /dev/ttyS0
#   - the params block is rewritten, then qemu-ga guest-shutdown mode=reboot:
#     "RVTEST qga-shutdown mode=reboot" and a guest reset
#  Boot 2 "rvtest.flood=100000 rvtest.garbage=1" (no qemu-ga, no input reports that could land
#  inside the flood):
#   - flood: exactly 100000 bytes between the start and done lines, lines numbered 1..1563
#   - garbage: the hostile lines and the 262144-byte line arrive on the console; the agent port
#     receives its garbage (0xFF, the 1 MiB JSON string) and the guest reports
#     "garbage qga-port ... done"; qemu-ga is absent: guest-ping gets no answer.
set -euo pipefail
RV_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../integration" && pwd)/lib.sh
# shellcheck source=../integration/lib.sh
source "$RV_LIB"
rv_require qemu-system-x86_64 python3 losetup

tmp=$(rv_tmpdir)
run=$tmp/run
mkdir -p "$run"
# RV_KEEP_DIR=DIR: keep the run's files (console log, screen dump...) there, also on failure.
[[ -n ${RV_KEEP_DIR:-} ]] && rv_cleanup_add "mkdir -p '$RV_KEEP_DIR' && cp -a '$run/.' '$RV_KEEP_DIR/'"
RV_GUEST_DIR=$(rv_guest_build)
params=$(rv_loop_disk 16M)
rv_params_block "$params" rvtest.qga=1 rvtest.keys=1 rvtest.pointer=1 rvtest.screen=magenta rvtest.console=shell
# What the console client receives is the log checked here: QEMU 7.2's chardev logfile= copy
# (serial.log) repeats a byte each time the socket was full (the chardev logs a write that
# failed with EAGAIN, and the serial port then sends that byte again).
log=$run/console.stream

qemu-system-x86_64 -name rvtest-features -machine q35 -accel tcg -cpu max -nodefaults -no-user-config \
  -m 512 -smp 2 -display none -action reboot=reset,shutdown=pause \
  -kernel "$(rv_guest_kernel "$RV_GUEST_DIR")" -initrd "$RV_GUEST_DIR/initramfs.cpio.gz" \
  -append "$(rv_guest_append)" \
  -chardev "socket,id=con,path=$run/console.sock,server=on,wait=off,logfile=$run/serial.log" -device isa-serial,chardev=con \
  -device virtio-serial-pci -chardev "socket,id=qga0,path=$run/qga.sock,server=on,wait=off" \
  -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0 \
  -device VGA -device qemu-xhci,id=usb -device usb-tablet,bus=usb.0 -device usb-kbd,bus=usb.0 \
  -blockdev "driver=host_device,filename=$params,node-name=params,cache.direct=on" \
  -device virtio-blk-pci,drive=params,serial=RV-PARAMS \
  -qmp "unix:$run/qmp.sock,server=on,wait=off" -qmp "unix:$run/events.sock,server=on,wait=off" \
  2>"$run/qemu.log" &
rv_cleanup_kill $!
python3 "$RV_QMP" --follow --timeout 3600 "$run/events.sock" >"$run/events.jsonl" 2>/dev/null &
rv_cleanup_kill $!

# A console client that stays connected (the chardev accepts one), writing what it receives to
# $log and typing what the test writes into $run/type, nothing else.
: >"$run/type"
# It reads all the time: QEMU's serial port sends one byte per message, and a unix socket's
# buffer holds only a few hundred of those, so a slow reader slows the guest's console down.
python3 - "$run/console.sock" "$run/type" "$log" >/dev/null 2>&1 <<'PY' &
import select, socket, sys, time
out = open(sys.argv[3], "ab", buffering=0)
s = socket.socket(socket.AF_UNIX)
for _ in range(300):
    try:
        s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.1)
sent = 0
while True:
    if select.select([s], [], [], 0.1)[0]:
        data = s.recv(1 << 20)
        if not data:
            break
        out.write(data)
    data = open(sys.argv[2], "rb").read()
    if len(data) > sent:
        s.sendall(data[sent:]); sent = len(data)
PY
rv_cleanup_kill $!

rv_wait_for '^RVTEST ready' "$log" 300 || rv_fail "boot 1: no ready: $(grep -a '^RVTEST' "$log" | tr '\n' '|')"
expect() { rv_wait_for "$1" "$log" "${2:-60}" || rv_fail "no line matching '$1' in the console log: $(grep -a '^RVTEST' "$log" | tail -n 20 | tr '\n' '|')"; }

# --- screen
expect '^RVTEST screen colour=ff00ff dev=fb[0-9] width=[0-9]+ height=[0-9]+ bpp=32 '
rv_qmp "$run/qmp.sock" "{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"$run/screen.ppm\"}}" >/dev/null
python3 - "$run/screen.ppm" <<'PY' || rv_fail "the screen is not magenta"
import sys
data = open(sys.argv[1], "rb").read()
magic, dims, maxval, px = data.split(b"\n", 3)
w, h = map(int, dims.split())
n = sum(1 for i in range(0, len(px), 3) if px[i:i + 3] == b"\xff\x00\xff")
print(f"screen {w}x{h}: {n} of {w * h} pixels ff00ff", file=sys.stderr)
sys.exit(0 if n == w * h else 1)
PY

# --- guest agent
qga() {   # qga SOCKET COMMAND...: guest-sync-delimited, then each command; prints the replies
  python3 - "$@" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(20)
buf = b""
def line():
    global buf
    while b"\n" not in buf:
        d = s.recv(65536)
        if not d: sys.exit("qga: connection closed")
        buf += d
    l, buf = buf.split(b"\n", 1)
    return l
s.sendall(b"\xff" + json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": 77}}).encode() + b"\n")
while b"\xff" not in buf:
    d = s.recv(65536)
    if not d: sys.exit("qga: connection closed")
    buf += d
buf = buf[buf.rindex(b"\xff") + 1:]
assert json.loads(line()) == {"return": 77}
for c in sys.argv[2:]:
    cmd, _, arg = c.partition(":")
    msg = {"execute": cmd}
    if arg: msg["arguments"] = json.loads(arg)
    s.sendall(json.dumps(msg).encode() + b"\n")
    if cmd == "guest-shutdown":
        continue      # no reply on success
    print(cmd, line().decode())
PY
}
out=$(qga "$run/qga.sock" guest-ping guest-info guest-get-osinfo guest-get-host-name guest-network-get-interfaces) \
  || rv_fail "qemu-ga did not answer: $out"
grep -q '^guest-ping {"return": {}}$' <<<"$out" || rv_fail "guest-ping: $out"
grep -q '^guest-info .*"name": "guest-shutdown"' <<<"$out" || rv_fail "guest-info: $out"
grep -q '^guest-get-osinfo .*"id": "rvtest"' <<<"$out" || rv_fail "guest-get-osinfo: $out"
grep -q '^guest-get-host-name {"return": {"host-name": "rvtest"}}$' <<<"$out" || rv_fail "guest-get-host-name: $out"
grep -q '^guest-network-get-interfaces .*"name": "lo".*"ip-address": "127.0.0.1"' <<<"$out" || rv_fail "guest-network-get-interfaces: $out"
expect '^RVTEST qga started dev=vport[0-9]+p[0-9]+ pid=[0-9]+$'
rv_log "qemu-ga answered guest-ping, guest-info, guest-get-osinfo, guest-get-host-name, guest-network-get-interfaces"

# --- keyboard, ctrl-alt-del, tablet
expect '^RVTEST input-listen dev=event[0-9]+ kind=keyboard name=AT_Translated_Set_2_keyboard$'
expect '^RVTEST input-listen dev=event[0-9]+ kind=keyboard name=QEMU_QEMU_USB_Keyboard$' 60
expect '^RVTEST input-listen dev=event[0-9]+ kind=pointer name=QEMU_QEMU_USB_Tablet$' 60
key() { echo "{\"type\":\"qcode\",\"data\":\"$1\"}"; }
rv_qmp "$run/qmp.sock" "{\"execute\":\"send-key\",\"arguments\":{\"keys\":[$(key a)]}}" \
  "{\"execute\":\"send-key\",\"arguments\":{\"keys\":[$(key ctrl),$(key alt),$(key delete)]}}" \
  '{"execute":"input-send-event","arguments":{"events":[{"type":"abs","data":{"axis":"x","value":12345}},{"type":"abs","data":{"axis":"y","value":321}},{"type":"btn","data":{"down":true,"button":"left"}}]}}' \
  >/dev/null || rv_fail "QMP input commands failed"
expect '^RVTEST key code=30 value=1 dev=event[0-9]+$'
expect '^RVTEST key code=30 value=0 dev=event[0-9]+$'
expect '^RVTEST ctrl-alt-del$'
expect '^RVTEST pointer x=12345 y=321 buttons=1 dev=event[0-9]+$'
rv_log "keys, Ctrl-Alt-Del and the tablet reported"

# --- shell on the serial console
expect '^RVTEST console shell tty=ttyS0$'
# shellcheck disable=SC2016 # typed into the guest's shell, expanded there
printf 'echo rv-$((6*7)) $(tty)\n' >>"$run/type"
expect '^rv-42 /dev/ttyS0$' 30
rv_log "the console shell answered"

# --- reboot through qemu-ga into boot 2
rv_params_block "$params" rvtest.flood=100000 rvtest.garbage=1
sync
qga "$run/qga.sock" 'guest-shutdown:{"mode":"reboot"}' >/dev/null || rv_fail "guest-shutdown reboot failed"
expect '^RVTEST qga-shutdown mode=reboot$'
rv_wait_for '"event":"RESET","data":\{"guest":true' "$run/events.jsonl" 60 || rv_fail "no guest reset after qga reboot"
rv_wait_for_count 2 '^RVTEST ready' "$log" 300 || rv_fail "boot 2: no ready"
(($(rv_count '^RVTEST firmware efi=no kernel=direct image=none$' "$log") == 2)) || rv_fail "firmware lines wrong"
expect '^RVTEST garbage done$' 120
# --- flood and garbage
python3 - "$log" <<'PY' || rv_fail "flood or garbage output is wrong"
import re, sys
data = open(sys.argv[1], "rb").read()
a = data.index(b"RVTEST flood start bytes=100000\n") + len(b"RVTEST flood start bytes=100000\n")
b = data.index(b"RVTEST flood done bytes=100000 ")
flood = data[a:b]
assert len(flood) == 100000, f"flood is {len(flood)} bytes"
nums = [int(m) for m in re.findall(rb"^rvflood (\d{9}) ", flood, re.M)]
assert nums == list(range(1, 1564)), "flood lines are not numbered 1..1563"
g = data[data.index(b"RVTEST garbage start\n"):data.index(b"RVTEST garbage done\n")]
assert b"\xff\xfe" in g and b"\x1b]0;rvtest-title\x07" in g and b"nul=\x00" in g, "hostile bytes missing"
assert max(len(l) for l in g.split(b"\n")) == 262144, "no 262144-byte line"
print("flood: 100000 bytes, lines 1..1563; garbage: hostile bytes and a 262144-byte line", file=sys.stderr)
PY

# The garbage writer blocks until a client is connected to the agent port: be that client.
python3 - "$run/qga.sock" <<'PY' || rv_fail "the agent port did not deliver the garbage"
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(2)
buf, end = b"", time.time() + 60
while time.time() < end and len(buf) < 1048576 + 64:
    try:
        d = s.recv(65536)
    except socket.timeout:
        continue
    if not d: break
    buf += d
assert b"\xff" in buf and b"A" * 1048576 in buf, f"got {len(buf)} bytes"
print(f"agent port: {len(buf)} bytes of garbage", file=sys.stderr)
PY
expect '^RVTEST garbage qga-port dev=vport[0-9]+p[0-9]+ done$'
if qga "$run/qga.sock" guest-ping >/dev/null 2>&1; then rv_fail "a guest agent answered although rvtest.qga is not set"; fi
(($(rv_count '^RVTEST error' "$log") == 0)) || rv_fail "the guest reported errors: $(grep -a '^RVTEST error' "$log")"
rv_pass "guest features: screen, flood, garbage (console and agent port), qemu-ga (5 commands, reboot), keys, ctrl-alt-del, tablet, console shell"
