#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# rescuevm under a real systemd and udev: boots a stand-in server (tests/standin) once and shows from outside that the unit, the agent's notify/watchdog/logging, stop, crash recovery and the disk inventory behave.
#
# The stand-in is a QEMU (TCG) machine booting Debian's kernel with systemd as PID 1 on this
# machine's root (9p, read-only, tmpfs overlay), rescuevm installed from `meson install
# --destdir` of this build, two virtio disks (one qcow2, one 4Kn) and two AHCI disks with
# serials and models, and a NIC into a namespace with a gateway. The agent inside runs its guest
# (the test guest, direct kernel boot) with KVM: the stand-in's CPU is TCG's "max", which emulates
# AMD SVM, so the stand-in has a working /dev/kvm as a real server has (its guest boots in about
# 30 s; under nested TCG it took 4-6 minutes here). rescuevm.host.min_memory=1GiB comes from the
# stand-in's kernel command line. STANDIN_CPU=max,-svm,-vmx runs the guest under nested TCG
# instead (rescuevm.vm.accel=tcg is then added; allow STANDIN_GUEST_TIMEOUT=600 and more).
#
# One boot, with rescuevm.enable=1 (the unit starts at boot because of it):
#   - the unit is active after READY=1, which the agent sends once it is up and answers its
#     control socket (not when the guest runs: a slow or failing guest must not hit
#     TimeoutStartSec); StatusText follows the VM ('VM running'), NRestarts, ActiveState, SubState;
#   - `rescuevm disks --json`: source "udev", the serials, the AHCI models in full (sysfs
#     truncates them to 16 characters: only udev's database has them whole);
#   - every agent line is in the journal once and on the serial console once;
#   - the watchdog: WATCHDOG=1 keeps arriving; an agent stopped with SIGSTOP is killed by
#     systemd's watchdog and restarted, and re-attaches to the running QEMU;
#   - SIGKILL of the agent: systemd restarts it, it re-attaches, same QEMU, the guest not rebooted;
#   - `systemctl stop rescuevm`: the guest gets the ACPI power button and powers off before QEMU
#     ends; the stand-in stays up (guest agent answers, QMP status running, no SHUTDOWN/RESET);
#   - nothing started ctrl-alt-del.target, reboot/poweroff/halt/kexec.target;
#   - without rescuevm.enable=1 (a copy of /proc/cmdline without it bound over it, then
#     `systemctl start`): the enabled unit is skipped by its condition, no agent runs;
#   - the guest booted exactly once (its boot counter on the stand-in's disk, read from here).
# Timings (kernel start -> READY=1, agent start -> QEMU started, stop) are printed at the end.
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
standin_disk vd0 64M virtio RVM-VIRTIO-0
standin_disk vd1.qcow2 64M virtio RVM-VIRTIO-4KN "" 4096
standin_disk sd0 64M ahci RVM-SATA-0 "RVM Stand-in SATA Disk Zero"
standin_disk sd1 64M ahci RVM-SATA-1 "RVM Stand-in SATA Disk One"
standin_net
# The guest counts its boots on the disk with serial RVM-VIRTIO-0 (the stand-in's vd0 file).
standin_seed_file /etc/rescuevm/rescuevm.toml <<EOF
# rescuevm in the stand-in: the test guest instead of Windows, small, no network of its own.
[vm]
kernel = "$(rv_guest_kernel)"
initrd = "$RV_GUEST_DIR/initramfs.cpio.gz"
append = "$(rv_guest_append "rvtest.boot_counter=RVM-VIRTIO-0 rvtest.heartbeat=20")"
firmware = "bios"
memory = "256MiB"
cpus = 1
display = "none"

[network]
mode = "none"
EOF

params="rescuevm.host.min_memory=1GiB"
[[ ${STANDIN_CPU:-max} != *-svm* ]] || params+=" rescuevm.vm.accel=tcg"

