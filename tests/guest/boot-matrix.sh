#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Manual check (not run by meson, it is slow): boots each test guest image under its firmware from every disk bus, with one guest reboot, and prints a table.
#
# Usage (root): tests/guest/boot-matrix.sh [FIRMWARE...] [-- BUS...]
#   FIRMWARE: uefi bios (default both); BUS: virtio-blk virtio-scsi nvme sata (default all).
# Environment: BUILD_ROOT (images in $BUILD_ROOT/guest, else a temporary directory).
# Each cell: the image (uefi.qcow2 or bios.qcow2) read-only under a qcow2 overlay with
# bootindex=0 on BUS, as rescuevm attaches it (tests/integration/lib.sh rv_qemu_boot_image); a
# 16 MiB loop disk on virtio-blk with the params block "rvtest.boot_counter=RV-PARAMS
# rvtest.reboots=1 rvtest.final=poweroff". Passes when both boots report the image as boot disk
# and the guest powers off. Columns: seconds from QEMU start to the first "ready", to poweroff.
set -euo pipefail
RV_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../integration" && pwd)/lib.sh
# shellcheck source=../integration/lib.sh
source "$RV_LIB"

fws=() buses=()
while (($#)); do
  [[ $1 == -- ]] && { shift; buses=("$@"); break; }
  fws+=("$1")
  shift
done
((${#fws[@]})) || fws=(uefi bios)
((${#buses[@]})) || buses=(virtio-blk virtio-scsi nvme sata)

tmp=$(rv_tmpdir)
dir=$(rv_guest_images)
failed=0
printf '%-5s %-12s %-6s %-9s %-8s %s\n' fw bus result ready_s off_s bootdisk >&2
for fw in "${fws[@]}"; do
  [[ $fw == uefi ]] && want="ptuuid=$(cat "$dir/uefi.ptuuid") via=efi-loader" || want="ptuuid=$(cat "$dir/bios.ptuuid") via=edd"
  for bus in "${buses[@]}"; do
    run=$tmp/$fw-$bus
    params=$(rv_loop_disk 16M)
    rv_params_block "$params" rvtest.boot_counter=RV-PARAMS rvtest.reboots=1 rvtest.final=poweroff
    t0=$SECONDS ready=- off=- result=FAIL
    rv_qemu_boot_image "$run" "$fw" "$dir/$fw.qcow2" "$bus" \
      -blockdev "driver=host_device,filename=$params,node-name=params,cache.direct=on" \
      -device virtio-blk-pci,drive=params,serial=RV-PARAMS
    rv_wait_for '^RVTEST ready' "$run/serial.log" 300 && ready=$((SECONDS - t0))
    if rv_wait_for '"event":"SHUTDOWN","data":\{"guest":true' "$run/events.jsonl" 300; then
      off=$((SECONDS - t0))
      (($(rv_count "^RVTEST bootdisk name=[a-z0-9]+ $want candidates=1$" "$run/serial.log") == 2)) \
        && (($(rv_count '^RVTEST boots n=2 ' "$run/serial.log") == 1)) && result=ok
    fi
    [[ $result == ok ]] || failed=1
    printf '%-5s %-12s %-6s %-9s %-8s %s\n' "$fw" "$bus" "$result" "$ready" "$off" \
      "$(grep -a -m1 '^RVTEST bootdisk' "$run/serial.log" | cut -d' ' -f3- || echo none)" >&2
    rv_qemu_stop "$run" || true
  done
done
exit "$failed"
