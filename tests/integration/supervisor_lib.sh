# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers shared by the supervisor_*.sh integration tests: one loop disk, the test guest as the rescue image, a `rescuevm run` agent and its status.
#
# Source it after lib.sh:
#   source "$(dirname "$0")/lib.sh"
#   source "$(dirname "$0")/supervisor_lib.sh"
#   sup_setup "rvtest.reboots=1 rvtest.final=poweroff" [EXTRA_TOML_LINES]
#   sup_agent_start                       # sets SUP_AGENT_PID; logs to $SUP_TMP/agent.log
#   sup_wait_boots 1 || rv_fail ...       # "RVTEST boots n=1" on the guest console
#   pid=$(sup_status vm.qemu_pid)
#
# Variables set by sup_setup: SUP_TMP (temp dir), SUP_DISK (/dev/loopN, the guest counts its
# boots on it: it is the guest's vda), SUP_RT (runtime_dir), SUP_CONF (config file),
# SUP_CMDLINE (an empty --kernel-cmdline file, so the host's /proc/cmdline plays no part),
# SUP_CONSOLE (guest console log), SUP_AGENT_LOG.
# Timeouts are generous: under TCG on a shared 2-core machine one guest boot takes 5-60 s.

: "${RESCUEVM:?RESCUEVM must point at the rescuevm binary}"

SUP_BOOT_TIMEOUT=${SUP_BOOT_TIMEOUT:-240}

# sup_setup GUEST_PARAMS [TOML_LINES]: builds the guest, makes the disk and writes the config.
# The kernel is rv_guest_kernel's choice (the PVH vmlinux) unless SUP_KERNEL_NAME names a file
# in the guest directory (e.g. vmlinuz).
# GUEST_PARAMS are rvtest.* parameters (rvtest.boot_counter=vda is always added). TOML_LINES
# (may be empty) are appended to the file, e.g. a [supervisor] section.
sup_setup() {
  local params=$1 extra=${2:-}
  rv_require qemu-system-x86_64 losetup python3 xorriso pgrep
  SUP_TMP=$(rv_tmpdir)
  RV_GUEST_DIR=$(rv_guest_build)
  SUP_DISK=$(rv_loop_disk 64M)
  SUP_RT=$SUP_TMP/rt
  SUP_CONF=$SUP_TMP/rescuevm.toml
  SUP_CMDLINE=$SUP_TMP/cmdline
  SUP_CONSOLE=$SUP_RT/guest-console.log
  SUP_AGENT_LOG=$SUP_TMP/agent.log
  : >"$SUP_CMDLINE"
  local kernel
  kernel=$(rv_guest_kernel)
  [[ -z ${SUP_KERNEL_NAME:-} ]] || kernel=$RV_GUEST_DIR/$SUP_KERNEL_NAME
  # QEMU outlives a killed agent on purpose: kill whatever still runs on this runtime_dir
  # before the loop disk is detached (cleanups run last-registered first).
  rv_cleanup_add rv_kill_qemu_for "$SUP_RT"
  cat >"$SUP_CONF" <<EOF
[host]
min_memory = "1GiB"

[vm]
kernel = "$kernel"
initrd = "$RV_GUEST_DIR/initramfs.cpio.gz"
append = "$(rv_guest_append "rvtest.boot_counter=vda $params")"
accel = "tcg"
firmware = "bios"
memory = "512MiB"
cpus = 2
display = "none"

[disks]
match = ["${SUP_DISK#/dev/}"]

[network]
mode = "none"

[guest]
admin_password_file = "$SUP_TMP/no-password"

[paths]
runtime_dir = "$SUP_RT"
$extra
EOF
  rv_log "disk $SUP_DISK, runtime_dir $SUP_RT, guest: $params"
}

# sup_rescuevm ARGS...: the CLI against this test's config.
sup_rescuevm() { "$RESCUEVM" --config "$SUP_CONF" --kernel-cmdline "$SUP_CMDLINE" "$@"; }

# sup_agent_start: `rescuevm run` in the background (log appended to SUP_AGENT_LOG, level
# SUP_LOG_LEVEL, default debug: QMP events are logged);
# sets SUP_AGENT_PID and waits until the control socket answers.
sup_agent_start() {
  echo "---- agent started $(date +%T)" >>"$SUP_AGENT_LOG"
  # The binary itself, not the sup_rescuevm function: a function run with & is a subshell,
  # and $! would be that subshell, not the agent (signals would miss it).
  "$RESCUEVM" --config "$SUP_CONF" --kernel-cmdline "$SUP_CMDLINE" --log-level "${SUP_LOG_LEVEL:-debug}" run \
    >>"$SUP_AGENT_LOG" 2>&1 &
  SUP_AGENT_PID=$!
  rv_cleanup_kill "$SUP_AGENT_PID"
  local i
  for ((i = 0; i < 300; i++)); do
    sup_rescuevm status --json >/dev/null 2>&1 && return 0
    sup_alive "$SUP_AGENT_PID" || rv_fail "the agent exited at start: $(tail -n 20 "$SUP_AGENT_LOG")"
    sleep 0.2   # bounded wait for the socket to appear
  done
  rv_fail "the agent's control socket did not answer within 60 s: $(tail -n 20 "$SUP_AGENT_LOG")"
}

# sup_alive PID: PID exists and is not a zombie (an exited child not yet reaped still answers kill -0).
sup_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# sup_status PATH: one field of `rescuevm status --json` (dotted path, e.g. vm.qemu_pid).
sup_status() {
  sup_rescuevm status --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}

# sup_wait_status PATH VALUE TIMEOUT: until status field PATH equals VALUE; 1 on timeout.
sup_wait_status() {
  local deadline=$((SECONDS + $3)) v
  while :; do
    v=$(sup_status "$1" 2>/dev/null) || v=
    [[ $v == "$2" ]] && return 0
    ((SECONDS < deadline)) || { rv_log "status $1 is '$v', not '$2'"; return 1; }
    sleep 0.5   # bounded poll of the agent's answer
  done
}

# sup_wait_boots N: until the guest console says it booted the Nth time (its counter on the disk).
sup_wait_boots() { rv_wait_for "^RVTEST boots n=$1 " "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT"; }

# sup_record_pid: the pid in runtime_dir/qemu.json (empty if there is none).
sup_record_pid() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$SUP_RT/qemu.json" 2>/dev/null || true
}

# sup_qemu_pids: pids of QEMU processes whose command line names this runtime_dir.
sup_qemu_pids() { pgrep -f "qemu-system.*$SUP_RT" || true; }

# sup_agent_stop: SIGTERM to the agent and wait for it (in this shell: only the parent can
# reap it, so never call it inside $(...)); sets SUP_AGENT_RC to its exit status.
sup_agent_stop() {
  SUP_AGENT_RC=0
  kill -TERM "$SUP_AGENT_PID"
  wait "$SUP_AGENT_PID" || SUP_AGENT_RC=$?
}

# sup_fail MSG: rv_fail with the tail of the agent log and of the guest console.
sup_fail() {
  {
    echo "---- agent log (tail)"; tail -n 30 "$SUP_AGENT_LOG" 2>/dev/null
    echo "---- guest console (RVTEST lines)"; tr -d '\r' <"$SUP_CONSOLE" 2>/dev/null | grep -a '^RVTEST' | tail -n 20
  } >&2
  rv_fail "$*"
}