unit_prop() { standin_run systemctl show -p "$1" --value rescuevm.service; }
# wait_unit PROP VALUE SEC: until `systemctl show -p PROP` is VALUE.
wait_unit() {
  local deadline=$((SECONDS + $3)) v
  while :; do
    v=$(unit_prop "$1" 2>/dev/null) || v=
    [[ $v == "$2" ]] && return 0
    ((SECONDS < deadline)) || { rv_log "rescuevm.service $1 is '$v', not '$2'"; return 1; }
    sleep 1
  done
}
# Output is read whole before grep sees it: with pipefail, `cmd | grep -q` fails when grep
# quits early and cmd gets EPIPE.
journal() { standin_sh "journalctl -b --no-pager $1"; }
fail_with_journal() {
  {
    echo "---- rescuevm.service"; standin_sh 'systemctl status --no-pager -n 0 rescuevm; journalctl -b -u rescuevm --no-pager | tail -n 40' 2>&1 || true
    echo "---- stand-in console (last 30 lines)"; standin_console_tail 30
  } >&2
  rv_fail "$*"
}

# --- the boot: rescuevm.enable=1 -----------------------------------------------------------------
standin_boot "rescuevm.enable=1 $params"
boot2=$STANDIN_BOOT_SECONDS
[[ $(standin_run systemctl is-enabled rescuevm.service) == enabled ]] || rv_fail "rescuevm.service is not enabled in the stand-in"
wait_unit ActiveState active 300 || fail_with_journal "rescuevm.service did not become active"
[[ $(unit_prop ConditionResult) == yes ]] || fail_with_journal "ConditionResult is not yes with rescuevm.enable=1"
show=$(standin_run systemctl show -p StatusText,NRestarts,ActiveState,SubState,Type,MainPID,WatchdogUSec rescuevm.service)
rv_log "systemctl show: $(tr '\n' ' ' <<<"$show")"
grep -qx 'Type=notify' <<<"$show" || rv_fail "the unit is not Type=notify: $show"
grep -qx 'SubState=running' <<<"$show" || fail_with_journal "SubState is not running: $show"
grep -qx 'NRestarts=0' <<<"$show" || fail_with_journal "the agent was restarted before the test touched it: $show"
grep -qx 'WatchdogUSec=30s' <<<"$show" || rv_fail "the watchdog is not 30 s: $show"
pid1=$(sed -n 's/^MainPID=//p' <<<"$show")
# Type=notify: "Started" comes from READY=1, which the agent sends once its control socket answers.
started=$(grep -m1 'Started rescuevm.service' <<<"$(journal '-u rescuevm -o short-monotonic')") \
  || fail_with_journal "no 'Started rescuevm.service' in the journal"
wait_unit StatusText "VM running" 120 || fail_with_journal "StatusText did not become 'VM running'"
agent=$(journal '-t rescuevm -o short-monotonic')
grep -q 'guest is running (boot 1)' <<<"$agent" || fail_with_journal "StatusText says 'VM running' but the agent never said the guest runs"
mono() { sed -E 's/^\[ *([0-9]+\.[0-9]+)\].*/\1/' <<<"$1"; }
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' \
  "$(mono "$(grep -m1 'rescuevm .* starting' <<<"$agent")")" "$(mono "$started")" \
  || fail_with_journal "systemd reported the unit started before the agent itself started"
t_ready=$(mono "$started")
t_agent=$(mono "$(grep -m1 'rescuevm .* starting' <<<"$agent")")
t_qemu=$(mono "$(grep -m1 'QEMU started, pid' <<<"$agent")")
qemu_pid=$(grep -m1 -o 'QEMU started, pid [0-9]*' <<<"$agent" | grep -o '[0-9]*$')
rv_pass "rescuevm.enable=1: active (running) after READY=1, then StatusText 'VM running', NRestarts=0, watchdog 30 s; READY=1 ${t_ready}s after kernel start, QEMU ${t_agent}s -> ${t_qemu}s"

