#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Boots the test guest with the exact argv `rescuevm plan --json` renders over two loop disks and checks the guest sees what the plan promised.
#
# Usage (root): tests/integration/argv_guest_boot.sh   (meson: meson test -C BUILD argv_guest_boot)
#
# Two loop disks: one 512-byte (64 MiB), one 4Kn (48 MiB, losetup --sector-size 4096), each
# with the marker "RVARGV-<loop name>" at byte offset 1 MiB. A config file selects exactly
# those two (disks.match), boots the test guest directly (vm.kernel/initrd/append, TCG, BIOS,
# 512 MiB, 2 CPUs, no display, no network) with paths.runtime_dir in the temp dir.
# `rescuevm plan --json` must exit 0; its qemu.argv is run as it is, with each disk open on the
# fd its -add-fd names (the agent passes its O_EXCL fds there). The session files the
# plan names but `plan` does not create are made here: the empty config-2.iso in runtime_dir
# (`rescuevm run` will make the real one itself). QMP (qmp.py): negotiate, cont, wait for
# SHUTDOWN guest-shutdown (the guest powers off after reporting), query-status "shutdown"
# (the argv's shutdown=pause), quit, QEMU exits 0.
# Assertions, per disk, the guest disk being found by the marker it read:
#   size, logical and physical block size as plan --json reported for the loop device;
#   serial: loop devices have none, so on virtio-blk the guest must see exactly the plan's
#   serial (empty); the marker read back; no "RVTEST error" line; exactly two disks.
# Run twice: disks.bus from the file's default (virtio-blk, guest names vd*), then
# rescuevm.disks.bus=nvme through --kernel-cmdline FILE (guest names nvme*n*; NVMe needs a
# serial, so the renderer derives one from the disk name: the guest must see "loopN").
# The kernel and initramfs files are byte-identical afterwards (sha256).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

: "${RESCUEVM:?RESCUEVM must point at the rescuevm binary}"
rv_require qemu-system-x86_64 losetup python3 xorriso sha256sum

BOOT_TIMEOUT=240   # one TCG boot and poweroff on a loaded 2-core machine; ~10 s when quiet

tmp=$(rv_tmpdir)
RV_GUEST_DIR=$(rv_guest_build)
kernel=$(rv_guest_kernel)
initrd=$RV_GUEST_DIR/initramfs.cpio.gz
kernel_sha=$(rv_sha256 "$kernel")
initrd_sha=$(rv_sha256 "$initrd")

disk_a=$(rv_loop_disk 64M)
disk_b=$(rv_loop_disk 48M 4096)
[[ $(blockdev --getss "$disk_b") == 4096 ]] || rv_fail "$disk_b is not a 4Kn loop device"
for d in "$disk_a" "$disk_b"; do
  # A whole 4 KiB block at 1 MiB, NUL-padded: readable with either sector size.
  printf 'RVARGV-%s\n' "${d#/dev/}" | dd of="$d" bs=4096 seek=256 count=1 conv=sync,fsync status=none
done
rv_log "disks: $disk_a (512), $disk_b (4Kn)"

