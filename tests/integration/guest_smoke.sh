#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Proves the test guest and the harness (lib.sh, qmp.py) do what other integration tests rely on.
#
# Usage (root): tests/integration/guest_smoke.sh   (meson: meson test -C BUILD guest_smoke)
# Boots the guest directly in QEMU (TCG) three times and asserts:
#  A. two virtio-blk loop disks (512/512 and a 4Kn one, 4096/4096) are seen with their sizes,
#     block sizes and serials; the markers the test wrote at 1 MiB are read; the boot counter
#     proves two boots with different boot_ids around one guest reboot (QMP RESET guest-reset,
#     same QEMU process), then a guest poweroff (SHUTDOWN guest-shutdown, QEMU left paused);
#     the counter and the MBR signature the guest wrote are on the disks afterwards.
#  B. static network from the kernel command line inside a network namespace: /32 with a
#     gateway outside the prefix and an IPv6 /128 with gateway fe80::1, both pinged; then QMP
#     system_powerdown reaches the guest as the ACPI power button and it powers off.
#  C. config drive (ISO 9660 "config-2" on the built-in AHCI CD-ROM): the guest reads
#     meta_data/network_data, applies the network, pings the gateway, never prints the
#     password; then rvtest.final=panic with -device pvpanic gives QMP GUEST_PANICKED.
# The guest kernel and initramfs are byte-identical afterwards. Everything is cleaned up.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

rv_require qemu-system-x86_64 losetup python3 xorriso ip sha256sum od

BOOT_TIMEOUT=150   # one TCG boot on a loaded 2-core machine; a quiet machine needs ~10 s

tmp=$(rv_tmpdir)
RV_GUEST_DIR=$(rv_guest_build)
kernel=$(rv_guest_kernel)
kernel_sha=$(rv_sha256 "$kernel")
initrd_sha=$(rv_sha256 "$RV_GUEST_DIR/initramfs.cpio.gz")

# expect_line PATTERN FILE [COUNT]: FILE has at least COUNT (default 1) lines matching.
expect_line() {
  local n
  n=$(rv_count "$1" "$2")
  ((n >= ${3:-1})) || rv_fail "expected ${3:-1} line(s) matching '$1' in $(basename "$2"), found $n; RVTEST lines: $(grep -a '^RVTEST' "$2" | tr '\n' '|')"
}

# ---------------------------------------------------------------- A: disks, reboot, poweroff
disk_a=$(rv_loop_disk 64M)
disk_b=$(rv_loop_disk 48M 4096)
[[ $(blockdev --getss "$disk_b") == 4096 ]] || rv_fail "$disk_b is not a 4Kn loop device"
# Markers at 1 MiB (a whole 4 KiB block, padded with NULs, fine for both sector sizes).
printf 'RVSMOKE-MARKER-A\n' | dd of="$disk_a" bs=4096 seek=256 count=1 conv=sync,fsync status=none
printf 'RVSMOKE-MARKER-B\n' | dd of="$disk_b" bs=4096 seek=256 count=1 conv=sync,fsync status=none

run=$tmp/a
rv_log "run A: two disks, one guest reboot, guest poweroff"
rv_qemu_start "$run" \
  "rvtest.read_marker=1 rvtest.boot_counter=RV-SMOKE-A rvtest.reboots=1 rvtest.final=poweroff rvtest.write_mbr_sig=RV-SMOKE-B:1234abcd" \
  -blockdev "driver=host_device,filename=$disk_a,node-name=da,cache.direct=on,aio=native" \
  -device virtio-blk-pci,drive=da,serial=RV-SMOKE-A,logical_block_size=512,physical_block_size=512 \
  -blockdev "driver=host_device,filename=$disk_b,node-name=db,cache.direct=on,aio=native" \
  -device virtio-blk-pci,drive=db,serial=RV-SMOKE-B,logical_block_size=4096,physical_block_size=4096