# --- disks through udev -------------------------------------------------------------------------
standin_run rescuevm disks --json >"$tmp/disks.json" || rv_fail "rescuevm disks --json failed in the stand-in"
standin_sh 'for d in sda sdb; do echo "$d $(cat /sys/block/$d/device/model)"; done' >"$tmp/sysfs-models"
python3 - "$tmp/disks.json" "$tmp/sysfs-models" <<'EOF' || rv_fail "rescuevm disks --json does not show the udev inventory: $(cat "$tmp/disks.json")"
import json, sys
disks = {d["serial"]: d for d in json.load(open(sys.argv[1]))["disks"]}
sysfs = dict(l.rstrip("\n").split(" ", 1) for l in open(sys.argv[2]))
want = {  # serial: (model, logical block size)
    "RVM-VIRTIO-0": ("", 512), "RVM-VIRTIO-4KN": ("", 4096),
    "RVM-SATA-0": ("RVM Stand-in SATA Disk Zero", 512), "RVM-SATA-1": ("RVM Stand-in SATA Disk One", 512),
}
bad = []
for serial, (model, lbs) in want.items():
    d = disks.get(serial)
    if d is None:
        bad.append(f"no disk with serial {serial} (serials: {sorted(disks)})"); continue
    if d["source"] != "udev": bad.append(f"{d['name']}: source {d['source']!r}, not 'udev'")
    if model and d["model"] != model: bad.append(f"{d['name']}: model {d['model']!r}, not {model!r}")
    if d["logical_block_size"] != lbs: bad.append(f"{d['name']}: logical block size {d['logical_block_size']}, not {lbs}")
    if not d["selected"]: bad.append(f"{d['name']}: not selected: {d['reason']}")
    if model and sysfs.get(d["name"], "").strip() == model:
        bad.append(f"{d['name']}: sysfs has the whole model too, so this does not tell udev from sysfs")
if bad:
    print("\n".join(bad), file=sys.stderr); sys.exit(1)
EOF
rv_pass "rescuevm disks --json: 4 disks from udev with their serials; AHCI models whole from udev (sysfs: $(tr '\n' ';' <"$tmp/sysfs-models"))"

# --- the guest boots to where it hears the power button (its init watches it) --------------------
# Waited for now, while this agent reads the guest's serial console: what the guest prints while
# no agent is connected (the restarts below) is not logged.
deadline=$((SECONDS + ${STANDIN_GUEST_TIMEOUT:-300}))
until standin_sh 'grep -aq "^RVTEST acpi-listen" /run/rescuevm/guest-console.log' 2>/dev/null; do
  ((SECONDS < deadline)) || fail_with_journal "the guest did not boot to 'RVTEST acpi-listen' within ${STANDIN_GUEST_TIMEOUT:-300} s"
  sleep 2
done

# --- watchdog ------------------------------------------------------------------------------------
w1=$(unit_prop WatchdogTimestampMonotonic)
deadline=$((SECONDS + 17))   # the agent pings every WatchdogSec/2 = 15 s
until w2=$(unit_prop WatchdogTimestampMonotonic) && ((w1 > 0 && w2 > w1)); do
  ((SECONDS < deadline)) || fail_with_journal "no WATCHDOG=1 arrived within 17 s (WatchdogTimestampMonotonic $w1 -> $w2)"
  sleep 1
done
standin_run kill -STOP "$pid1"
wait_unit NRestarts 1 90 || fail_with_journal "an agent stopped with SIGSTOP was not restarted by the watchdog"
grep -q 'rescuevm.service: Watchdog timeout' <<<"$(journal '-u rescuevm')" || fail_with_journal "the restart was not the watchdog's"
wait_unit ActiveState active 120 || fail_with_journal "the agent restarted by the watchdog did not become active"
pid2=$(unit_prop MainPID)
grep -q "re-attaching without restarting it" <<<"$(journal '-t rescuevm')" || fail_with_journal "the restarted agent did not re-attach"
[[ $(standin_run pgrep -d, -f '^qemu-system') == "$qemu_pid" ]] || fail_with_journal "QEMU is not the same process after the watchdog restart"
rv_pass "watchdog: WATCHDOG=1 keeps coming; an agent stopped by SIGSTOP was killed after 30 s, restarted (pid $pid1 -> $pid2), re-attached to QEMU $qemu_pid"

# --- SIGKILL --------------------------------------------------------------------------------------
standin_run kill -KILL "$pid2"
wait_unit NRestarts 2 60 || fail_with_journal "the agent killed with SIGKILL was not restarted"
wait_unit ActiveState active 120 || fail_with_journal "the agent restarted after SIGKILL did not become active"
pid3=$(unit_prop MainPID)
[[ $pid3 != "$pid2" ]] || fail_with_journal "MainPID did not change after SIGKILL"
(($(grep -c "re-attaching without restarting it" <<<"$(journal '-t rescuevm')") == 2)) \
  || fail_with_journal "the agent restarted after SIGKILL did not re-attach"
