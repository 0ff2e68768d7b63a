#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmark: the disk data path the QEMU argv chooses (cache.direct=on, aio=io_uring) against QEMU's defaults and raw fio, on one loop disk.
#
# Root. Usage: bench/argv_datapath.sh   Env: REPS (default 5; medians are reported),
# NO_RECORD=1 to leave bench/RESULTS.md alone.
#
# One 1 GiB loop device over a file on the file system of the temp dir (/tmp), filled with
# random data (reading holes would measure nothing) and attached with --direct-io=on, so its
# reads reach the file system below instead of the backing file's page cache. One pass over
# the whole device first, so every measurement finds the layers below in the same warm state.
# Then, round-robin REPS times (load swings on a shared machine hit all alike), each run
# preceded by blockdev --flushbufs (this device's page cache only):
#   fio straight on the device, ioengine=io_uring direct=1, iodepth 32:
#     4 KiB random reads, 4 KiB sequential reads, 1 MiB sequential reads
#   qemu-img bench -f raw -d 32 (reads: that is its default, it has no -r), with
#     the argv's settings  -t none -i io_uring   (= cache.direct=on, aio=io_uring)
#     QEMU's defaults      -t writeback -i threads
#     in three shapes: 4 KiB strided (-S 257*4 KiB, see below) against fio's random reads,
#     4 KiB sequential, 1 MiB sequential; -c 65536 (256 MiB) for 4 KiB, -c 4096 (4 GiB: the
#     device 4 times) for 1 MiB. "Run completed in T seconds" gives IOPS = count / T and
#     MB/s = count * size / T / 1e6. fio moves the same number of bytes (--io_size), so each
#     pair does the same work; short time-based runs were too noisy on a shared machine.
# Each qemu-img figure is reported as a ratio to the fio figure of the same shape.
# The argv's settings are checked against the renderer's golden file.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
reps=${REPS:-5}
depth=32
die() { echo "argv_datapath: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (loop devices)"
for c in fio qemu-img losetup blockdev python3; do
  command -v "$c" >/dev/null || die "$c missing: run scripts/setup"
done

golden=$root/tests/unit/golden/uefi_kvm_virtio_2disks.argv
grep -q '^driver=host_device,.*cache.direct=on,aio=io_uring,' "$golden" \
  || die "$golden no longer shows cache.direct=on,aio=io_uring for server disks: update this benchmark"

tmp=$(mktemp -d /tmp/rescuevm-bench-datapath.XXXXXX)
loop=
cleanup() {
  set +e
  [[ -n $loop ]] && losetup -d "$loop"
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "argv_datapath: filling a 1 GiB backing file in $tmp" >&2
dd if=/dev/urandom of="$tmp/disk.img" bs=1M count=1024 status=none conv=fsync
loop=$(losetup --find --show --direct-io=on "$tmp/disk.img")
dio=$(cat "/sys/block/${loop#/dev/}/loop/dio" 2>/dev/null || echo 0)
[[ $dio == 1 ]] || echo "argv_datapath: note: $loop runs without direct I/O to its file" >&2

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# fio_once RW BS IO_SIZE: "IOPS BYTES_PER_S" of one fio run straight on the device.
fio_once() {
  local out
  out=$(fio --name=raw --filename="$loop" --ioengine=io_uring --direct=1 --rw="$1" --bs="$2" \
    --iodepth=$depth --numjobs=1 --io_size="$3" --output-format=json 2>/dev/null) \
    || die "fio --rw=$1 --bs=$2 failed"
  python3 -c 'import json,sys; r=json.load(sys.stdin)["jobs"][0]["read"]; print(r["iops"], r["bw_bytes"])' <<<"$out"
}

# qib_once CACHE AIO SIZE STEP COUNT: "IOPS BYTES_PER_S" of one qemu-img bench run (reads).
qib_once() {
  local cache=$1 aio=$2 size=$3 step=$4 count=$5 out secs
  out=$(qemu-img bench -f raw -t "$cache" -i "$aio" -d $depth -s "$size" -S "$step" -c "$count" "$loop" 2>&1) \
    || die "qemu-img bench -t $cache -i $aio failed: $out"
  secs=$(sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p' <<<"$out")
  [[ -n $secs ]] || die "cannot read qemu-img bench's time from: $out"
  awk -v c="$count" -v s="$size" -v t="$secs" 'BEGIN { printf "%.0f %.0f\n", c / t, c * s / t }'
}

# qemu-img bench reads at offset 0, step, 2*step, ... modulo the device size (QEMU 7.2). A step
# of 257 * 4 KiB (257 is prime to the 2^18 blocks of 1 GiB) visits every 4 KiB block once per
# pass, 1 MiB + 4 KiB apart: no readahead can follow it. The nearest it gets to random reads.
strided=$((257 * 4096))
declare -A cmd=(
  [fio_rand4k]="fio_once randread 4k 256m"
  [fio_seq4k]="fio_once read 4k 256m"
  [fio_seq1m]="fio_once read 1m 4g"
  [argv_str4k]="qib_once none io_uring 4096 $strided 65536"
  [argv_seq4k]="qib_once none io_uring 4096 4096 65536"
  [argv_seq1m]="qib_once none io_uring 1048576 1048576 4096"
  [def_str4k]="qib_once writeback threads 4096 $strided 65536"
  [def_seq4k]="qib_once writeback threads 4096 4096 65536"
  [def_seq1m]="qib_once writeback threads 1048576 1048576 4096"
)
order=(fio_rand4k fio_seq4k fio_seq1m argv_str4k argv_seq4k argv_seq1m def_str4k def_seq4k def_seq1m)

dd if="$loop" of=/dev/null bs=1M iflag=direct status=none
declare -A iops_runs=() bps_runs=()
for ((rep = 1; rep <= reps; rep++)); do
  echo "argv_datapath: pass $rep of $reps" >&2
  for m in "${order[@]}"; do
    blockdev --flushbufs "$loop"   # writeback runs start with this device's cache empty
    read -r a b < <(${cmd[$m]})
    iops_runs[$m]+=" $a"
    bps_runs[$m]+=" $b"
  done
done
declare -A IOPS=() BPS=()
for m in "${order[@]}"; do
  # shellcheck disable=SC2086 # lists of numbers, split on purpose
  IOPS[$m]=$(median ${iops_runs[$m]})
  # shellcheck disable=SC2086
  BPS[$m]=$(median ${bps_runs[$m]})
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mbs() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1e6 }'; }
num() { awk -v b="$1" 'BEGIN { printf "%.0f", b }'; }

date_utc=$(date -u +%Y-%m-%dT%H:%MZ)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
host="$(nproc) CPUs ($cpu), $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r), load $(cut -d' ' -f1 /proc/loadavg) at the end"
fs="$(df --output=fstype "$tmp" | tail -n 1) on $(df --output=source "$tmp" | tail -n 1)"
versions="qemu-img $(qemu-img --version | head -n 1 | sed 's/qemu-img version //'), $(fio --version)"

row() {   # row LABEL FIO ARGV DEFAULT (numbers already formatted) RAW_FIO RAW_ARGV RAW_DEFAULT
  echo "| $1 | $2 | $3 | $(ratio "$6" "$5") | $4 | $(ratio "$7" "$5") |"
}
table=$(
  echo "| reads, iodepth $depth | fio raw (io_uring, direct) | argv: -t none -i io_uring | ratio | defaults: -t writeback -i threads | ratio |"
  echo "|---|---|---|---|---|---|"
  row "4 KiB random (fio) / strided (qemu-img), IOPS" \
    "$(num "${IOPS[fio_rand4k]}")" "${IOPS[argv_str4k]}" "${IOPS[def_str4k]}" \
    "${IOPS[fio_rand4k]}" "${IOPS[argv_str4k]}" "${IOPS[def_str4k]}"
  row "4 KiB sequential, IOPS" \
    "$(num "${IOPS[fio_seq4k]}")" "${IOPS[argv_seq4k]}" "${IOPS[def_seq4k]}" \
    "${IOPS[fio_seq4k]}" "${IOPS[argv_seq4k]}" "${IOPS[def_seq4k]}"
  row "1 MiB sequential, MB/s" \
    "$(mbs "${BPS[fio_seq1m]}")" "$(mbs "${BPS[argv_seq1m]}")" "$(mbs "${BPS[def_seq1m]}")" \
    "${BPS[fio_seq1m]}" "${BPS[argv_seq1m]}" "${BPS[def_seq1m]}"
)
runs_detail=$(for m in "${order[@]}"; do echo "  $m IOPS:${iops_runs[$m]}"; done)

echo
echo "$date_utc  commit $commit  $host"
echo "loop device $loop (1 GiB, direct I/O to its file: $dio) over a file on $fs; $versions; medians of $reps"
echo "$table"
echo "every run:"
echo "$runs_detail"

if [[ ${NO_RECORD:-0} != 1 ]]; then
  {
    if ! grep -q '^## QEMU data path (issue 3)' "$here/RESULTS.md" 2>/dev/null; then
      cat <<'INTRO'

## QEMU data path (issue 3)

bench/argv_datapath.sh: how fast a server disk reads through the block layer
settings the argv gives it (`cache.direct=on,aio=io_uring`, i.e. qemu-img bench
`-t none -i io_uring`) compared with QEMU's defaults (`-t writeback -i threads`)
and with fio straight on the device (io_uring, O_DIRECT), each as a ratio to fio
doing the same shape of reads with the same number of bytes. iodepth 32.
qemu-img bench only reads in strides: its "4 KiB strided" run (step 257 x 4 KiB,
every block once, 1 MiB + 4 KiB apart) stands in for fio's random reads.

Caveats. The disk is a loop device over a file on this VM's own virtual disk,
not a server disk: the numbers say how the layers compare here, not what a SATA
or NVMe disk in a dedicated server does; the layers under the loop device
(ext4, virtio, the hypervisor's cache) may cache, and the machine is shared
with other builds (load 10-25 on 2 CPUs), so single runs swing by a factor of
two: read the medians and the ratios, and rerun before trusting a small
difference. qemu-img bench measures QEMU's block layer only, no guest and no
virtio-blk device emulation. Writeback wins sequential small reads through the
host page cache's readahead; that is the host caching the customer's disk in
the rescue system's RAM (a second copy next to the guest's own cache) and is
not why the argv picks its settings: with O_DIRECT the rescue system's small
RAM reserve stays out of the data path, whatever the guest reads or writes.
INTRO
    fi
    echo
    echo "### QEMU data path (issue 3): $date_utc, commit $commit"
    echo
    echo "Host: $host. Disk: a loop device (1 GiB of random data, direct I/O to its"
    echo "file: $dio) over a file on $fs. $versions."
    echo "Medians of $reps round-robin runs; fio and qemu-img move the same bytes per shape."
    echo
    echo "$table"
  } >>"$here/RESULTS.md"
  echo "argv_datapath: appended to $here/RESULTS.md" >&2
fi
