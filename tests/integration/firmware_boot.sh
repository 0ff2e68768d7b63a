#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The production path through the agent: the VM boots the rescue image from disk 0 through OVMF and SeaBIOS, and the agent knows when it does not.
#
# Usage (root): tests/integration/firmware_boot.sh   (meson: meson test -C BUILD firmware_boot)
#
# The test guest's firmware-bootable images (tests/guest/build-images.sh) are the rescue image
# (vm.image); per-run guest parameters come from a params block on a passed loop disk.
# UEFI (uefi.qcow2, OVMF from its descriptor, per-session vars copy), virtio-blk:
#   - the guest booted through EFI from the image (its known GPT GUID), never from a passed disk,
#     even a bootable copy of the image beside it; a 512 and a 4Kn passed disk at their sizes;
#   - a guest reboot in the same QEMU; the overlay keeps the guest's writes across the reboot
#     and a `vm start` (a boot counter on the image's own disk), the UEFI vars file too;
#   - poweroff -> VM off (no QEMU), `vm start` -> boots again; agent SIGKILL -> a new agent
#     re-attaches without restarting QEMU; SIGTERM -> ACPI first (the guest says so), exit 0;
#   - the image file is byte-identical at the end; a new session starts with fresh vars.
# BIOS (bios.raw, SeaBIOS), sata: boots from the image with efi=no, reboots in place, ACPI stop.
# Images that do not boot (zero.qcow2 under UEFI, zero.raw under SeaBIOS): the agent says so in
# one line with the fix, status shows it, the VM stays up, and SIGTERM does not wait for ACPI.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

rv_require qemu-system-x86_64 qemu-img losetup python3 xorriso sgdisk sha256sum

source "$(dirname "$0")/supervisor_lib.sh"

BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
tmp=$(rv_tmpdir)
images=$(rv_guest_images)
# supervisor_lib.sh's agent and status helpers, on this test's own config.
SUP_TMP=$tmp
rt=$tmp/rt SUP_RT=$tmp/rt
conf=$tmp/rescuevm.toml SUP_CONF=$tmp/rescuevm.toml
SUP_CMDLINE=$tmp/cmdline
agent_log=$tmp/agent.log SUP_AGENT_LOG=$tmp/agent.log
console=$rt/guest-console.log SUP_CONSOLE=$rt/guest-console.log
: >"$SUP_CMDLINE"
rv_cleanup_add rv_kill_qemu_for "$rt"

rv() { sup_rescuevm "$@"; }
fail() { sup_fail "$@"; }
status() { sup_status "$@"; }
wait_status() { sup_wait_status "$@" || fail "status $1 is not '$2' after $3 s"; }
wait_console() { rv_wait_for "$1" "$console" "${3:-$BOOT_TIMEOUT}" || fail "no console line /$1/ ($2)"; }
wait_log() { rv_wait_for "$1" "$agent_log" "${3:-60}" || fail "no agent log line /$1/ ($2)"; }
alive() { sup_alive "$1"; }
agent_start() { sup_agent_start; agent=$SUP_AGENT_PID; }
agent_stop() { sup_agent_stop; agent_rc=$SUP_AGENT_RC; }
# write_config FIRMWARE IMAGE BUS DISK...: the agent's config for one run.
write_config() {
  local firmware=$1 image=$2 bus=$3 match
  shift 3
  match=$(printf '"%s", ' "${@#/dev/}")
  cat >"$conf" <<EOF
[host]
min_memory = "1GiB"
[vm]
image = "$image"
accel = "tcg"
firmware = "$firmware"
memory = "512MiB"
cpus = 2
display = "none"
[disks]
match = [${match%, }]
bus = "$bus"
[network]
mode = "none"
[guest]
admin_password_file = "$tmp/no-password"
[paths]
runtime_dir = "$rt"
[supervisor]
shutdown_timeout = "120s"
EOF
}

uefi_guid=$(cat "$images/uefi.ptuuid")
bios_sig=$(cat "$images/bios.ptuuid")

