#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# safety_runtime: what the agent keeps and reads back is safe: a full runtime_dir never truncates qemu.json, a lost or emptied record never starts a second QEMU, a runtime_dir others could write is refused untouched, and bad paths or values are refused alike by plan and run.
#
# Usage (root): tests/integration/safety_runtime.sh   (meson: meson test -C BUILD safety_runtime)
#
# Asserted:
#   1. runtime_dir on a small tmpfs that the test fills up: a `vm reset` (the boot count goes
#      into qemu.json) cannot write the record; the old qemu.json stays whole (same pid, valid
#      JSON), the failure is logged, the VM goes on;
#   2. qemu.json deleted, then the agent SIGKILLed and started again: the new agent finds the
#      running QEMU by its command line and takes it over (no second QEMU); the same with a
#      qemu.json truncated to 0 bytes;
#   3. a runtime_dir owned by a non-root user, holding a network-claim.json that user planted
#      (setpriv): run and plan exit 3 naming the owner; the directory's mode and owner, the
#      planted file and what it points at are unchanged (run in an empty network namespace);
#      a root-owned but world-writable (1777) runtime_dir: refused, not chmodded;
#   4. log.console = "../tmp/x", "/etc/passwd": refused (exit 2) with a line naming log.console,
#      also through rescuevm.log.console= on the kernel command line; "/dev/loopN" (a device
#      name, so the configuration takes it): run says it cannot write the log there, it is not a
#      terminal; nothing is written to any of them;
#   5. a FIFO as --config and as --kernel-cmdline: refused at once (exit 2, "not a regular
#      file"), no hang;
#   6. plan and run both refuse (exit 3, the same check FAILED) a runtime_dir whose sockets
#      would be longer than sun_path, vm.cpus = 1024, vm.memory = "1", a kernel that is a
#      directory, a kernel that is /dev/zero.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"
rv_require setpriv mkfifo mount umount

tmpfs=$(rv_tmpdir)
mount -t tmpfs -o size=4M,mode=0700 rvtest-rt "$tmpfs"
rv_cleanup_add "umount -l $tmpfs"
SUP_RT=$tmpfs/rt
sup_setup "rvtest.heartbeat=2 rvtest.final=wait"

# --- 1: a full runtime_dir ---------------------------------------------------------------------
sup_agent_start
sup_wait_boots 1 || sup_fail "the guest did not boot"
rv_wait_for '^RVTEST wait' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not get ready"
qemu_pid=$(sup_status vm.qemu_pid)
[[ $(sup_record_pid) == "$qemu_pid" ]] || sup_fail "qemu.json does not name QEMU $qemu_pid"
dd if=/dev/zero of="$tmpfs/filler" bs=4k status=none 2>/dev/null || true
df -h "$tmpfs" | tail -n 1 >&2
out=$(sup_rescuevm vm reset 2>&1) || sup_fail "vm reset on a full runtime_dir: $out"
sup_wait_status vm.boots 2 30 || sup_fail "the reset was not counted"
rv_wait_for 'qemu.json.*(No space left|space)' "$SUP_AGENT_LOG" 20 || sup_fail "the failed qemu.json write was not logged"
python3 - "$SUP_RT/qemu.json" "$qemu_pid" <<'EOF' || sup_fail "qemu.json was damaged by the full runtime_dir"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["pid"] == int(sys.argv[2]), r
assert r["boots"] == 1, r            # the update could not be written: the old record stays
print("qemu.json intact:", {k: r[k] for k in ("pid", "boots", "session_uuid")})
EOF
[[ -z $(find "$SUP_RT" -name 'qemu.json.tmp*') ]] || sup_fail "a temporary record was left behind: $(find "$SUP_RT" -name 'qemu.json.tmp*')"
[[ $(sup_status vm.state) == running ]] || sup_fail "the VM is $(sup_status vm.state) on a full runtime_dir"
rm -f "$tmpfs/filler"
rv_pass "runtime_dir full: the qemu.json update failed with a log line, the old record (QEMU $qemu_pid, boots 1) stayed whole"

