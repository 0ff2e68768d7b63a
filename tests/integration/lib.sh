# SPDX-License-Identifier: GPL-2.0-or-later
# Shared bash helpers for rescuevm integration tests: cleanup, loop disks, namespaces, waiting, the test guest, QEMU.
#
# Usage, at the top of tests/integration/<name>.sh:
#
#   #!/bin/bash
#   set -euo pipefail
#   source "$(dirname "$0")/lib.sh"          # needs root: exits 77 (meson: SKIP) otherwise
#   tmp=$(rv_tmpdir)
#   disk=$(rv_loop_disk 64M 4096)            # 4Kn loop device, detached at exit
#   ...
#   rv_pass "what was proven"
#
# Sourcing installs ONE trap on EXIT (and turns INT/TERM/HUP into an exit), which runs every
# registered cleanup command in reverse order of registration, also when the test fails or
# meson kills it on timeout. Do not set your own EXIT trap: register with rv_cleanup_add.
# Registration goes through a file, so helpers work inside $(...) command substitutions.
#
# Environment (meson sets all three): RESCUEVM (the binary), SOURCE_ROOT, BUILD_ROOT.
# Without BUILD_ROOT the test guest is built into a temporary directory (slower, still cleaned).
#
# Functions (details above each):
#   rv_log MSG...                 progress line on stderr, prefixed with the test name and time
#   rv_fail MSG...                print "FAIL: <test>: MSG" and exit 1 (cleanup runs)
#   rv_pass MSG...                print "PASS: <test>: MSG" (does not exit)
#   rv_require CMD...             fail unless every CMD is installed (hint: scripts/setup)
#   rv_cleanup_add CMD...         register a cleanup command (LIFO)
#   rv_cleanup_kill PID           at exit (in LIFO order with the rest): SIGKILL PID and reap it
#   rv_tmpdir                     new temp dir, removed at exit; echoes its path
#   rv_loop_disk SIZE [SECTOR]    sparse file + losetup -P [--sector-size]; echoes /dev/loopN
#   rv_netns NAME                 new network namespace NAME-<random>; echoes the name
#   rv_wait_for PATTERN FILE SEC  wait for a line matching grep -E PATTERN; 0 found, 1 timeout
#   rv_wait_for_count N PATTERN FILE SEC   same, for at least N matching lines
#   rv_count PATTERN FILE         number of lines matching grep -E PATTERN (0 if no file)
#   rv_guest_build                build the test guest (tests/guest/build-guest.sh); echoes dir
#   rv_guest_kernel [DIR] [bios|uefi]   kernel file to boot: vmlinux (PVH, faster; SeaBIOS only)
#                                 or vmlinuz (always for uefi: OVMF cannot boot the ELF file)
#   rv_guest_append PARAMS...     kernel command line for the test guest: console, quiet, PARAMS
#   rv_qmp SOCKET ARGS...         run tests/integration/qmp.py (see its usage)
#   rv_qemu_start RUNDIR APPEND [QEMU_ARGS...]   boot the test guest directly in QEMU (TCG)
#   rv_qemu_stop RUNDIR           quit that QEMU over QMP (SIGKILL if it will not) and reap it
#   rv_kill_qemu_for DIR          SIGTERM, then SIGKILL, every QEMU whose command line mentions DIR
#   rv_sha256 FILE                sha256 of FILE (hex only)

if [[ ${EUID:-$(id -u)} -ne 0 ]]; then
  echo "SKIP: $(basename "$0" .sh): integration tests need root (loop devices, namespaces)" >&2
  exit 77
fi

RV_TEST_NAME=$(basename "$0" .sh)
RV_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RV_SOURCE_ROOT=${SOURCE_ROOT:-$(cd "$RV_LIB_DIR/../.." && pwd)}
RV_QMP="$RV_LIB_DIR/qmp.py"

