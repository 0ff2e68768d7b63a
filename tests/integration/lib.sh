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

# --- firmware-boot test guest ---------------------------------------------------------------
# The test guest as firmware-bootable disk images (tests/guest/build-images.sh, README there):
# boot them the way rescuevm boots its rescue image, and pass rvtest.* parameters through a
# params block on a disk, since an image's kernel command line is fixed.
#
#   rv_guest_images               build (or find up to date) the images; echoes the directory
#                                 ($BUILD_ROOT/guest, shared with rv_guest_build)
#   rv_params_block TARGET PARAMS...   write the params block at 3 MiB of TARGET
#   rv_ovmf_files                 echoes "CODE VARS": the non-secure-boot 4M OVMF rescuevm picks
#   rv_qemu_boot_image RUNDIR FIRMWARE IMAGE BUS [QEMU_ARGS...]   boot IMAGE through firmware

rv_guest_images() {
  local out
  if [[ -n ${BUILD_ROOT:-} ]]; then out=$BUILD_ROOT/guest; else out=$(rv_tmpdir)/guest; fi
  "$RV_SOURCE_ROOT/tests/guest/build-images.sh" "$out" >&2 || rv_fail "building the test guest images failed"
  echo "$out"
}

# rv_params_block TARGET PARAMS...: writes "RVTEST-PARAMS PARAMS\n", padded with NULs to 4096
# bytes, at byte offset 3 MiB of TARGET: a block device (a loop disk), a raw image file, or a
# qcow2 file (through qemu-io, e.g. an overlay over uefi.qcow2 used as the image itself). The
# guest applies the words as if they were on its kernel command line (tests/guest/init).
rv_params_block() {
  local target=$1 block
  shift
  [[ -e $target ]] || rv_fail "rv_params_block: $target does not exist"
  block=$(mktemp "${TMPDIR:-/tmp}/rv-params.XXXXXX")
  printf 'RVTEST-PARAMS %s\n' "$*" >"$block"
  (($(stat -c %s "$block") <= 4096)) || { rm -f "$block"; rv_fail "rv_params_block: more than 4096 bytes of parameters"; }
  truncate -s 4096 "$block"
  if [[ ! -b $target ]] && qemu-img info --output=json "$target" 2>/dev/null | grep -q '"format": "qcow2"'; then
    qemu-io -f qcow2 -c "write -q -s $block 3145728 4096" "$target" >/dev/null \
      || { rm -f "$block"; rv_fail "rv_params_block: qemu-io could not write $target"; }
  else
    dd if="$block" of="$target" bs=4096 seek=768 count=1 conv=notrunc,fsync status=none \
      || { rm -f "$block"; rv_fail "rv_params_block: could not write $target"; }
  fi
  rm -f "$block"
}

# rv_ovmf_files: "CODE VARS" of the UEFI firmware rescuevm chooses (src/probe/firmware.cpp):
# QEMU's firmware descriptors in name order, UEFI for q35 on flash, not secure boot, 4M preferred.
rv_ovmf_files() {
  python3 - <<'PY' || rv_fail "no non-secure-boot OVMF for q35 in /usr/share/qemu/firmware: install ovmf (scripts/setup)"
import glob, json, os, sys
best = None
for f in sorted(glob.glob("/usr/share/qemu/firmware/*.json")):
    try:
        d = json.load(open(f))
    except Exception:
        continue
    m = d.get("mapping", {})
    if "uefi" not in d.get("interface-types", []) or m.get("device") != "flash":
        continue
    if not any(t.get("architecture") == "x86_64" and any("q35" in x for x in t.get("machines", []))
               for t in d.get("targets", [])):
        continue
    if "secure-boot" in d.get("features", []) or "nvram-template" not in m:
        continue
    code, vars_ = m["executable"]["filename"], m["nvram-template"]["filename"]
    if not (os.path.exists(code) and os.path.exists(vars_)):
        continue
    score = 1 if "_4M" in code else 0
    if best is None or score > best[0]:
        best = (score, code, vars_)
if best is None:
    sys.exit(1)
print(best[1], best[2])
PY
}

