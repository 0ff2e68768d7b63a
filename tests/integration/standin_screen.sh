#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# KVM over IP in a stand-in server: the nested VM on the stand-in's own screen (bochs-drm), the stand-in's USB keyboard and tablet in the VM, Ctrl-Alt-Del and Alt+SysRq+B never rebooting the stand-in, a re-plugged keyboard picked up again, and no DRM device -> one-line notice and a normal VM.
#
# One stand-in boot (tests/standin, -device VGA, qemu-xhci + usb-kbd + usb-tablet, KVM inside
# by default: STANDIN_CPU=max,-svm,-vmx runs the nested guest under TCG, allow
# STANDIN_GUEST_TIMEOUT=600). rescuevm runs from this build dir under systemd with
# [screen] mode = "auto"; the nested guest is the test guest (direct kernel boot) with
# rvtest.screen=magenta rvtest.keys=1 rvtest.pointer=1. From outside, over the stand-in's QMP:
#   - screendump of the stand-in's screen is the guest's magenta (scaled, black bars only);
#   - the agent handed the stand-in's keyboard and tablet to QEMU (input-linux), status says so;
#   - send-key "a" reaches the guest (its serial log: RVTEST key code=30), input-send-event
#     absolute pointer moves reach it (RVTEST pointer);
#   - send-key ctrl-alt-delete reaches the guest (RVTEST ctrl-alt-del); the stand-in did not
#     go down (no SHUTDOWN/RESET in events.jsonl, ctrl-alt-del.target never started; it was
#     masked for the session; kernel.sysrq restricted to 16|2 bits);
#   - usb-kbd device_del + device_add: the new keyboard is handed to the VM and its keys arrive;
#   - Alt+SysRq+B typed into the stand-in does not reboot it;
#   - systemctl stop rescuevm: sysrq and ctrl-alt-del.target given back, the console the host's
#     again (screendump no longer magenta);
#   - bochs-drm unbound (no DRM, no fbdev): the agent says so in one line and the VM runs as
#     before; `rescuevm status` says the screen is on the VNC socket only.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$RV_SOURCE_ROOT/tests/standin/standin.sh"

: "${BUILD_ROOT:?BUILD_ROOT must name the meson build dir (meson test sets it)}"
rv_require python3 meson

tmp=$(rv_tmpdir)
RV_GUEST_DIR=$(rv_guest_build)
standin_new
standin_meson_install "$BUILD_ROOT" "$tmp/dest"
standin_install_rescuevm "$tmp/dest"
standin_disk vd0 64M virtio RVM-SCREEN-0   # a disk to pass: the agent refuses without one
standin_seed_file /etc/rescuevm/rescuevm.toml <<EOF
# rescuevm in the stand-in: the test guest, tiny, drawing magenta and reporting keys.
[vm]
kernel = "$(rv_guest_kernel)"
initrd = "$RV_GUEST_DIR/initramfs.cpio.gz"
append = "$(rv_guest_append "rvtest.screen=magenta rvtest.keys=1 rvtest.pointer=1")"
firmware = "bios"
memory = "256MiB"
cpus = 1
display = "vnc"

[network]
mode = "none"

[screen]
mode = "auto"
EOF

params="rescuevm.host.min_memory=1GiB"
[[ ${STANDIN_CPU:-max} != *-svm* ]] || params+=" rescuevm.vm.accel=tcg"
guest_timeout=${STANDIN_GUEST_TIMEOUT:-300}
guest_log=/run/rescuevm/guest-console.log

journal() { standin_sh "journalctl -b --no-pager -t rescuevm -o cat"; }
fail_with_journal() {
  {
    echo "---- rescuevm (last 60 lines)"; journal 2>&1 | tail -n 60 || true
    echo "---- guest console (last 20 lines)"; standin_sh "tail -n 20 $guest_log" 2>&1 || true
    echo "---- stand-in console (last 20 lines)"; standin_console_tail 20
  } >&2
  rv_fail "$*"
}
# wait_journal PATTERN SEC: until the agent's journal has a line matching grep -E PATTERN.
wait_journal() {
  local deadline=$((SECONDS + $2))
  until grep -qE -- "$1" <<<"$(journal 2>/dev/null)"; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}