[[ $(standin_run pgrep -d, -f '^qemu-system') == "$qemu_pid" ]] || fail_with_journal "QEMU is not the same process after SIGKILL"
wait_unit StatusText "VM running" 60 || fail_with_journal "StatusText after re-attach: $(unit_prop StatusText)"
rv_pass "SIGKILL: systemd restarted the agent (pid $pid2 -> $pid3, NRestarts=2), it re-attached to QEMU $qemu_pid; StatusText 'VM running'"

# --- systemctl stop: ACPI first, the stand-in stays up --------------------------------------------
t_guest=$SECONDS
standin_run systemctl stop rescuevm.service || fail_with_journal "systemctl stop rescuevm failed"
t_stop=$((SECONDS - t_guest))
[[ $(unit_prop ActiveState) == inactive && $(unit_prop Result) == success ]] \
  || fail_with_journal "after stop: ActiveState $(unit_prop ActiveState), Result $(unit_prop Result)"
journal '-t rescuevm -o cat' >"$tmp/agent-journal.txt"
acpi=$(grep -n -m1 'asking the guest to power down (ACPI' "$tmp/agent-journal.txt" | cut -d: -f1) \
  || fail_with_journal "the agent did not ask for an ACPI power-down on stop"
off=$(grep -n -m1 'guest powered off as asked' "$tmp/agent-journal.txt" | cut -d: -f1) \
  || fail_with_journal "the guest did not power off by itself on stop"
((acpi < off)) || fail_with_journal "the guest powered off before the ACPI request?"
# A re-attached QEMU is not the agent's child: its exit status is unknown to it, but it must end
# after the power-down, without the agent's timeout or kill.
grep -qE 'QEMU (exited with status 0|ended \(status unknown: not our child\))' "$tmp/agent-journal.txt" \
  || fail_with_journal "no line saying QEMU ended after the power-down"
! grep -E 'did not power off in time|killing it' "$tmp/agent-journal.txt" \
  || fail_with_journal "the agent had to force QEMU down (lines above)"
standin_sh 'grep -aq "^RVTEST acpi-powerdown" /run/rescuevm/guest-console.log' || fail_with_journal "the guest did not see the power button"
! standin_run pgrep -f '^qemu-system' >/dev/null || fail_with_journal "QEMU still runs after the stop"
standin_run true || rv_fail "the stand-in does not answer after the stop"
state=$(standin_qmp query-status) || rv_fail "the stand-in's QMP does not answer"
grep -q '"status":"running"' <<<"$state" || rv_fail "the stand-in is not running: $state"
! grep -aqE '"event":"(SHUTDOWN|RESET|POWERDOWN)"' "$STANDIN_RUN/events.jsonl" \
  || rv_fail "the stand-in itself went down or rebooted: $(grep -aE '"event":"(SHUTDOWN|RESET|POWERDOWN)"' "$STANDIN_RUN/events.jsonl")"
rv_pass "systemctl stop: ACPI power button first, the guest powered off by itself, QEMU ended, unit inactive/success after ${t_stop}s; the stand-in is still up"

# --- journal and serial console: every agent line once in each ----------------------------------
journal '-t rescuevm -o cat' >"$tmp/agent-journal.txt"
tr -d '\r' <"$STANDIN_RUN/serial.log" >"$tmp/console.txt"
python3 - "$tmp/agent-journal.txt" "$tmp/console.txt" <<'EOF' || rv_fail "agent lines are missing or doubled"
import sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
console = open(sys.argv[2], errors="replace").read()
bad = []
if len(lines) < 10: bad.append(f"only {len(lines)} agent lines in the journal")
seen = set()
for l in lines:
    if l in seen: bad.append(f"twice in the journal: {l}")
    seen.add(l)
    n = console.count(l)
    if n != 1: bad.append(f"{n} times on the console: {l}")
if bad:
    print("\n".join(bad[:20]), file=sys.stderr); sys.exit(1)
EOF
rv_pass "every one of the agent's (three agents, start to stop) $(grep -c . "$tmp/agent-journal.txt") lines is once in the journal and once on the serial console"