qemu_pid=$RV_QEMU_PID
rv_wait_for '"event":"SHUTDOWN","data":\{"guest":true,"reason":"guest-shutdown"' "$run/events.jsonl" $((2 * BOOT_TIMEOUT)) \
  || rv_fail "run A: no guest poweroff; RVTEST lines: $(grep -a '^RVTEST' "$run/serial.log" | tr '\n' '|')"
log=$run/serial.log
expect_line '^RVTEST disk name=vda size_bytes=67108864 lbs=512 pbs=512 serial=RV-SMOKE-A ' "$log" 2
expect_line '^RVTEST disk name=vdb size_bytes=50331648 lbs=4096 pbs=4096 serial=RV-SMOKE-B ' "$log" 2
expect_line '^RVTEST marker name=vda text=RVSMOKE-MARKER-A$' "$log" 2
expect_line '^RVTEST marker name=vdb text=RVSMOKE-MARKER-B$' "$log" 2
expect_line '^RVTEST boots n=1 disk=vda$' "$log"
expect_line '^RVTEST boots n=2 disk=vda$' "$log"
expect_line '^RVTEST rebooting n=1$' "$log"
expect_line '^RVTEST poweroff$' "$log"
expect_line '^RVTEST mbrsig name=vdb old=00000000 new=1234abcd$' "$log"
(($(rv_count '^RVTEST error' "$log") == 0)) || rv_fail "run A: guest reported errors: $(grep -a '^RVTEST error' "$log")"
boot_ids=$(tr -d '\r' <"$log" | sed -n 's/^RVTEST boot boot_id=\([^ ]*\) .*/\1/p')
(($(wc -l <<<"$boot_ids") == 2)) || rv_fail "run A: expected 2 boots, got: $boot_ids"
(($(sort -u <<<"$boot_ids" | wc -l) == 2)) || rv_fail "run A: both boots have the same boot_id"
# One guest reboot: SeaBIOS may add 1-2 resets of its own right after the guest's.
resets=$(rv_count '"event":"RESET","data":\{"guest":true,"reason":"guest-reset"' "$run/events.jsonl")
((resets >= 1 && resets <= 3)) || rv_fail "run A: expected one reboot (1-3 RESET guest-reset events), got $resets"
(($(rv_count '"event":"SHUTDOWN"' "$run/events.jsonl") == 1)) || rv_fail "run A: expected exactly one SHUTDOWN event"
kill -0 "$qemu_pid" 2>/dev/null || rv_fail "run A: QEMU exited on guest poweroff despite -action shutdown=pause"
rv_qmp "$run/qmp.sock" query-status | grep -q '"status":"shutdown"' || rv_fail "run A: QEMU is not in state shutdown"
rv_qemu_stop "$run" || rv_fail "run A: QEMU exited with status $? on quit"
blockdev --flushbufs "$disk_a" "$disk_b"
counter=$(dd if="$disk_a" bs=512 skip=4096 count=1 status=none | tr '\0' '\n' | head -n 1)
[[ $counter == "RVBOOT 2" ]] || rv_fail "run A: boot counter on the disk is '$counter', want 'RVBOOT 2'"
sig=$(dd if="$disk_b" bs=1 skip=440 count=4 status=none | od -An -tx1 | tr -d ' ')
[[ $sig == cdab3412 ]] || rv_fail "run A: MBR signature bytes on the disk are $sig, want cdab3412"
rv_log "run A ok: disks, markers, $resets RESET event(s) for one reboot, two boot ids, poweroff"

# ---------------------------------------------------------------- shared gateway namespace
# The "gateway" side is a tap device inside a namespace: QEMU runs in the namespace and the
# guest's NIC is the other end. 203.0.113.1 and fe80::1 answer; the guest's /32 and /128 are
# routed back through the tap.
ns=$(rv_netns rvsmoke)
ip -n "$ns" tuntap add dev rvtap0 mode tap
ip -n "$ns" link set rvtap0 up
ip -n "$ns" addr add 203.0.113.1/32 dev rvtap0
ip -n "$ns" addr add fe80::1/64 dev rvtap0 nodad
export RV_QEMU_WRAP="ip netns exec $ns"