# --- 2: the record lost or emptied -----------------------------------------------------------------
takeover() { # takeover WHAT: SIGKILL the agent, start another, which must take QEMU over
  kill -KILL "$SUP_AGENT_PID"
  wait "$SUP_AGENT_PID" 2>/dev/null || true
  $2
  sup_agent_start
  sup_wait_status vm.state running 60 || sup_fail "$1: the new agent does not show the VM running"
  [[ $(sup_status vm.qemu_pid) == "$qemu_pid" ]] || sup_fail "$1: the new agent supervises QEMU $(sup_status vm.qemu_pid), not $qemu_pid"
  [[ $(sup_qemu_pids | tr '\n' ' ') == "$qemu_pid " ]] || sup_fail "$1: QEMUs on the runtime_dir: $(sup_qemu_pids | tr '\n' ' ')"
  rv_wait_for "found QEMU pid $qemu_pid of this runtime directory without a usable record: taking it over" "$SUP_AGENT_LOG" 5 \
    || sup_fail "$1: no line about taking QEMU over by its command line"
  rv_wait_for '"pid"' "$SUP_RT/qemu.json" 10 || sup_fail "$1: qemu.json was not written again"
  [[ $(sup_record_pid) == "$qemu_pid" ]] || sup_fail "$1: qemu.json names $(sup_record_pid)"
}
takeover "qemu.json deleted" "rm -f $SUP_RT/qemu.json"
takeover "qemu.json emptied" "truncate -s 0 $SUP_RT/qemu.json"
# The guest rebooted on the vm reset above: let it listen for the power button again, or the
# stop below waits out shutdown_timeout (2 min) for a guest that never saw the button.
rv_wait_for_count 2 '^RVTEST acpi-listen' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not come back after the vm reset"
n=$(rv_count 'found QEMU pid .* without a usable record' "$SUP_AGENT_LOG")
((n == 2)) || sup_fail "$n take-overs by command line logged, want 2"
sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
! sup_alive "$qemu_pid" || sup_fail "QEMU $qemu_pid still runs"
rv_pass "qemu.json deleted, then emptied: each new agent took QEMU $qemu_pid over by its command line, no second QEMU; exit 0 at the end"

# --- 3: runtime_dir others could write ---------------------------------------------------------------
NS=$(rv_netns rvsafe)
base=$(rv_tmpdir)
chmod 0755 "$base"
urt=$base/user-rt
mkdir "$urt"
chown nobody:nogroup "$urt"
chmod 0700 "$urt"
touch "$base/keep-me"
setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c "cat >'$urt/network-claim.json'" <<EOF
{"version":1,"claimed_at":"2026-01-01T00:00:00Z","uplink":"rvnope0","ifindex":999999,"mac":"02:00:00:00:00:99",
 "macvtap":"rvtap0","macvtap_ifindex":999998,"tap_node":"$base/keep-me","tap_node_created":true,"proc_root":"/proc",
 "addresses":[],"routes":[],"sysctls":[{"path":"$base/written-by-root","value":"pwned"}],"dhcp_clients":[],"facts":{}}
EOF
planted=$(rv_sha256 "$urt/network-claim.json")
sed "s|^runtime_dir = .*|runtime_dir = \"$urt\"|; s|^mode = \"none\"|mode = \"macvtap\"\nuplink = \"rvnope0\"|" "$SUP_CONF" >"$SUP_TMP/user-rt.toml"
check_refused() { # check_refused CONFIG WORDS: plan and run exit 3 with a runtime-dir FAILED line saying WORDS
  local rc=0 out
  out=$(timeout 60 ip netns exec "$NS" "$RESCUEVM" --config "$1" --kernel-cmdline "$SUP_CMDLINE" run 2>&1) || rc=$?
  [[ $rc == 3 && $out == *"runtime-dir: FAILED"* && $out == *"$2"* ]] || sup_fail "run with $1: want exit 3 and '$2', got $rc: $out"
  rc=0
  out=$(timeout 60 ip netns exec "$NS" "$RESCUEVM" --config "$1" --kernel-cmdline "$SUP_CMDLINE" plan 2>&1) || rc=$?
  [[ $rc == 3 && $out == *"$2"* ]] || sup_fail "plan with $1: want exit 3 and '$2', got $rc: $out"
}
check_refused "$SUP_TMP/user-rt.toml" "owned by uid $(id -u nobody), not root"
[[ $(stat -c '%a %U' "$urt") == "700 nobody" ]] || sup_fail "the user's runtime_dir is now $(stat -c '%a %U' "$urt")"
[[ $(rv_sha256 "$urt/network-claim.json") == "$planted" && -e $base/keep-me && ! -e $base/written-by-root ]] \
  || sup_fail "the planted claim record was acted on"