# The parts, each on its own (FIRMWARE_BOOT_PARTS="uefi bios zero" by default; one part at a
# time is handy while working on it).
params=$(rv_loop_disk 64M)         # vdb: the params block, 512-byte sectors

uefi_part() {
image=$tmp/uefi.qcow2
cp "$images/uefi.qcow2" "$image"
image_sum=$(rv_sha256 "$image")
k4=$(rv_loop_disk 64M 4096)        # vdc: a 4Kn disk
# A bootable copy of the image with another identity, passed to the VM: it must not boot.
decoy=$(rv_loop_disk 64M)          # vdd
qemu-img convert -q -O raw "$images/uefi.raw" "$tmp/decoy.raw"
sgdisk -U 11111111-2222-4333-8444-555555555555 "$tmp/decoy.raw" >/dev/null
dd if="$tmp/decoy.raw" of="$decoy" bs=1M conv=notrunc,fsync status=none
rm -f "$tmp/decoy.raw"
# The boot counter lives on the image's own disk (vda): the overlay carries it.
rv_params_block "$params" rvtest.boot_counter=vda rvtest.reboots=1 rvtest.heartbeat=2 rvtest.final=poweroff
write_config uefi "$image" virtio-blk "$params" "$k4" "$decoy"
agent_start
wait_console '^RVTEST firmware efi=yes kernel=image image=uefi' "UEFI boot from the image"
wait_console "^RVTEST bootdisk name=vda ptuuid=$uefi_guid " "the image (vda) is the disk the firmware booted"
grep -aq '^RVTEST disk name=vdb .* lbs=512 ' "$console" || fail "vdb (512-byte disk) not seen with lbs=512"
grep -aq '^RVTEST disk name=vdc .* lbs=4096 ' "$console" || fail "vdc (4Kn disk) not seen with lbs=4096"
rv_pass "UEFI: the guest booted through EFI from the image (GPT GUID $uefi_guid), not from a bootable copy passed beside it; 512 and 4Kn disks at their sector sizes"
qemu1=$(status vm.qemu_pid)
[[ -f $rt/uefi-vars.fd ]] || fail "no per-session UEFI vars copy in $rt"
vars_inode=$(stat -c %i "$rt/uefi-vars.fd")
wait_console '^RVTEST boots n=2 ' "the guest's reboot" 
wait_log 'guest restarted itself \(Windows reboot 1\)' "the reboot logged"
[[ $(status vm.qemu_pid) == "$qemu1" ]] || fail "QEMU changed across the guest reboot"
rv_pass "UEFI: the guest rebooted in the same QEMU (pid $qemu1) and found its first boot's write (boot counter 2 on the image's disk): the overlay keeps it"
wait_status vm.state off "$BOOT_TIMEOUT"
alive "$qemu1" && fail "QEMU $qemu1 still runs after the guest powered off"
rv vm start >/dev/null || fail "vm start failed"
wait_console '^RVTEST boots n=3 ' "boot after vm start"
rv_params_block "$params" rvtest.boot_counter=vda rvtest.heartbeat=2 rvtest.final=wait
[[ $(stat -c %i "$rt/uefi-vars.fd") == "$vars_inode" ]] || fail "the UEFI vars file was made again within the session"
rv_pass "UEFI: poweroff left the VM off with no QEMU; vm start booted it again with the session's overlay (counter 3) and vars"
# That boot powers off again (its parameters were read before the change); the next one stays up.
wait_status vm.state off "$BOOT_TIMEOUT"
rv vm start >/dev/null || fail "second vm start failed"
wait_console '^RVTEST boots n=4 ' "boot after the second vm start"
qemu2=$(status vm.qemu_pid)
kill -KILL "$agent"
wait "$agent" 2>/dev/null || true
alive "$qemu2" || fail "QEMU died with the agent"
agent_start
wait_log 're-attached; the guest is running' "re-attach"
[[ $(status vm.qemu_pid) == "$qemu2" ]] || fail "the new agent did not take over QEMU $qemu2"
beats=$(rv_count '^RVTEST alive' "$console")
rv_wait_for_count $((beats + 2)) '^RVTEST alive' "$console" 60 || fail "the guest stopped its heartbeat after the re-attach"
rv_pass "UEFI: agent SIGKILL; a new agent re-attached to QEMU $qemu2 without restarting the guest"
agent_stop
[[ $agent_rc == 0 ]] || fail "agent exit status $agent_rc after SIGTERM"
grep -aq '^RVTEST acpi-powerdown' "$console" || fail "the guest never saw the ACPI power button"
alive "$qemu2" && fail "QEMU still runs after the agent's stop"
[[ $(rv_sha256 "$image") == "$image_sum" ]] || fail "the rescue image changed"
[[ ! -e $rt/uefi-vars.fd && ! -e $rt/overlay.qcow2 ]] || fail "session files left after a clean stop"
rv_pass "UEFI: SIGTERM powered the guest down by ACPI, exit 0; the image is byte-identical; the session's overlay and vars are gone"

}