# rv_qemu_boot_image RUNDIR FIRMWARE IMAGE BUS [QEMU_ARGS...]: boots IMAGE (a .raw or .qcow2
# from rv_guest_images, or any disk image) the way rescuevm's render_qemu_argv does: q35, TCG,
# -nodefaults, FIRMWARE uefi (OVMF as pflash from rv_ovmf_files, with a per-run copy of the
# variable store: RUNDIR/vars.fd) or bios (SeaBIOS); IMAGE opened read-only under a fresh qcow2
# overlay (RUNDIR/overlay.qcow2, kept across guest reboots) attached with bootindex=0 on BUS
# (virtio-blk, virtio-scsi, nvme or sata: AHCI port ide.0); isa-serial to RUNDIR/serial.log
# (a file, as the agent does), VGA, qemu-xhci with usb-tablet, pvpanic; -action
# reboot=reset,shutdown=pause,panic=pause. QEMU_ARGS add disks and devices. Also writes
# RUNDIR/debugcon.log (isa-debugcon at port 0x402: SeaBIOS's log; OVMF's release build prints
# nothing there), plus qmp.sock, events.jsonl, qemu.pid, qemu.log as rv_qemu_start does.
# Sets RV_QEMU_PID. RV_QEMU_WRAP works as for rv_qemu_start. QEMU is killed at exit.
# For boot-order experiments: RV_IMAGE_BOOTINDEX (default 0) is the image's bootindex;
# RV_IMAGE_PCI_PROPS (e.g. ",addr=0x10") is added to its PCI device (the controller for
# virtio-scsi; unused for sata), so a disk passed beside it can get a lower PCI address.
rv_qemu_boot_image() {
  local run=$1 fw=$2 image=$3 bus=$4 fmt machine=q35 code vars
  shift 4
  local -a fwargs=() diskargs=()
  [[ -f $image ]] || rv_fail "rv_qemu_boot_image: image $image does not exist"
  mkdir -p "$run"
  rm -f "$run/qmp.sock" "$run/events.sock" "$run/events.jsonl" "$run/serial.log" "$run/debugcon.log" \
    "$run/overlay.qcow2" "$run/vars.fd"
  case $fw in
    uefi)
      read -r code vars < <(rv_ovmf_files)
      [[ -n $vars ]] || rv_fail "rv_qemu_boot_image: no OVMF firmware found"
      cp "$vars" "$run/vars.fd"
      machine="q35,pflash0=firmware-code,pflash1=firmware-vars"
      fwargs=(-blockdev "driver=file,node-name=firmware-code,filename=$code,read-only=on"
              -blockdev "driver=file,node-name=firmware-vars,filename=$run/vars.fd") ;;
    bios) ;;
    *) rv_fail "rv_qemu_boot_image: firmware '$fw' is neither uefi nor bios" ;;
  esac
  fmt=$(qemu-img info -U --output=json "$image" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])') \
    || rv_fail "rv_qemu_boot_image: qemu-img cannot read $image"
  qemu-img create -q -f qcow2 -b "$image" -F "$fmt" "$run/overlay.qcow2" \
    || rv_fail "rv_qemu_boot_image: cannot create an overlay over $image"
  diskargs=(-blockdev "driver=file,node-name=image-file,filename=$image,read-only=on"
            -blockdev "driver=$fmt,node-name=image,file=image-file,read-only=on"
            -blockdev "driver=file,node-name=overlay-file,filename=$run/overlay.qcow2"
            -blockdev "driver=qcow2,node-name=overlay,file=overlay-file,backing=image")
  local props=",bootindex=${RV_IMAGE_BOOTINDEX:-0}" pci_props=${RV_IMAGE_PCI_PROPS:-}
  case $bus in
    virtio-blk) diskargs+=(-device "virtio-blk-pci,id=disk0,drive=overlay$pci_props$props") ;;
    virtio-scsi) diskargs+=(-device "virtio-scsi-pci,id=scsi0$pci_props" -device "scsi-hd,id=disk0,bus=scsi0.0,drive=overlay$props") ;;
    nvme) diskargs+=(-device "nvme,id=disk0,drive=overlay,serial=rescuevm-image$pci_props$props") ;;
    sata) diskargs+=(-device "ide-hd,id=disk0,bus=ide.0,drive=overlay$props") ;;
    *) rv_fail "rv_qemu_boot_image: bus '$bus' is not one of virtio-blk, virtio-scsi, nvme, sata" ;;
  esac
  # shellcheck disable=SC2086 # RV_QEMU_WRAP is a command prefix, split on purpose
  ${RV_QEMU_WRAP:-} qemu-system-x86_64 \
    -name "rvtest-$RV_TEST_NAME" -machine "$machine" -accel tcg -cpu max -nodefaults -no-user-config \
    -m 512 -smp 2 -display none -S -action reboot=reset,shutdown=pause,panic=pause \
    "${fwargs[@]}" "${diskargs[@]}" \
    -chardev "file,id=guest-console,path=$run/serial.log,append=on" -device isa-serial,chardev=guest-console \
    -chardev "file,id=debugcon,path=$run/debugcon.log" -device isa-debugcon,iobase=0x402,chardev=debugcon \
    -device VGA,id=video0 -device qemu-xhci,id=usb -device usb-tablet,bus=usb.0 -device pvpanic \
    -qmp "unix:$run/qmp.sock,server=on,wait=off" \
    -qmp "unix:$run/events.sock,server=on,wait=off" \
    "$@" 2>"$run/qemu.log" &
  RV_QEMU_PID=$!
  echo "$RV_QEMU_PID" >"$run/qemu.pid"
  rv_cleanup_kill "$RV_QEMU_PID"
  python3 "$RV_QMP" --follow --timeout 3600 "$run/events.sock" cont \
    >"$run/events.jsonl" 2>"$run/events.err" &
  rv_cleanup_kill $!
  rv_wait_for '"event":"RESUME"' "$run/events.jsonl" 60 \
    || rv_fail "QEMU did not start: $(cat "$run/qemu.log" "$run/events.err" 2>/dev/null)"
}