[[ $(find "$urt" -mindepth 1 | wc -l) == 1 ]] || sup_fail "the agent created files in the user's runtime_dir: $(ls -A "$urt")"
ww=$base/world
mkdir "$ww"
chmod 1777 "$ww"
sed "s|^runtime_dir = .*|runtime_dir = \"$ww\"|" "$SUP_CONF" >"$SUP_TMP/world-rt.toml"
check_refused "$SUP_TMP/world-rt.toml" "writable by users other than root"
[[ $(stat -c %a "$ww") == 1777 && -z $(ls -A "$ww") ]] || sup_fail "the world-writable runtime_dir was changed: $(stat -c %a "$ww") $(ls -A "$ww")"
rv_pass "runtime_dir owned by nobody with a planted claim record, and a 1777 runtime_dir: plan and run exit 3, nothing chmodded, created or acted on"

# --- 4: log.console ----------------------------------------------------------------------------------
victim=$(rv_loop_disk 1M)
dd if=/dev/urandom of="$victim" bs=64k count=16 status=none conv=fsync
victim_sum=$(rv_sha256 "$victim")
passwd_sum=$(rv_sha256 /etc/passwd)
dotdot=/tmp/rvtest-console-$$
rv_cleanup_add rm -f "$dotdot"
for console in "../tmp/rvtest-console-$$" /etc/passwd; do
  sed "s|^\[paths\]|[log]\nconsole = \"$console\"\n\n[paths]|" "$SUP_CONF" >"$SUP_TMP/console.toml"
  rc=0
  out=$(timeout 60 "$RESCUEVM" --config "$SUP_TMP/console.toml" --kernel-cmdline "$SUP_CMDLINE" run 2>&1) || rc=$?
  [[ $rc == 2 && $out == *"log.console"* && $out == *"not a terminal device name"* ]] \
    || sup_fail "log.console = \"$console\": want exit 2 naming log.console, got $rc: $out"
  rv_log "log.console = \"$console\": $out"
  printf 'rescuevm.log.console=%s\n' "$console" >"$SUP_TMP/console.cmdline"
  rc=0
  out=$(timeout 60 "$RESCUEVM" --config "$SUP_CONF" --kernel-cmdline "$SUP_TMP/console.cmdline" run 2>&1) || rc=$?
  [[ $rc == 2 && $out == *"log.console"* ]] || sup_fail "rescuevm.log.console=$console: want exit 2, got $rc: $out"
done
# A device name under /dev passes the configuration; at run the agent finds it is no terminal and
# does not write to it. (vm.cpus = 1024 makes this run stop at its plan, exit 3.)
sed "s|^\[paths\]|[log]\nconsole = \"$victim\"\n\n[paths]|; s|^cpus = .*|cpus = 1024|" "$SUP_CONF" >"$SUP_TMP/console.toml"
rc=0
out=$(timeout 60 "$RESCUEVM" --config "$SUP_TMP/console.toml" --kernel-cmdline "$SUP_CMDLINE" run 2>&1) || rc=$?
[[ $rc == 3 && $out == *"cannot write the log to console $victim: not a character device"* ]] \
  || sup_fail "log.console = \"$victim\": want the console refused with a line (and exit 3 from vm.cpus), got $rc: $out"
rv_log "log.console = \"$victim\": $(grep -o 'cannot write the log to console.*' <<<"$out")"
[[ ! -e $dotdot && $(rv_sha256 /etc/passwd) == "$passwd_sum" && $(rv_sha256 "$victim") == "$victim_sum" ]] \
  || sup_fail "a refused log.console was written to"
