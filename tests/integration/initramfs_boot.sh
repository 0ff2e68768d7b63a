#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Boots the rescuevm initramfs under QEMU (TCG) as a stand-in rescue host with two disks and checks the serial console: agent start, both disks, checks, the KVM refusal and a usable console.
#
# The stand-in host has no /dev/kvm (TCG emulates a CPU without VMX/SVM), so
# the expected, correct verdict is a refusal (exit status 3) whose KVM reason
# carries its fix. rescuevm.host.min_memory=1GiB on the kernel command line
# lets the memory check pass on a 3 GiB host: the override path.
# The two disks carry an md member and an LVM PV signature: the udev rule from
# units/ must mark them held back (RESCUEVM_HELD) so the host assembles nothing.
# RESCUEVM_BOOT_COMMAND=plan boots `rescuevm plan` instead of `rescuevm run`.
set -euo pipefail

: "${SOURCE_ROOT:?set by meson}"
: "${RESCUEVM:?set by meson}"
lib=$SOURCE_ROOT/tests/integration/boot
. "$lib/initramfs.sh"

fail() {
  echo "FAIL: initramfs_boot: $*" >&2
  if [[ -f ${tmp:-}/serial.log ]]; then
    echo "--- serial console (last 80 lines) ---" >&2
    tr -d '\r' <"$tmp/serial.log" | tail -n 80 >&2
  fi
  exit 1
}