# guest_disks_vs_plan PLAN_JSON CONSOLE_LOG BUS: compares what the guest printed with the
# plan's disks; prints one summary line, or the reason on stderr and exits non-zero.
guest_disks_vs_plan() {
  python3 - "$@" <<'EOF'
import json, re, sys
plan = json.load(open(sys.argv[1]))
bus = sys.argv[3]
lines = [l.rstrip("\r\n") for l in open(sys.argv[2], errors="replace")]
rv = [l for l in lines if l.startswith("RVTEST ")]
def fields(line):
    return dict(kv.split("=", 1) for kv in line.split()[2:] if "=" in kv)
errors = [l for l in rv if l.startswith("RVTEST error")]
if errors:
    sys.exit(f"the guest reported errors: {errors}")
disks = {f["name"]: f for f in (fields(l) for l in rv if l.startswith("RVTEST disk "))}
markers = {f["name"]: f.get("text", "") for f in (fields(l) for l in rv if l.startswith("RVTEST marker "))}
selected = [d for d in plan["disks"] if d["selected"]]
if len(disks) != len(selected):
    sys.exit(f"the guest sees {len(disks)} disk(s) {sorted(disks)}, the plan passes {len(selected)}")
kind = {"virtio-blk": r"vd[a-z]+", "nvme": r"nvme[0-9]+n[0-9]+"}[bus]
summary = []
for d in selected:
    want_marker = "RVARGV-" + d["name"]
    guest = [n for n, t in markers.items() if t == want_marker]
    if len(guest) != 1:
        sys.exit(f"{d['name']}: the guest read marker {want_marker} on {guest or 'no disk'}; markers: {markers}")
    g = disks[guest[0]]
    if not re.fullmatch(kind, guest[0]):
        sys.exit(f"{d['name']} appears as {guest[0]}, not a {bus} disk")
    want_serial = d["serial"][:20]
    if bus == "nvme" and not want_serial:
        want_serial = re.sub(r"[^A-Za-z0-9]", "", d["name"])[-20:]   # derived from the name
    checks = [("size_bytes", int(g["size_bytes"]), d["size_bytes"]),
              ("logical block size", int(g["lbs"]), d["logical_block_size"]),
              ("physical block size", int(g["pbs"]), d["physical_block_size"]),
              ("serial", g.get("serial", ""), want_serial)]
    for what, got, want in checks:
        if got != want:
            sys.exit(f"{d['name']} (guest {guest[0]}): {what} is {got!r} in the guest, the plan says {want!r}")
    summary.append(f"{d['name']}->{guest[0]} {g['size_bytes']}B {g['lbs']}/{g['pbs']} serial={g.get('serial', '')!r}")
print("; ".join(summary))
EOF
}