rv_log() { printf '[%s %s] %s\n' "$RV_TEST_NAME" "$(date +%T)" "$*" >&2; }
rv_fail() { printf 'FAIL: %s: %s\n' "$RV_TEST_NAME" "$*" >&2; exit 1; }
rv_pass() { printf 'PASS: %s: %s\n' "$RV_TEST_NAME" "$*"; }

rv_require() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || rv_fail "$c is not installed: run scripts/setup as root"
  done
}

# --- cleanup --------------------------------------------------------------------------------
# One command per line in $RV_CLEANUP_FILE; the EXIT trap runs them last-registered first,
# each with errors ignored, and keeps the test's own exit status.
RV_CLEANUP_FILE=$(mktemp "${TMPDIR:-/tmp}/rv-cleanup.XXXXXX")

# rv_cleanup_add CMD...: with one argument, CMD is a shell string evaluated at exit
# (rv_cleanup_add "kill $pid; wait $pid"); with several, they are one command and its
# arguments, quoted as given (rv_cleanup_add rm -rf "$dir").
rv_cleanup_add() {
  local line
  if [[ $# -eq 1 ]]; then line=$1; else line=$(printf '%q ' "$@"); fi
  [[ $line != *$'\n'* ]] || rv_fail "rv_cleanup_add: a cleanup command must be one line"
  printf '%s\n' "$line" >>"$RV_CLEANUP_FILE"
}

# rv_cleanup_kill PID: at exit, SIGKILL PID and wait for it. PID must be a child of the test's
# main shell (started with & there, e.g. rescuevm run & or qemu &): it is reaped, so it is
# really gone (and has let go of loop devices) before earlier-registered cleanups run.
rv_cleanup_kill() {
  [[ $1 =~ ^[0-9]+$ ]] || rv_fail "rv_cleanup_kill: '$1' is not a pid"
  printf 'rv-kill-pid %s\n' "$1" >>"$RV_CLEANUP_FILE"
}

# rv__kill_child PID: SIGKILL and reap PID, but only while it is still this shell's child (a
# pid that was already reaped may have been reused by an unrelated process).
rv__kill_child() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }            # fields after "(comm) ": state ppid ...
  set -- "$1" $stat
  [[ $3 == "$$" ]] || return 0
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

rv__run_cleanup() {
  local rc=$? line
  set +e +u
  trap - EXIT INT TERM HUP
  if [[ -f $RV_CLEANUP_FILE ]]; then
    while IFS= read -r line; do
      case $line in
        "") ;;
        "rv-kill-pid "*)   # in this shell: only the parent can reap its child
          rv__kill_child "${line#rv-kill-pid }" ;;
        *) (eval "$line") >/dev/null 2>&1 </dev/null ;;   # a subshell: even "exit" cannot stop the trap
      esac
    done < <(tac "$RV_CLEANUP_FILE")
    rm -f "$RV_CLEANUP_FILE"
  fi
  exit "$rc"
}
trap rv__run_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- temporary things -----------------------------------------------------------------------
rv_tmpdir() {
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/rv-$RV_TEST_NAME.XXXXXX")
  rv_cleanup_add rm -rf "$d"
  echo "$d"
}

# Backing files of loop disks live here (created on first use, removed after the loops).
RV__DISK_DIR=

# rv_loop_disk SIZE [SECTOR_SIZE]: a sparse file of SIZE (truncate syntax: 64M, 1G) attached
# to a new loop device with partition scanning (-P), logical sector size SECTOR_SIZE (default
# 512; 4096 makes a 4Kn disk). Echoes /dev/loopN. After partitioning it, run partx -u (no udev).
rv_loop_disk() {
  local size=$1 sector=${2:-512} file dev
  if [[ -z $RV__DISK_DIR || ! -d $RV__DISK_DIR ]]; then
    RV__DISK_DIR=$(rv_tmpdir)
  fi
  file=$(mktemp "$RV__DISK_DIR/disk.XXXXXX")
  truncate -s "$size" "$file"
  dev=$(losetup --find --show --partscan --sector-size "$sector" "$file") \
    || rv_fail "losetup could not attach $file"
  rv_cleanup_add losetup -d "$dev"
  echo "$dev"
}