# ---------------------------------------------------------------- B: static network, ACPI
mac_b=52:54:00:5e:00:0b
ip -n "$ns" route add 203.0.113.10/32 dev rvtap0
ip -n "$ns" -6 route add 2001:db8::10/128 dev rvtap0
run=$tmp/b
rv_log "run B: static network from the command line, then ACPI power button"
rv_qemu_start "$run" \
  "rvtest.net=ip:203.0.113.10/32,gw:203.0.113.1,ip6:2001:db8::10/128,gw6:fe80::1 rvtest.ping_count=2" \
  -netdev tap,id=n0,ifname=rvtap0,script=no,downscript=no \
  -device virtio-net-pci,netdev=n0,mac=$mac_b
rv_wait_for '^RVTEST ready' "$run/serial.log" "$BOOT_TIMEOUT" \
  || rv_fail "run B: guest not ready; RVTEST lines: $(grep -a '^RVTEST' "$run/serial.log" | tr '\n' '|')"
log=$run/serial.log
expect_line "^RVTEST net dev=eth0 mac=$mac_b ip=203.0.113.10/32 gw=203.0.113.1 ip6=2001:db8::10/128 gw6=fe80::1$" "$log"
expect_line '^RVTEST ping gw=203.0.113.1 ok ' "$log"
expect_line '^RVTEST ping gw=fe80::1 ok ' "$log"
ip -n "$ns" neigh show 203.0.113.10 dev rvtap0 | grep -q "lladdr $mac_b" \
  || rv_fail "run B: the gateway has no neighbour entry 203.0.113.10 at $mac_b"
expect_line '^RVTEST acpi-listen ' "$log"
rv_qmp "$run/qmp.sock" system_powerdown >/dev/null || rv_fail "run B: system_powerdown refused"
rv_wait_for '^RVTEST acpi-powerdown$' "$log" 60 || rv_fail "run B: the guest did not report the ACPI power button"
rv_wait_for '"event":"SHUTDOWN","data":\{"guest":true,"reason":"guest-shutdown"' "$run/events.jsonl" 60 \
  || rv_fail "run B: no guest poweroff after the ACPI power button"
rv_qemu_stop "$run" || rv_fail "run B: QEMU exited with status $? on quit"
rv_log "run B ok: IPv4 /32 and IPv6 /128 with outside gateways pinged; ACPI power button powered off"