# boot_variant LABEL BUS CMDLINE: plan with CMDLINE as the kernel command line, boot its argv,
# check the guest against the plan.
boot_variant() {
  local label=$1 bus=$2 cmdline=$3
  local dir=$tmp/$label run=$tmp/$label/run
  mkdir -p "$dir"
  mkdir -m 0700 "$run"
  cat >"$dir/rescuevm.toml" <<EOF
# argv_guest_boot: the test guest over two loop disks, TCG, no network.
[host]
min_memory = "1GiB"

[vm]
kernel = "$kernel"
initrd = "$initrd"
append = "console=ttyS0 quiet rvtest.disks=2 rvtest.read_marker=1 rvtest.final=poweroff"
accel = "tcg"
firmware = "bios"
memory = "512MiB"
cpus = 2
display = "none"

[disks]
match = ["${disk_a#/dev/}", "${disk_b#/dev/}"]

[network]
mode = "none"

[paths]
runtime_dir = "$run"
EOF
  printf '%s\n' "$cmdline" >"$dir/cmdline"
  local rc=0
  "$RESCUEVM" plan --json --config "$dir/rescuevm.toml" --kernel-cmdline "$dir/cmdline" \
    >"$dir/plan.json" 2>"$dir/plan.err" || rc=$?
  ((rc == 0)) || rv_fail "$label: rescuevm plan exited $rc: $(cat "$dir/plan.err"); checks: $(python3 -c 'import json,sys; print([c for c in json.load(open(sys.argv[1]))["checks"] if not c["ok"]])' "$dir/plan.json" 2>/dev/null)"
  local argv=()
  mapfile -d '' -t argv < <(python3 -c 'import json,sys; sys.stdout.write("".join(w + "\0" for w in json.load(open(sys.argv[1]))["qemu"]["argv"]))' "$dir/plan.json")
  ((${#argv[@]} > 10)) || rv_fail "$label: plan --json has no qemu.argv"
  python3 - "$dir/plan.json" "${disk_a#/dev/}" "${disk_b#/dev/}" <<'EOF' || rv_fail "$label: the plan does not select exactly the two loop disks"
import json, sys
sel = sorted(d["name"] for d in json.load(open(sys.argv[1]))["disks"] if d["selected"])
sys.exit(0 if sel == sorted(sys.argv[2:]) else f"selected: {sel}")
EOF
  local joined
  joined=$(printf '%s\n' "${argv[@]}")
  grep -qx -- -S <<<"$joined" || rv_fail "$label: the argv does not start QEMU paused (-S)"
  if [[ $bus == nvme ]]; then
    grep -q '^nvme,id=disk1,' <<<"$joined" || rv_fail "$label: disks.bus=nvme from --kernel-cmdline did not give NVMe devices"
  else
    grep -q '^virtio-blk-pci,id=disk1,' <<<"$joined" || rv_fail "$label: no virtio-blk-pci disk1 in the argv"
  fi

  # The session files the plan names and `rescuevm run` will make: an empty config drive.
  mkdir -p "$dir/cd-empty"
  xorriso -as mkisofs -quiet -V config-2 -J -R -o "$run/config-2.iso" "$dir/cd-empty" 2>"$dir/xorriso.log" \
    || rv_fail "$label: xorriso failed: $(cat "$dir/xorriso.log")"

  rv_log "$label: booting the plan's argv (${#argv[@]} words, disks on $bus)"
  local fds=() w
  for w in "${argv[@]}"; do
    if [[ $w =~ ^fd=([0-9]+),set=[0-9]+,opaque=(/dev/[^,]+)$ ]]; then
      eval "exec ${BASH_REMATCH[1]}<>\"${BASH_REMATCH[2]}\""
      fds+=("${BASH_REMATCH[1]}")
    fi
  done
  ((${#fds[@]} == 2)) || rv_fail "$label: want an -add-fd for each of the 2 disks, found ${#fds[@]}"
  "${argv[@]}" >"$dir/qemu.out" 2>"$dir/qemu.err" &
  local pid=$!
  for w in "${fds[@]}"; do eval "exec $w>&-"; done
  rv_cleanup_add "kill -9 $pid; wait $pid"
  # COM1 is a socket the agent reads (QEMU keeps no log of its own): read it here instead.
  python3 "$RV_LIB_DIR/console_driver.py" serial-log "$run/guest-serial.sock" "$run/guest-console.log" &
  local reader=$!
  rv_cleanup_add "kill $reader"
  local i
  for ((i = 0; i < 300; i++)); do [[ -e $run/guest-console.log ]] && break; sleep 0.1; done
  rc=0
  rv_qmp --timeout "$BOOT_TIMEOUT" "$run/qmp.sock" cont \
    --wait-event SHUTDOWN:guest=true,reason=guest-shutdown >"$dir/events.jsonl" 2>"$dir/qmp.err" || rc=$?
  local console=$run/guest-console.log
  ((rc == 0)) || rv_fail "$label: no guest poweroff (qmp.py exit $rc: $(cat "$dir/qmp.err")); QEMU: $(cat "$dir/qemu.err"); RVTEST lines: $(grep -a '^RVTEST' "$console" 2>/dev/null | tr '\n' '|')"
  rv_qmp --timeout 30 "$run/qmp.sock" query-status quit >"$dir/quit.jsonl" 2>>"$dir/qmp.err" \
    || rv_fail "$label: query-status/quit failed: $(cat "$dir/qmp.err")"
  grep -q '"status":"shutdown"' "$dir/quit.jsonl" \
    || rv_fail "$label: after the guest's poweroff QEMU is not paused in state shutdown: $(cat "$dir/quit.jsonl")"
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; rv_fail "$label: QEMU did not exit 30 s after quit"; }
  rc=0
  wait "$pid" || rc=$?
  ((rc == 0)) || rv_fail "$label: QEMU exited with status $rc: $(cat "$dir/qemu.err")"
  [[ ! -s $dir/qemu.err ]] || rv_fail "$label: QEMU printed on stderr: $(cat "$dir/qemu.err")"
  grep -a -q '^RVTEST poweroff' "$console" || rv_fail "$label: the guest console has no 'RVTEST poweroff' line"

  local result
  result=$(guest_disks_vs_plan "$dir/plan.json" "$console" "$bus" 2>&1) \
    || rv_fail "$label: $result; RVTEST lines: $(grep -a '^RVTEST' "$console" | tr '\n' '|')"
  rv_log "$label ok: $result"
  RESULT=$result
}

boot_variant virtio virtio-blk ""
virtio_result=$RESULT
boot_variant nvme nvme "rescuevm.disks.bus=nvme"
nvme_result=$RESULT

[[ $(rv_sha256 "$kernel") == "$kernel_sha" ]] || rv_fail "the guest kernel $kernel changed during the run"
[[ $(rv_sha256 "$initrd") == "$initrd_sha" ]] || rv_fail "the guest initramfs $initrd changed during the run"

rv_pass "the plan's argv booted the guest twice; virtio-blk: $virtio_result | nvme: $nvme_result; markers read, kernel/initramfs unchanged"