# rv_netns NAME: creates network namespace NAME-<random> with lo up; echoes its name. At
# exit every process still in it is killed and the namespace deleted (its veths go with it).
rv_netns() {
  local ns
  ns="$1-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
  ip netns add "$ns" || rv_fail "ip netns add $ns failed"
  rv_cleanup_add "ip netns pids $ns | xargs -r kill -9; ip netns del $ns"
  ip -n "$ns" link set lo up
  echo "$ns"
}

# --- waiting --------------------------------------------------------------------------------
# rv_wait_for PATTERN FILE TIMEOUT_SEC: returns 0 as soon as FILE has a line matching
# grep -E PATTERN (binary-safe, CR at line end ignored), 1 after TIMEOUT_SEC. FILE may not
# exist yet. Typical: rv_wait_for '^RVTEST ready' "$run/serial.log" 120 || rv_fail "..."
rv_wait_for() { rv_wait_for_count 1 "$@"; }

rv_count() {
  [[ -f $2 ]] || { echo 0; return 0; }
  tr -d '\r' <"$2" | grep -a -c -E -- "$1" || true
}

rv_wait_for_count() {
  local want=$1 pattern=$2 file=$3 timeout=$4 deadline
  deadline=$((SECONDS + timeout))
  while :; do
    (($(rv_count "$pattern" "$file") >= want)) && return 0
    ((SECONDS < deadline)) || return 1
    if command -v inotifywait >/dev/null 2>&1 && [[ -f $file ]]; then
      inotifywait -qq -t 1 -e modify -e close_write "$file" 2>/dev/null || true
    else
      sleep 0.2   # test helper: a short bounded poll is fine here
    fi
  done
}

# --- test guest and QEMU --------------------------------------------------------------------
rv_sha256() { sha256sum "$1" | cut -d' ' -f1; }

# rv_guest_build: builds (or finds up to date) the test guest; echoes the directory holding
# vmlinuz and initramfs.cpio.gz ($BUILD_ROOT/guest when BUILD_ROOT is set).
rv_guest_build() {
  local out
  if [[ -n ${BUILD_ROOT:-} ]]; then out=$BUILD_ROOT/guest; else out=$(rv_tmpdir)/guest; fi
  "$RV_SOURCE_ROOT/tests/guest/build-guest.sh" "$out" >&2 || rv_fail "building the test guest failed"
  echo "$out"
}

# rv_guest_kernel [DIR] [FIRMWARE]: the kernel to pass to QEMU's -kernel (or rescuevm's
# vm.kernel) for the guest in DIR (default $RV_GUEST_DIR). FIRMWARE bios (default): the
# uncompressed PVH-bootable vmlinux when the build made one (boots about a third faster under
# TCG), else Debian's vmlinuz. FIRMWARE uefi: always vmlinuz, because OVMF only boots the
# bzImage (EFI stub); given the ELF vmlinux it hangs with no output. The initrd is always
# DIR/initramfs.cpio.gz.
rv_guest_kernel() {
  local dir=${1:-${RV_GUEST_DIR:?rv_guest_kernel: no DIR and RV_GUEST_DIR unset}} fw=${2:-bios}
  case $fw in
    bios) if [[ -f $dir/vmlinux ]]; then echo "$dir/vmlinux"; else echo "$dir/vmlinuz"; fi ;;
    uefi) echo "$dir/vmlinuz" ;;
    *) rv_fail "rv_guest_kernel: firmware '$fw' is neither bios nor uefi" ;;
  esac
}

# rv_guest_append PARAMS...: the guest's kernel command line (serial console, quiet kernel)
# followed by PARAMS (rvtest.* parameters, documented at the top of tests/guest/init).
rv_guest_append() { echo "console=ttyS0 quiet $*"; }

rv_qmp() { python3 "$RV_QMP" "$@"; }