# guest_count PATTERN: lines of the guest's serial log matching grep -E PATTERN.
guest_count() { standin_sh "grep -acE '$1' $guest_log || true"; }
# wait_guest N PATTERN SEC: until the guest's serial log has at least N lines matching.
wait_guest() {
  local deadline=$((SECONDS + $3))
  until (($(guest_count "$2" 2>/dev/null || echo 0) >= $1)); do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}
keys() { # keys QCODE...: one send-key chord into the stand-in
  local list="" k
  for k in "$@"; do list+="${list:+,}{\"type\":\"qcode\",\"data\":\"$k\"}"; done
  standin_qmp "{\"execute\":\"send-key\",\"arguments\":{\"keys\":[$list]}}" >/dev/null
}
# screen_colour NAME: screendump of the stand-in; prints "magenta=F black=F other=F center=RRGGBB WxH".
screen_colour() {
  rm -f "$tmp/screen.ppm"
  standin_qmp "{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"$tmp/screen.ppm\"}}" >/dev/null
  python3 - "$tmp/screen.ppm" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
parts, pos = [], 0
while len(parts) < 4:  # P6 W H MAX, whitespace separated
    while data[pos:pos + 1].isspace(): pos += 1
    end = pos
    while not data[end:end + 1].isspace(): end += 1
    parts.append(data[pos:end]); pos = end
pos += 1
w, h = int(parts[1]), int(parts[2])
px = data[pos:pos + w * h * 3]
count = {"magenta": 0, "black": 0, "other": 0}
for i in range(0, len(px), 3 * 7):  # every 7th pixel is plenty
    p = px[i:i + 3]
    count["magenta" if p == b"\xff\x00\xff" else "black" if p == b"\x00\x00\x00" else "other"] += 1
total = sum(count.values())
c = (h // 2 * w + w // 2) * 3
print(" ".join(f"{k}={v / total:.3f}" for k, v in count.items()), f"center={px[c:c + 3].hex()}", f"{w}x{h}")
EOF
}
events_down() { grep -aE '"event":"(SHUTDOWN|RESET|POWERDOWN)"' "$STANDIN_RUN/events.jsonl" || true; }

standin_boot "rescuevm.enable=1 $params"
boot=$STANDIN_BOOT_SECONDS

# --- the plan says where the screen goes --------------------------------------------------------
plan=$(standin_run rescuevm plan) || true
grep -q '^Screen: the server.s console (/dev/dri/card0 bochs-drm)' <<<"$plan" \
  || rv_fail "rescuevm plan does not put the screen on /dev/dri/card0 (bochs-drm): $(grep -i screen <<<"$plan")"
rv_pass "rescuevm plan: the screen goes to the server's console, /dev/dri/card0 (bochs-drm) (stand-in up in ${boot}s)"

# --- protection and hand-over ---------------------------------------------------------------------
wait_journal 'guest is running' "$guest_timeout" || fail_with_journal "the agent never said the guest runs"
wait_journal 'kernel.sysrq .* -> ' 60 || fail_with_journal "the agent did not restrict kernel.sysrq"
wait_journal 'ctrl-alt-del.target masked until the agent stops' 60 || fail_with_journal "ctrl-alt-del.target was not masked"
[[ $(standin_run systemctl is-enabled ctrl-alt-del.target || true) == masked-runtime ]] \
  || fail_with_journal "ctrl-alt-del.target is $(standin_run systemctl is-enabled ctrl-alt-del.target || true), not masked-runtime"
sysrq_before=$(grep -oE 'kernel.sysrq [0-9]+ -> [0-9]+' <<<"$(journal)" | head -n 1)
sysrq_now=$(standin_run cat /proc/sys/kernel/sysrq)
(( (sysrq_now & ~18) == 0 )) || fail_with_journal "kernel.sysrq is $sysrq_now during the session: reboot/kill bits still on"
[[ $(standin_run cat /proc/sys/kernel/ctrl-alt-del) == 0 ]] || fail_with_journal "kernel.ctrl-alt-del is not 0"
rv_pass "host protected: $sysrq_before (now $sysrq_now), kernel.ctrl-alt-del 0, ctrl-alt-del.target masked-runtime"

wait_journal 'drawing the VM.s screen on DRM /dev/dri/card0' 120 || fail_with_journal "the console viewer never drew on /dev/dri/card0"
wait_journal 'handed to the VM as rv-input-event[0-9]+' 60 || fail_with_journal "no input device was handed to the VM"
wait_guest 1 '^RVTEST screen colour=ff00ff' "$guest_timeout" || fail_with_journal "the guest did not fill its screen"
wait_guest 1 '^RVTEST ready' "$guest_timeout" || fail_with_journal "the guest did not get to 'ready'"
handed=$(grep -oE '/dev/input/event[0-9]+ \([^)]*\) handed to the VM' <<<"$(journal)" | sort -u)
grep -q 'QEMU QEMU USB Keyboard' <<<"$handed" || fail_with_journal "the stand-in's USB keyboard was not handed to the VM: $handed"
grep -q 'QEMU QEMU USB Tablet' <<<"$handed" || fail_with_journal "the stand-in's USB tablet was not handed to the VM: $handed"
! grep -q 'Power Button' <<<"$handed" || fail_with_journal "the ACPI power button was handed to the VM: $handed"
rv_pass "input devices handed to the VM: $(tr '\n' ';' <<<"$handed")"

# --- the screen -----------------------------------------------------------------------------------
deadline=$((SECONDS + 120))
while :; do
  shot=$(screen_colour) || rv_fail "screendump of the stand-in failed"
  [[ $shot == *center=ff00ff* ]] && break
  ((SECONDS < deadline)) || fail_with_journal "the stand-in's screen does not show the guest's magenta: $shot"
  sleep 2
done
python3 -c 'import sys; d = dict(kv.split("=") for kv in sys.argv[1].split()[:3]); sys.exit(0 if float(d["magenta"]) >= 0.6 and float(d["other"]) <= 0.01 else 1)' "$shot" \
  || fail_with_journal "the stand-in's screen is not the guest's magenta with black bars: $shot"
rv_pass "screendump of the stand-in shows the nested guest's screen: $shot"

status=$(standin_run rescuevm status) || fail_with_journal "rescuevm status failed"
grep -q "^screen: *server's console: DRM /dev/dri/card0" <<<"$status" || fail_with_journal "status does not say the screen is on the server's console: $status"
grep -qE '^input: .*keyboard .*: in the VM' <<<"$status" || fail_with_journal "status does not list the keyboard in the VM: $status"
rv_pass "rescuevm status: $(grep -E '^(screen|input):' <<<"$status" | tr '\n' ';')"

# --- keys and pointer -----------------------------------------------------------------------------
a0=$(guest_count '^RVTEST key code=30 value=1')
keys a
wait_guest $((a0 + 1)) '^RVTEST key code=30 value=1' 60 || fail_with_journal "send-key a did not reach the guest"
p0=$(guest_count '^RVTEST pointer')
standin_qmp '{"execute":"input-send-event","arguments":{"events":[{"type":"abs","data":{"axis":"x","value":16384}},{"type":"abs","data":{"axis":"y","value":8192}}]}}' >/dev/null
standin_qmp '{"execute":"input-send-event","arguments":{"events":[{"type":"abs","data":{"axis":"x","value":4096}},{"type":"abs","data":{"axis":"y","value":20000}}]}}' >/dev/null
wait_guest $((p0 + 1)) '^RVTEST pointer' 60 || fail_with_journal "absolute pointer events did not reach the guest"
rv_pass "send-key a and absolute pointer moves (usb-tablet) reach the nested guest"

c0=$(guest_count '^RVTEST ctrl-alt-del')
keys ctrl alt delete
wait_guest $((c0 + 1)) '^RVTEST ctrl-alt-del' 60 || fail_with_journal "ctrl-alt-delete did not reach the guest"
sleep 2 # a reboot of the stand-in would have started by now: give it the chance to show
[[ -z $(events_down) ]] || rv_fail "ctrl-alt-delete took the stand-in down: $(events_down)"
standin_run true || rv_fail "the stand-in does not answer after ctrl-alt-delete"
[[ $(standin_run systemctl show -p ActiveState --value ctrl-alt-del.target) == inactive ]] || rv_fail "ctrl-alt-del.target is active in the stand-in"
rv_pass "ctrl-alt-delete typed into the stand-in reached the guest (RVTEST ctrl-alt-del); the stand-in stayed up"

# --- the keyboard unplugged and plugged again -----------------------------------------------------
kbd=$(standin_qmp '{"execute":"qom-list","arguments":{"path":"/machine/peripheral-anon"}}' \
  | python3 -c 'import json,sys
for line in sys.stdin:
    r = json.loads(line).get("return")
    if isinstance(r, list):
        for p in r:
            if p["type"] == "child<usb-kbd>": print("/machine/peripheral-anon/" + p["name"])')
[[ -n $kbd ]] || rv_fail "no usb-kbd in the stand-in's /machine/peripheral-anon"
n0=$(grep -c 'QEMU QEMU USB Keyboard) handed to the VM' <<<"$(journal)")
standin_qmp "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"$kbd\"}}" --wait-event DEVICE_DELETED >/dev/null \
  || rv_fail "device_del $kbd failed"
wait_journal 'went away: deleting its QEMU object' 60 || fail_with_journal "the agent did not see the keyboard go"
standin_qmp '{"execute":"device_add","arguments":{"driver":"usb-kbd","bus":"xhci.0","id":"kbd2"}}' >/dev/null \
  || rv_fail "device_add usb-kbd failed"
deadline=$((SECONDS + 60))
until (($(grep -c 'QEMU QEMU USB Keyboard) handed to the VM' <<<"$(journal)") > n0)); do
  ((SECONDS < deadline)) || fail_with_journal "the re-plugged keyboard was not handed to the VM again"
  sleep 1
done
x0=$(guest_count '^RVTEST key code=45 value=1')
keys x
wait_guest $((x0 + 1)) '^RVTEST key code=45 value=1' 60 || fail_with_journal "send-key x on the re-plugged keyboard did not reach the guest"
rv_pass "usb-kbd device_del/device_add: the agent re-added it (object-del/object-add) and its keys reach the guest"

# --- Alt+SysRq+B ----------------------------------------------------------------------------------
# It reaches the guest, never the stand-in: the keyboard is grabbed, and kernel.sysrq has no reboot
# bit anyway. The guest's own kernel takes Alt+SysRq out of its input stream (no RVTEST key line)
# and, with Debian's default kernel.sysrq, reboots on B: that reboot is the proof it got there.
r0=$(grep -c 'guest restarted itself' <<<"$(journal)" || true)
keys alt sysrq b
deadline=$((SECONDS + 90))
until (($(grep -c 'guest restarted itself' <<<"$(journal)" || true) > r0)); do
  ((SECONDS < deadline)) || fail_with_journal "Alt+SysRq+B did not reach the guest (it did not reboot)"
  sleep 1
done
[[ -z $(events_down) ]] || rv_fail "Alt+SysRq+B took the stand-in down: $(events_down)"
standin_run true || rv_fail "the stand-in does not answer after Alt+SysRq+B"
! grep -q 'sysrq' <<<"$(standin_run dmesg)" || rv_fail "the stand-in's kernel saw SysRq: $(standin_run dmesg | grep sysrq)"
rv_pass "Alt+SysRq+B typed into the stand-in reached the guest (it rebooted); the stand-in stayed up, its kernel saw no SysRq"

# --- stop: everything given back ------------------------------------------------------------------
# The guest rebooted on SysRq+B: it must be up again to hear the ACPI power button (else the
# stop waits out supervisor.shutdown_timeout).
wait_guest 2 '^RVTEST acpi-listen' "$guest_timeout" || fail_with_journal "the guest did not come back after Alt+SysRq+B"
STANDIN_EXEC_TIMEOUT=300 standin_run systemctl stop rescuevm.service || fail_with_journal "systemctl stop rescuevm failed"
wait_journal 'kernel.sysrq and kernel.ctrl-alt-del back to' 30 || fail_with_journal "the console settings were not given back"
orig=$(sed -E 's/kernel.sysrq ([0-9]+) -> .*/\1/' <<<"$sysrq_before")
[[ $(standin_run cat /proc/sys/kernel/sysrq) == "$orig" ]] || rv_fail "kernel.sysrq is not back to $orig"
[[ $(standin_run systemctl is-enabled ctrl-alt-del.target || true) != masked* ]] || rv_fail "ctrl-alt-del.target is still masked after the stop"
! standin_run pgrep -f 'rescuevm screen' >/dev/null || rv_fail "the console viewer still runs after the stop"
deadline=$((SECONDS + 30))
until [[ $(screen_colour) != *center=ff00ff* ]]; do
  ((SECONDS < deadline)) || rv_fail "the stand-in's screen still shows the guest 30 s after the stop"
  sleep 1
done
rv_pass "after the stop: kernel.sysrq back to $orig, ctrl-alt-del.target unmasked, viewer gone, the screen the host's again"

# --- no DRM device: one line, a normal VM ---------------------------------------------------------
pci=$(standin_sh 'basename "$(readlink -f /sys/class/drm/card0/device)"')
standin_sh "echo $pci >/sys/bus/pci/drivers/bochs-drm/unbind" || rv_fail "cannot unbind bochs-drm from $pci"
standin_sh 'test ! -e /dev/dri/card0 && ! ls /sys/class/graphics/fb[0-9]* >/dev/null 2>&1' \
  || rv_fail "after unbinding bochs-drm the stand-in still has a DRM card or a framebuffer"
mark=$(standin_run date +%s)
STANDIN_EXEC_TIMEOUT=300 standin_run systemctl start rescuevm.service || fail_with_journal "rescuevm did not start again without a DRM device"
since="journalctl --no-pager -t rescuevm -o cat --since=@$mark"
deadline=$((SECONDS + guest_timeout))
until grep -q 'guest is running' <<<"$(standin_sh "$since")"; do
  ((SECONDS < deadline)) || fail_with_journal "without a DRM device the guest did not run"
  sleep 1
done
notices=$(grep -cE 'no display device \(no DRM card, no /dev/fb\*\).*VNC socket only' <<<"$(standin_sh "$since")" || true)
((notices == 1)) || fail_with_journal "without a DRM device the agent said the notice $notices times, not once"
! grep -qE 'console viewer started|handed to the VM' <<<"$(standin_sh "$since")" || fail_with_journal "the viewer or input hand-over ran without a DRM device"
status=$(standin_run rescuevm status) || fail_with_journal "rescuevm status failed"
grep -q '^screen: *VNC socket /run/rescuevm/vnc.sock' <<<"$status" || rv_fail "status without DRM: $(grep screen <<<"$status")"
STANDIN_EXEC_TIMEOUT=300 standin_run systemctl stop rescuevm.service || true
[[ -z $(events_down) ]] || rv_fail "the stand-in went down: $(events_down)"
rv_pass "without a DRM device: one notice line, the VM runs as before, status says the VNC socket"

echo "standin_screen timings: stand-in up ${boot}s; total ${SECONDS}s"
standin_quit