# --- nothing asked for a reboot of the stand-in -------------------------------------------------
targets=$(standin_run systemctl show -p ActiveState,Id ctrl-alt-del.target reboot.target poweroff.target halt.target kexec.target)
! grep -q '^ActiveState=active' <<<"$targets" || rv_fail "a shutdown target is active: $targets"
jobs=$(standin_run systemctl list-jobs --no-legend)
! grep -qE 'ctrl-alt-del|reboot|poweroff|halt|kexec' <<<"$jobs" || rv_fail "a shutdown job is queued: $jobs"
# qemu-ga logs each guest-exec with its command line (this test's own queries): not evidence.
# The agent's own lines about masking ctrl-alt-del.target (its console guard) are not either.
if journal '' | grep -v ' qemu-ga\[' | grep -vE ' rescuevm\[[0-9]+\]: .* console: ctrl-alt-del\.target (masked|unmasked)' | grep -E 'ctrl-alt-del\.target|(reboot|poweroff|halt|kexec)\.target|System is rebooting|System is powering down|systemd-reboot|Reached target.*Shutdown'; then
  rv_fail "the journal shows a shutdown or reboot of the stand-in (lines above)"
fi
rv_pass "no ctrl-alt-del.target, reboot, poweroff, halt or kexec in the stand-in's journal or jobs"

# --- without rescuevm.enable=1 the unit does not start -------------------------------------------
# systemd (PID 1, not in a container) reads /proc/cmdline at each check of
# ConditionKernelCommandLine=: a copy without rescuevm.enable=1 bound over it is, for that check,
# a boot without it (one stand-in boot instead of two; the start at boot is shown above).
standin_sh 'sed "s/rescuevm\.enable=1//" /proc/cmdline >/run/cmdline-without && mount --bind /run/cmdline-without /proc/cmdline' \
  || rv_fail "could not bind a kernel command line without rescuevm.enable=1 over /proc/cmdline in the stand-in"
lines_before=$(journal '-t rescuevm -o cat' | grep -c .)
checked_before=$(unit_prop ConditionTimestampMonotonic)
standin_run systemctl start rescuevm.service || fail_with_journal "systemctl start rescuevm failed (a failed condition is not an error)"
[[ $(unit_prop ConditionTimestampMonotonic) != "$checked_before" ]] || fail_with_journal "systemd did not check the unit's condition again"
[[ $(unit_prop ConditionResult) == no ]] || fail_with_journal "without rescuevm.enable=1 the unit's condition did not fail"
[[ $(unit_prop ActiveState) == inactive ]] || fail_with_journal "without rescuevm.enable=1 the unit is $(unit_prop ActiveState)"
grep -q 'unmet condition check (ConditionKernelCommandLine=rescuevm.enable=1)' <<<"$(journal '-u rescuevm')" \
  || fail_with_journal "the journal does not say the unit was skipped for ConditionKernelCommandLine=rescuevm.enable=1"
(($(journal '-t rescuevm -o cat' | grep -c .) == lines_before)) || fail_with_journal "the agent ran without rescuevm.enable=1"
! standin_run pgrep -x rescuevm >/dev/null || rv_fail "a rescuevm process runs without rescuevm.enable=1"
standin_sh 'umount /proc/cmdline' || rv_fail "could not unmount the stand-in's /proc/cmdline copy"
rv_pass "without rescuevm.enable=1 on the kernel command line: rescuevm.service (enabled) is skipped by ConditionKernelCommandLine, no agent runs"

# --- the guest booted once: its counter on the stand-in's disk, read from this side ---------------
counter=$(dd if="$STANDIN_RUN/disks/vd0" bs=512 skip=4096 count=1 status=none | tr -d '\0' | head -c 64)
[[ $counter == "RVBOOT 1"* ]] || rv_fail "the guest's boot counter on vd0 is '$counter', not 'RVBOOT 1': it booted again (or never)"
rv_pass "the guest booted exactly once across the watchdog restart and the SIGKILL (RVBOOT 1 on the stand-in's disk)"

echo "standin_systemd timings: stand-in boot to guest agent ${boot2}s; kernel start -> READY=1 ${t_ready}s; agent start ${t_agent}s -> QEMU started ${t_qemu}s; stop ${t_stop}s"
standin_quit
