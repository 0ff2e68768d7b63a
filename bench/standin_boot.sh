#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmarks the stand-in server (tests/standin): build time and size of its boot files, and per boot kernel start -> rescuevm READY=1, agent start -> QEMU started, the guest's boot.
#
# Usage (root): bench/standin_boot.sh [RUNS]      (default 3 boots per CPU model)
#   env BUILD_ROOT (default build; must be built), BENCH_CPUS (default "max": the stand-in's
#   -cpu values to compare, e.g. "max max,-svm,-vmx"; a model without svm gets
#   rescuevm.vm.accel=tcg, i.e. nested TCG), BENCH_GUEST_TIMEOUT (default 120 s: how long to
#   wait for the guest's "RVTEST ready"; nested TCG needs 600)
#
# Per boot, from the stand-in's journal (monotonic time = seconds since the kernel started):
#   ready    "Started rescuevm.service": systemd got READY=1 (the agent sends it once the
#            guest runs, i.e. QEMU's RESUME after cont)
#   agent    the agent's "rescuevm VERSION starting" line
#   qemu     its "QEMU started" line; qemu-agent is the agent's share of the boot
#   userspace systemd-analyze's kernel and userspace times (to multi-user.target)
# and from the outside: qga = QEMU start -> the stand-in's guest agent answers (wall clock),
# guest = the test guest's own uptime at "RVTEST ready" (its kernel plus its init).
# Prints a table; copy it into bench/RESULTS.md with the machine's load.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export SOURCE_ROOT=${SOURCE_ROOT:-$(cd "$here/.." && pwd)}
export BUILD_ROOT=${BUILD_ROOT:-$SOURCE_ROOT/build}
source "$SOURCE_ROOT/tests/integration/lib.sh"
source "$SOURCE_ROOT/tests/standin/standin.sh"
[[ -x $BUILD_ROOT/rescuevm ]] || rv_fail "$BUILD_ROOT/rescuevm is not built (ninja -C $BUILD_ROOT)"

RUNS=${1:-3}
tmp=$(rv_tmpdir)

# --- boot files: build from scratch, sizes ------------------------------------------------
t0=$(date +%s.%N)
"$SOURCE_ROOT/tests/standin/build-standin.sh" "$tmp/boot" 2>/dev/null
t1=$(date +%s.%N)
build_s=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
initramfs_kb=$(($(stat -c %s "$tmp/boot/initramfs.cpio.gz") / 1024))

RV_GUEST_DIR=$(rv_guest_build)
STANDIN_BUILD_DIR=$tmp/boot
standin_new
standin_meson_install "$BUILD_ROOT" "$tmp/dest"
standin_install_rescuevm "$tmp/dest"
standin_disk vd0 64M virtio BENCH-VIRTIO-0
standin_disk sd0 64M ahci BENCH-SATA-0 "Bench SATA Disk"
standin_net
standin_seed_file /etc/rescuevm/rescuevm.toml <<EOF
[vm]
kernel = "$(rv_guest_kernel)"
initrd = "$RV_GUEST_DIR/initramfs.cpio.gz"
append = "$(rv_guest_append "rvtest.final=wait")"
firmware = "bios"
memory = "256MiB"
cpus = 1
display = "none"
[network]
mode = "none"
EOF

rows=()
for cpu in ${BENCH_CPUS:-max}; do
  params="rescuevm.enable=1 rescuevm.host.min_memory=1GiB"
  [[ $cpu != *-svm* ]] || params+=" rescuevm.vm.accel=tcg"
  for ((run = 1; run <= RUNS; run++)); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    STANDIN_CPU=$cpu standin_boot "$params"
    qga=$STANDIN_BOOT_SECONDS
    deadline=$((SECONDS + 300))
    until [[ $(standin_run systemctl show -p ActiveState --value rescuevm 2>/dev/null) == active ]]; do
      ((SECONDS < deadline)) || rv_fail "rescuevm.service did not become active (cpu $cpu)"
      sleep 1
    done
    guest=-
    deadline=$((SECONDS + ${BENCH_GUEST_TIMEOUT:-120}))
    while ((SECONDS < deadline)); do
      line=$(standin_sh 'grep -a "^RVTEST ready" /run/rescuevm/guest-console.log' 2>/dev/null) \
        && { guest=$(grep -o 'uptime=[0-9.]*' <<<"$line" | cut -d= -f2); break; }
      sleep 3
    done
    # -u and -t are ANDed by journalctl: two queries (systemd's "Started" line, the agent's lines).
    standin_sh 'journalctl -b -o short-monotonic --no-pager -u rescuevm; journalctl -b -o short-monotonic --no-pager -t rescuevm; systemd-analyze' \
      >"$tmp/journal-$cpu-$run.txt"
    rows+=("$(python3 - "$cpu" "$run" "$load" "$qga" "$guest" "$tmp/journal-$cpu-$run.txt" <<'EOF'
import re, sys
cpu, run, load, qga, guest, path = sys.argv[1:]
text = open(path).read()
def mono(pat):
    m = re.search(r"^\[ *([0-9.]+)\].*" + pat, text, re.M)
    return float(m.group(1)) if m else float("nan")
ready, agent, qemu = mono("Started rescuevm.service"), mono(r"rescuevm \S+ starting"), mono("QEMU started")
m = re.search(r"Startup finished in ([0-9.]+)s \(kernel\) \+ (?:(\d+)min )?([0-9.]+)s \(userspace\)", text)
kern, user = (float(m.group(1)), float(m.group(2) or 0) * 60 + float(m.group(3))) if m else (float("nan"),) * 2
print(f"| {cpu} | {run} | {load} | {kern:.1f} + {user:.1f} | {qga} | {agent:.1f} | {qemu - agent:.1f} | {ready:.1f} | {guest} |")
EOF
)")
    standin_quit
  done
done

echo "boot files: built from scratch in ${build_s} s; initramfs ${initramfs_kb} KiB; seed of this bench $(($(stat -c %s "$STANDIN_RUN/initrd.img") / 1024 - initramfs_kb)) KiB (rescuevm stripped, config, units)"
echo "| -cpu | run | load | systemd-analyze kernel + userspace (s) | QEMU start -> guest agent (s) | kernel -> agent start (s) | agent start -> QEMU started (s) | kernel -> READY=1 (s) | guest uptime at RVTEST ready (s) |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
