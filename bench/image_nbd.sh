#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmarks the rescue image's source: time from `rescuevm run` to the guest's first console line, and the host RAM it costs, local file vs NBD+TLS over a namespace link.
#
# Usage (root): bench/image_nbd.sh [RUNS]     (default 3)
#   env RESCUEVM (default build/rescuevm), BUILD_ROOT (default build; images in BUILD_ROOT/guest)
# Both modes run the agent in network namespace HOST with the test guest's uefi.qcow2 (OVMF, TCG):
#   local: vm.image = a copy of uefi.qcow2 in a tmpfs (what a RAM-root rescue host holds);
#   nbd:   qemu-nbd --read-only with TLS in namespace IMG, 198.51.100.1, over a veth.
# Per run: ms from `run` to the guest's first line ("RVTEST boot") and to "RVTEST ready" in the
# guest console; QEMU's peak RSS (VmHWM) once ready; the overlay's size. Host RAM for the image is
# QEMU's RSS + the overlay + (local) the image file on the RAM disk. Prints medians side by side.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export SOURCE_ROOT=${SOURCE_ROOT:-$(cd "$here/.." && pwd)}
export BUILD_ROOT=${BUILD_ROOT:-$SOURCE_ROOT/build}
export RESCUEVM=${RESCUEVM:-$BUILD_ROOT/rescuevm}
[[ -x $RESCUEVM ]] || { echo "bench: $RESCUEVM is not built (ninja -C $BUILD_ROOT)" >&2; exit 1; }
source "$SOURCE_ROOT/tests/integration/lib.sh"
RUNS=${1:-3}
rv_require qemu-nbd certtool

tmp=$(rv_tmpdir)
dir=$(rv_guest_images)
ram=$tmp/ram
mkdir -p "$ram"
mount -t tmpfs -o size=256m,mode=0700 rvbench "$ram"
rv_cleanup_add umount "$ram"
rt=$ram/rt
rv_cleanup_add rv_kill_qemu_for "$rt"
cp "$dir/uefi.qcow2" "$ram/uefi.qcow2"

IMG=$(rv_netns rvbench-img)
HOST=$(rv_netns rvbench-host)
ip -n "$IMG" link add img0 type veth peer name host0 netns "$HOST"
ip -n "$IMG" addr add 198.51.100.1/24 dev img0 && ip -n "$IMG" link set img0 up
ip -n "$HOST" addr add 198.51.100.10/24 dev host0 && ip -n "$HOST" link set host0 up

pki=$tmp/pki
mkdir -p "$pki/s" "$pki/c"
certtool --generate-privkey --outfile "$pki/ca-key.pem" >/dev/null 2>&1
printf 'cn = bench CA\nca\ncert_signing_key\nexpiration_days = 2\n' >"$tmp/ca.info"
certtool --generate-self-signed --load-privkey "$pki/ca-key.pem" --template "$tmp/ca.info" --outfile "$pki/ca-cert.pem" >/dev/null 2>&1
for side in s:server:images.test:tls_www_server c:client:bench-host:tls_www_client; do
  IFS=: read -r d name cn role <<<"$side"
  certtool --generate-privkey --outfile "$pki/$d/$name-key.pem" >/dev/null 2>&1
  printf 'cn = %s\ndns_name = %s\n%s\nencryption_key\nsigning_key\nexpiration_days = 2\n' "$cn" "$cn" "$role" >"$tmp/$name.info"
  certtool --generate-certificate --load-ca-certificate "$pki/ca-cert.pem" --load-ca-privkey "$pki/ca-key.pem" \
    --load-privkey "$pki/$d/$name-key.pem" --template "$tmp/$name.info" --outfile "$pki/$d/$name-cert.pem" >/dev/null 2>&1
  cp "$pki/ca-cert.pem" "$pki/$d/"
  chmod 600 "$pki/$d/$name-key.pem"
done
ip netns exec "$IMG" qemu-nbd --read-only --format=qcow2 --export-name=rescue --persistent --shared=8 \
  --object "tls-creds-x509,id=tls0,dir=$pki/s,endpoint=server,verify-peer=on" --tls-creds tls0 \
  --bind 198.51.100.1 --port 10809 "$dir/uefi.qcow2" >"$tmp/nbd.log" 2>&1 &
rv_cleanup_kill $!
disk=$(rv_loop_disk 64M)
: >"$tmp/cmdline"

conf() {   # conf IMAGE_LINES
  cat >"$tmp/rescuevm.toml" <<EOT
[host]
min_memory = "1GiB"
[vm]
$1
accel = "tcg"
firmware = "uefi"
memory = "512MiB"
cpus = 2
display = "none"
[disks]
match = ["${disk#/dev/}"]
[network]
mode = "none"
[guest]
admin_password_file = "$tmp/no-password"
[paths]
runtime_dir = "$rt"
EOT
}

ms() { date +%s%3N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

# one_run MODE: prints "first_ms ready_ms qemu_hwm_kib overlay_kib"
one_run() {
  local t0 first="" ready="" pid qpid hwm ov
  rm -rf "$rt"
  t0=$(ms)
  ip netns exec "$HOST" "$RESCUEVM" --config "$tmp/rescuevm.toml" --kernel-cmdline "$tmp/cmdline" run \
    >>"$tmp/agent-$1.log" 2>&1 </dev/null &
  pid=$!
  while [[ -z $ready ]]; do
    (($(ms) - t0 < 400000)) || { echo "bench: $1: no RVTEST ready in 400 s" >&2; kill -9 "$pid"; exit 1; }
    if [[ -z $first ]] && grep -aq '^RVTEST boot ' "$rt/guest-console.log" 2>/dev/null; then first=$(($(ms) - t0)); fi
    if grep -aq '^RVTEST ready' "$rt/guest-console.log" 2>/dev/null; then ready=$(($(ms) - t0)); fi
    sleep 0.05   # bench sampling interval
  done
  qpid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$rt/qemu.json")
  hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$qpid/status")
  ov=$(($(stat -c %b "$rt/overlay.qcow2") * 512 / 1024))
  kill -TERM "$pid"
  wait "$pid" || true
  echo "$first $ready $hwm $ov"
}

for mode in local nbd; do
  if [[ $mode == local ]]; then
    conf "image = \"$ram/uefi.qcow2\""
  else
    conf "image = \"nbd://198.51.100.1:10809/rescue\"
image_tls = \"$pki/c\"
image_tls_hostname = \"images.test\""
  fi
  : >"$tmp/$mode.runs"
  for ((i = 1; i <= RUNS; i++)); do
    r=$(one_run "$mode")
    echo "$r" >>"$tmp/$mode.runs"
    rv_log "$mode run $i: first line ${r%% *} ms; (first ready hwm_kib overlay_kib) = $r"
  done
done
image_kib=$(($(stat -c %b "$ram/uefi.qcow2") * 512 / 1024))
echo
echo "image_nbd: $RUNS runs each, medians (load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-6s %14s %14s %14s %12s %18s\n' mode first_line_ms ready_ms qemu_hwm_MiB overlay_KiB image_in_RAM_KiB
for mode in local nbd; do
  f=$(cut -d' ' -f1 "$tmp/$mode.runs" | median); r=$(cut -d' ' -f2 "$tmp/$mode.runs" | median)
  h=$(cut -d' ' -f3 "$tmp/$mode.runs" | median); o=$(cut -d' ' -f4 "$tmp/$mode.runs" | median)
  printf '%-6s %14s %14s %14s %12s %18s\n' "$mode" "$f" "$r" "$((h / 1024))" "$o" "$([[ $mode == local ]] && echo "$image_kib" || echo 0)"
done