bios_part() {
: >"$agent_log"
rm -rf "$rt"
image=$tmp/bios.raw
cp --sparse=always "$images/bios.raw" "$image"
image_sum=$(rv_sha256 "$image")
# SATA disks are named in probe order, which varies between boots: the image is found by its
# MBR signature, not as sda.
rv_params_block "$params" rvtest.boot_counter="$bios_sig" rvtest.reboots=1 rvtest.final=wait
write_config bios "$image" sata "$params"
agent_start
wait_console '^RVTEST firmware efi=no kernel=image image=bios' "BIOS boot from the image"
wait_console "^RVTEST bootdisk name=sd[a-z] ptuuid=$bios_sig " "the image (its MBR signature $bios_sig) is the disk SeaBIOS booted"
wait_console '^RVTEST boots n=2 ' "the guest's reboot under SeaBIOS"
agent_stop
[[ $agent_rc == 0 ]] || fail "agent exit status $agent_rc after SIGTERM"
grep -aq '^RVTEST acpi-powerdown' "$console" || fail "the guest never saw the ACPI power button"
[[ $(rv_sha256 "$image") == "$image_sum" ]] || fail "the BIOS rescue image changed"
rv_pass "BIOS: SeaBIOS booted the raw image from disk 0 (sata), efi=no, a reboot in place, ACPI stop; the image unchanged"

}

zero_part() {
for case in "uefi zero.qcow2 does not boot under UEFI" "bios zero.raw does not boot with SeaBIOS"; do
  read -r firmware file words <<<"$case"
  : >"$agent_log"
  rm -rf "$rt"
  cp --sparse=always "$images/$file" "$tmp/$file"
  write_config "$firmware" "$tmp/$file" virtio-blk "$params"
  agent_start
  wait_log "the rescue image at vm.image \\($tmp/$file\\) $words" "the boot failure named, with the image" 120
  line=$(grep -a "$words" "$agent_log" | head -1)
  [[ $line == *'try vm.firmware'* ]] || fail "the boot failure line has no fix: $line"
  [[ $(status vm.state) == running ]] || fail "the VM should stay up for an engineer"
  [[ $(status vm.boot_problem) == *"$words"* ]] || fail "status does not show the boot problem"
  start=$SECONDS
  agent_stop
  ((SECONDS - start < 30)) || fail "SIGTERM waited $((SECONDS - start)) s on a guest with no OS"
  [[ $agent_rc == 0 ]] || fail "agent exit status $agent_rc"
  rv_pass "$firmware: $file detected ($(echo "$line" | sed 's/.*supervisor: //' | cut -c1-120)...), shown in status, VM kept up, SIGTERM ended it in $((SECONDS - start)) s"
done
}

for part in ${FIRMWARE_BOOT_PARTS:-uefi bios zero}; do
  "${part}_part"
done