# ---------------------------------------------------------------- C: config drive, panic
mac_c=52:54:00:5e:00:0c
ip -n "$ns" route add 203.0.113.20/32 dev rvtap0
ip -n "$ns" -6 route add 2001:db8::20/128 dev rvtap0
stage=$tmp/config-drive
mkdir -m 0700 -p "$stage/openstack/latest"
# A random password that must never appear on the console. It goes into files only (printf is
# a builtin: no argv); the search below reads it from a file (grep -f), never from argv.
pass_file=$tmp/password
(umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=\n' >"$pass_file")
{
  printf '{"uuid": "7f8b6c1e-5d4a-4c3b-9e2f-1a0b9c8d7e6f", "name": "rvsmoke", "admin_pass": "'
  cat "$pass_file"
  printf '", "meta": {"admin_username": "Administrator"}}\n'
} >"$stage/openstack/latest/meta_data.json"
cat >"$stage/openstack/latest/network_data.json" <<EOF
{
  "links": [
    {"id": "uplink0", "type": "phy", "ethernet_mac_address": "${mac_c^^}", "mtu": 1450}
  ],
  "networks": [
    {"id": "net4", "type": "ipv4", "link": "uplink0", "ip_address": "203.0.113.20",
     "netmask": "255.255.255.255",
     "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "203.0.113.1"}]},
    {"id": "net6", "type": "ipv6", "link": "uplink0", "ip_address": "2001:db8::20",
     "netmask": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
     "routes": [{"network": "::", "netmask": "::", "gateway": "fe80::1"}]}
  ],
  "services": [{"type": "dns", "address": "192.0.2.53"}]
}
EOF
printf '#ps1_sysnative\r\nWrite-Host "rvsmoke"\r\n' >"$stage/openstack/latest/user_data"
iso=$tmp/config-2.iso
xorriso -as mkisofs -quiet -V config-2 -J -R -o "$iso" "$stage" 2>"$tmp/xorriso.log" \
  || rv_fail "xorriso failed: $(cat "$tmp/xorriso.log")"

run=$tmp/c
rv_log "run C: config drive network, then kernel panic through pvpanic"
rv_qemu_start "$run" "rvtest.net=configdrive rvtest.ping_count=2 rvtest.final=panic" \
  -netdev tap,id=n0,ifname=rvtap0,script=no,downscript=no \
  -device virtio-net-pci,netdev=n0,mac=$mac_c \
  -drive "if=none,id=cd0,file=$iso,format=raw,media=cdrom,readonly=on" \
  -device ide-cd,drive=cd0,bus=ide.0 \
  -device pvpanic
rv_wait_for '"event":"GUEST_PANICKED"' "$run/events.jsonl" "$BOOT_TIMEOUT" \
  || rv_fail "run C: no GUEST_PANICKED; RVTEST lines: $(grep -a '^RVTEST' "$run/serial.log" | tr '\n' '|')"
log=$run/serial.log
expect_line '^RVTEST cdrom name=sr0$' "$log"
expect_line '^RVTEST configdrive found dev=sr0$' "$log"
expect_line '^RVTEST configdrive meta uuid=7f8b6c1e-5d4a-4c3b-9e2f-1a0b9c8d7e6f name=rvsmoke admin_username=Administrator admin_pass=set hostname=none$' "$log"
expect_line '^RVTEST configdrive user_data=present bytes=[0-9]+ first_line=#ps1_sysnative$' "$log"
expect_line "^RVTEST configdrive link id=uplink0 type=phy mac=${mac_c^^} dev=eth0 mtu=1450$" "$log"
expect_line '^RVTEST configdrive network id=net4 type=ipv4 link=uplink0 dev=eth0 address=203.0.113.20/32$' "$log"
expect_line '^RVTEST configdrive network id=net6 type=ipv6 link=uplink0 dev=eth0 address=2001:db8::20/128$' "$log"
expect_line '^RVTEST configdrive route network=0.0.0.0/0 gateway=203.0.113.1 dev=eth0$' "$log"
expect_line '^RVTEST configdrive route network=::/0 gateway=fe80::1 dev=eth0$' "$log"
expect_line '^RVTEST configdrive dns=192.0.2.53$' "$log"
expect_line '^RVTEST configdrive done links=1 networks=2$' "$log"
expect_line '^RVTEST ping gw=203.0.113.1 ok ' "$log"
expect_line '^RVTEST ping gw=fe80::1 ok ' "$log"
expect_line '^RVTEST panic pvpanic=yes$' "$log"
(($(rv_count '^RVTEST error' "$log") == 0)) || rv_fail "run C: guest reported errors: $(grep -a '^RVTEST error' "$log")"
if grep -a -q -F -f "$pass_file" "$log" "$run/events.jsonl" "$run/qemu.log"; then
  rv_fail "run C: the admin password appears in the guest's console output or QEMU's logs"
fi
rv_qemu_stop "$run" || rv_fail "run C: QEMU exited with status $? on quit"
rv_log "run C ok: config drive read and applied, password kept secret, GUEST_PANICKED seen"

[[ $(rv_sha256 "$kernel") == "$kernel_sha" ]] || rv_fail "the guest kernel file $kernel changed"
[[ $(rv_sha256 "$RV_GUEST_DIR/initramfs.cpio.gz") == "$initrd_sha" ]] || rv_fail "the guest initramfs file changed"

rv_pass "test guest: disks (512 and 4Kn) with sizes, block sizes, serials and markers; reboot as RESET with two boot ids; poweroff; static and config-drive network with outside gateways; ACPI power button; pvpanic; kernel/initramfs unchanged"