[[ -z $(sup_qemu_pids) ]] || sup_fail "a refused configuration started QEMU"
rv_pass "log.console ../tmp/x and /etc/passwd (TOML and kernel command line): exit 2 with a clear line; $victim: refused at run (not a terminal) with a line; nothing written to any of them"

# --- 5: FIFOs --------------------------------------------------------------------------------------
mkfifo "$SUP_TMP/config.fifo" "$SUP_TMP/cmdline.fifo"
for how in config cmdline; do
  if [[ $how == config ]]; then args=(--config "$SUP_TMP/config.fifo" --kernel-cmdline "$SUP_CMDLINE")
  else args=(--config "$SUP_CONF" --kernel-cmdline "$SUP_TMP/cmdline.fifo"); fi
  t0=$SECONDS
  rc=0
  out=$(timeout 20 "$RESCUEVM" "${args[@]}" run 2>&1) || rc=$?
  [[ $rc == 2 && $out == *"not a regular file"* ]] || sup_fail "a FIFO as --$how: want exit 2 'not a regular file', got $rc: $out"
  ((SECONDS - t0 < 5)) || sup_fail "a FIFO as --$how took $((SECONDS - t0)) s"
done
rv_pass "a FIFO as --config and as --kernel-cmdline: refused at once: $out"

# --- 6: plan and run agree (both refuse: a failed check, exit 3, or the configuration, exit 2) -----------------------------------------------------------------------------
long=$base/$(printf 'r%.0s' {1..110})
variant() { # variant NAME SED_SCRIPT: a config from SUP_CONF
  sed "$2" "$SUP_CONF" >"$SUP_TMP/$1.toml"
}
variant socket "s|^runtime_dir = .*|runtime_dir = \"$long\"|"
variant cpus "s|^cpus = .*|cpus = 1024|"
variant memory "s|^memory = .*|memory = \"1\"|"
variant kernel-dir "s|^kernel = .*|kernel = \"$base\"|"
variant kernel-zero "s|^kernel = .*|kernel = \"/dev/zero\"|"
for v in socket:runtime-dir cpus:vm-cpus memory:vm-memory kernel-dir:image kernel-zero:image; do
  name=${v%%:*} check=${v#*:}
  prc=0
  pout=$(timeout 60 "$RESCUEVM" --config "$SUP_TMP/$name.toml" --kernel-cmdline "$SUP_CMDLINE" plan --json 2>"$SUP_TMP/plan.err") || prc=$?
  rrc=0
  rout=$(timeout 60 "$RESCUEVM" --config "$SUP_TMP/$name.toml" --kernel-cmdline "$SUP_CMDLINE" run 2>&1) || rrc=$?
  [[ $prc == "$rrc" && ($prc == 2 || $prc == 3) ]] \
    || sup_fail "$name: plan exited $prc, run $rrc: they must agree and refuse: $(cat "$SUP_TMP/plan.err") / $rout"
  if [[ $prc == 3 ]]; then
    jq -e --arg c "$check" '.checks[] | select(.name == $c) | .ok == false' <<<"$pout" >/dev/null \
      || sup_fail "plan with $name: check $check did not fail: $(jq -c .checks <<<"$pout")"
    [[ $rout == *"$check: FAILED"* ]] || sup_fail "run with $name: no '$check: FAILED' line: $rout"
    why="$check: $(jq -r --arg c "$check" '.checks[] | select(.name == $c) | .message' <<<"$pout")"
  else
    why="configuration refused: $(tail -n 1 "$SUP_TMP/plan.err")"
    [[ $rout == *"$(tail -n 1 "$SUP_TMP/plan.err" | sed 's/^rescuevm: //')"* ]] || sup_fail "$name: run refused differently: $rout"
  fi
  rv_log "$name: plan and run exit $prc: $why"
done
[[ -z $(sup_qemu_pids) && ! -e $long ]] || sup_fail "a refused run started QEMU or made $long"
rv_pass "plan and run both refuse: socket path > sun_path, vm.cpus = 1024, vm.memory = 1, kernel a directory, kernel /dev/zero"