# rv_qemu_start RUNDIR APPEND [QEMU_ARGS...]: boots the test guest with qemu-system-x86_64
# (q35, TCG, -nodefaults, 512 MiB, 2 CPUs, -action shutdown=pause so a guest poweroff leaves
# QEMU up and stopped) plus QEMU_ARGS (disks, NICs...), APPEND after rv_guest_append.
# Files in RUNDIR (created if needed):
#   serial.log     the guest's ttyS0 (RVTEST lines)
#   qmp.sock       QMP for your commands: rv_qmp "$run/qmp.sock" system_powerdown
#   events.jsonl   every QMP event of the run, one JSON line each (a follower on a second
#                  QMP socket, events.sock, that also sent "cont" after negotiating)
#   qemu.pid, qemu.log (QEMU's stderr)
# Sets RV_QEMU_PID. Set RV_QEMU_WRAP (e.g. "ip netns exec NS") to run QEMU under a wrapper
# that execs it. QEMU is killed at exit if still running. Uses the guest from rv_guest_build
# (built on first use, or RV_GUEST_DIR if set).
rv_qemu_start() {
  local run=$1 append=$2
  shift 2
  [[ -n ${RV_GUEST_DIR:-} ]] || RV_GUEST_DIR=$(rv_guest_build)
  mkdir -p "$run"
  rm -f "$run/qmp.sock" "$run/events.sock" "$run/events.jsonl" "$run/serial.log"
  # shellcheck disable=SC2086 # RV_QEMU_WRAP is a command prefix, split on purpose
  ${RV_QEMU_WRAP:-} qemu-system-x86_64 \
    -name "rvtest-$RV_TEST_NAME" -machine q35 -accel tcg -cpu max -nodefaults -no-user-config \
    -m 512 -smp 2 -display none -S -action shutdown=pause \
    -serial "file:$run/serial.log" \
    -qmp "unix:$run/qmp.sock,server=on,wait=off" \
    -qmp "unix:$run/events.sock,server=on,wait=off" \
    -kernel "$(rv_guest_kernel "$RV_GUEST_DIR")" -initrd "$RV_GUEST_DIR/initramfs.cpio.gz" \
    -append "$(rv_guest_append "$append")" \
    "$@" 2>"$run/qemu.log" &
  RV_QEMU_PID=$!
  echo "$RV_QEMU_PID" >"$run/qemu.pid"
  rv_cleanup_kill "$RV_QEMU_PID"   # runs before the disks it holds are detached
  python3 "$RV_QMP" --follow --timeout 3600 "$run/events.sock" cont \
    >"$run/events.jsonl" 2>"$run/events.err" &
  rv_cleanup_kill $!
  rv_wait_for '"event":"RESUME"' "$run/events.jsonl" 60 \
    || rv_fail "QEMU did not start: $(cat "$run/qemu.log" "$run/events.err" 2>/dev/null)"
}

# rv_qemu_stop RUNDIR: sends quit on RUNDIR/qmp.sock, waits up to 20 s for QEMU to exit,
# then SIGKILLs it. Returns QEMU's exit status.
rv_qemu_stop() {
  local run=$1 pid rc=0 i
  pid=$(cat "$run/qemu.pid")
  rv_qmp --timeout 10 "$run/qmp.sock" quit >/dev/null 2>&1 || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || rc=$?
  return "$rc"
}

# rv_kill_qemu_for DIR: for QEMUs started by rescuevm (which outlive the agent on purpose):
# every qemu-system-* process whose command line contains DIR gets SIGTERM, then SIGKILL
# after 5 s. Use it as a cleanup: rv_cleanup_add rv_kill_qemu_for "$runtime_dir"
rv_kill_qemu_for() {
  local dir=$1 p pids=() i
  for p in /proc/[0-9]*; do
    [[ -r $p/cmdline ]] || continue
    local cmd
    cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
    [[ $cmd == *qemu-system-* && $cmd == *"$dir"* ]] && pids+=("${p#/proc/}")
  done
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}