tmp=$(mktemp -d)
qemu_pid=
cleanup() {
  if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

kver=$(rescuevm_test_kernel_version) || fail "no kernel in /boot with modules in /lib/modules: install linux-image-amd64"
if ! rescuevm_build_initramfs "$tmp/conf" "$tmp/initrd.img" "$kver" >"$tmp/mkinitramfs.log" 2>&1; then
  cat "$tmp/mkinitramfs.log" >&2
  fail "mkinitramfs failed"
fi
echo "ok: initramfs built for $kver"

truncate -s 64M "$tmp/disk0.img" "$tmp/disk1.img"
python3 "$lib/raid_signatures.py" md "$tmp/disk0.img"
python3 "$lib/raid_signatures.py" lvm "$tmp/disk1.img"

cmdline="console=ttyS0,115200 rescuevm.enable=1 rescuevm.stage=initramfs"
cmdline+=" rescuevm.host.min_memory=1GiB rescuevm.vm.memory=512MiB rescuevm.disks.match=vd*"
cmdline+=" rescuevm.network.mode=none ip=dhcp"
# The NIC is QEMU's user network with restrict=on: its DHCP server answers
# ip=dhcp (an address, but no gateway or DNS), and nothing leaves QEMU.
# -cpu without svm/vmx: TCG can emulate both, and the stand-in host would get
# a working (nested) /dev/kvm. -no-reboot: if anything in the stand-in host asked for a reboot, QEMU would
# exit, and the check below that it is still running would fail.
qemu-system-x86_64 -accel tcg -cpu qemu64,-svm,-vmx -m 3072 -smp 2 -nodefaults -no-user-config -display none -no-reboot \
  -kernel "/boot/vmlinuz-$kver" -initrd "$tmp/initrd.img" -append "$cmdline" \
  -blockdev "driver=file,filename=$tmp/disk0.img,node-name=d0" \
  -device virtio-blk-pci,drive=d0,serial=RVM-TEST-DISK-0 \
  -blockdev "driver=file,filename=$tmp/disk1.img,node-name=d1" \
  -device virtio-blk-pci,drive=d1,serial=RVM-TEST-DISK-1 \
  -chardev "socket,id=ser0,path=$tmp/serial.sock,server=on,wait=off,logfile=$tmp/serial.log" \
  -serial chardev:ser0 \
  -nic user,model=virtio-net-pci,restrict=on \
  -qmp "unix:$tmp/qmp.sock,server=on,wait=off" \
  </dev/null >"$tmp/qemu.log" 2>&1 &
qemu_pid=$!

console() { { tr -d '\r' <"$tmp/serial.log"; } 2>/dev/null || true; }
# wait_for REGEX SECONDS: until the serial console shows a line matching REGEX.
wait_for() {
  local deadline=$((SECONDS + $2))
  until console | grep -qE "$1"; do
    kill -0 "$qemu_pid" 2>/dev/null || fail "the stand-in host stopped (QEMU exited: $(cat "$tmp/qemu.log"))"
    ((SECONDS < deadline)) || fail "no line matching /$1/ on the serial console within $2 s"
    sleep 1
  done
}

start=$SECONDS
wait_for 'boot: Windows rescue mode' 300
echo "ok: the boot script started the agent after $((SECONDS - start)) s"
wait_for 'boot: rescuevm exited with status' 300
echo "ok: the agent gave its verdict after $((SECONDS - start)) s"

# What the agent printed: between the boot script's two lines, without the
# kernel's own messages ("[    1.234] virtio_blk virtio1: [vda] ...").
agent=$(console | sed -n '/boot: Windows rescue mode/,/boot: rescuevm exited with status/p' |
  grep -vE '^\[ *[0-9]+\.[0-9]+\]')
if grep -q $'\e\\[' <<<"$agent"; then
  fail "colour codes (ANSI escapes) in the agent's lines on the serial console"
fi
grep -vF 'boot:' <<<"$agent" | grep -qE '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (INFO|WARNING|ERROR) +[a-z]+: |^Disks:' ||
  fail "no line from the agent itself (log line or disk table) on the console"
if [[ ${RESCUEVM_BOOT_COMMAND:-run} == run ]]; then
  grep -qE 'rescuevm [0-9][^ ]* starting' <<<"$agent" || fail "no start line from the agent (rescuevm VERSION starting)"
fi
grep -vF 'boot:' <<<"$agent" | grep -qw vda || fail "the agent did not list disk vda"
grep -vF 'boot:' <<<"$agent" | grep -qw vdb || fail "the agent did not list disk vdb"
echo "ok: the agent listed both disks"
grep -qiE 'memory.*1(\.0)? ?GiB|1(\.0)? ?GiB.*(memory|RAM)' <<<"$agent" ||
  fail "the memory check does not show the 1 GiB from rescuevm.host.min_memory"
grep -qE '/dev/kvm.*(kvm_intel|kvm_amd)' <<<"$agent" ||
  fail "no KVM refusal naming /dev/kvm with its fix (load kvm_intel or kvm_amd)"
grep -qiE 'refus' <<<"$agent" || fail "no refusal verdict from the agent"
grep -qF 'boot: rescuevm exited with status 3: a check refused to start the VM' <<<"$(console)" ||
  fail "the agent's exit status was not 3 (refused): $(console | grep -F 'boot: rescuevm exited' | tail -n 1)"
echo "ok: checks ran; verdict: KVM refusal with its fix, exit status 3"
echo "--- the agent on the serial console ---"
echo "$agent"
echo "---"

if console | grep -qE 'Begin: Mounting root file system|Gave up waiting for root|Kernel panic'; then
  fail "the boot went on past the agent (root mount attempt or panic)"
fi

# The console stays usable: a shell follows the agent. Through it, look at
# what the udev rule did to the two signature disks and what ip=dhcp did.
# Lines are short: the shell's line editor redraws long ones on a serial line.
wait_for '\(rescuevm\) # ' 60
# type_line LINE REGEX WHAT: type LINE on the console; its output must show a line matching REGEX.
type_line() {
  python3 "$lib/vm_console.py" "$tmp/serial.sock" "$1"
  local deadline=$((SECONDS + 60))
  until console | grep -qxE "$2"; do
    ((SECONDS < deadline)) || fail "$3"
    sleep 1
  done
}
type_line 'echo console-ok-$((6*7))' 'console-ok-42' "the console does not answer after the agent ended"
echo "ok: the console is usable after the agent ended (a shell answers)"
type_line "udevadm info -n vda | grep -o 'HELD=.*'" 'HELD=md' \
  "the udev rule did not hold back the md member vda (RESCUEVM_HELD)"
type_line "udevadm info -n vdb | grep -o 'HELD=.*'" 'HELD=lvm' \
  "the udev rule did not hold back the LVM PV vdb (RESCUEVM_HELD)"
echo "ok: udev marked the md member and the LVM PV as held back from auto-assembly"
console | grep -qF 'boot: configuring the network (ip=dhcp)' || fail "the boot script did not configure the network for ip=dhcp"
type_line 'cat /run/net-*.conf | grep IPV4ADDR=' "IPV4ADDR='?10\.0\.2\.15'?" \
  "ip=dhcp: the uplink did not get its address (no /run/net-*.conf with 10.0.2.15)"
echo "ok: ip=dhcp configured the uplink before the agent started"

# Leaving the shell starts the agent again (it refuses again on this host).
python3 "$lib/vm_console.py" "$tmp/serial.sock" exit
deadline=$((SECONDS + 120))
until (($(console | grep -c 'boot: rescuevm exited with status 3') >= 2)); do
  ((SECONDS < deadline)) || fail "leaving the shell did not start the agent again"
  sleep 1
done
console | grep -qF 'boot: shell ended: starting the rescuevm agent again' || fail "no line saying the agent starts again"
echo "ok: leaving the shell started the agent again"

# Ctrl-Alt-Del and Alt+SysRq+B on the console's keyboard (PS/2 here; the BMC's USB keyboard on
# a server) must not reboot the host in this stage: the kernel's default kernel.ctrl-alt-del=1
# reboots at once and Debian's kernel.sysrq=438 allows B. The boot script sets 0 and restricts
# sysrq. -no-reboot: a reboot would end QEMU.
deadline=$((SECONDS + 60))
until (($(console | grep -c '(rescuevm) # ') >= 2)); do
  ((SECONDS < deadline)) || fail "no shell after the second refusal"
  sleep 1
done
type_line 'echo cad-$(cat /proc/sys/kernel/ctrl-alt-del)-sysrq-$(cat /proc/sys/kernel/sysrq)' 'cad-0-sysrq-(0|2|16|18)' \
  "kernel.ctrl-alt-del is not 0 or kernel.sysrq still allows reboot/kill: $(console | grep -E '^cad-' | tail -n 1)"
qmp_send() { python3 "$SOURCE_ROOT/tests/integration/qmp.py" "$tmp/qmp.sock" "$1" >/dev/null || fail "QMP $1 failed"; }
qmp_send '{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"ctrl"},{"type":"qcode","data":"alt"},{"type":"qcode","data":"delete"}]}}'
qmp_send '{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"alt"},{"type":"qcode","data":"sysrq"},{"type":"qcode","data":"b"}]}}'
type_line 'echo still-up-$((40+2))' 'still-up-42' "the console does not answer after Ctrl-Alt-Del and Alt+SysRq+B"
kill -0 "$qemu_pid" 2>/dev/null || fail "Ctrl-Alt-Del or Alt+SysRq+B rebooted the stand-in host"
# The keys did reach the host's kernel (else this proves nothing): with sysrq on, it says it
# refused B. Debian's kernel starts with 438, which the script restricts to 18.
if [[ $(console | grep -oE '^cad-0-sysrq-[0-9]+' | tail -n 1) != cad-0-sysrq-0 ]]; then
  deadline=$((SECONDS + 30))
  until console | grep -q 'This sysrq operation is disabled'; do
    ((SECONDS < deadline)) || fail "no 'This sysrq operation is disabled' from the kernel: did Alt+SysRq+B reach it?"
    sleep 1
  done
fi
console | grep -q 'sysrq: Resetting' && fail "the kernel ran SysRq+B"
echo "ok: Ctrl-Alt-Del and Alt+SysRq+B on the console keyboard did not reboot the host (kernel.ctrl-alt-del 0, sysrq restricted)"

kill -0 "$qemu_pid" 2>/dev/null || fail "the stand-in host is gone (rebooted or powered off)"
python3 "$SOURCE_ROOT/tests/integration/qmp.py" "$tmp/qmp.sock" quit >/dev/null || fail "QMP quit failed"
wait "$qemu_pid" || true
qemu_pid=
echo "PASS: initramfs_boot ($((SECONDS - start)) s from power-on to the shell)"
