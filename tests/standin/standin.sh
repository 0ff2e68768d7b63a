# SPDX-License-Identifier: GPL-2.0-or-later
# Bash helpers that boot a stand-in dedicated server under QEMU (TCG): real systemd and udev on the machine's own root (9p, read-only, tmpfs overlay), disks, a NIC into a namespace, rescuevm installed.
#
# Source it after tests/integration/lib.sh (cleanup, rv_tmpdir, rv_netns, rv_qmp):
#
#   source "$SOURCE_ROOT/tests/integration/lib.sh"
#   source "$SOURCE_ROOT/tests/standin/standin.sh"
#   standin_new                                   # sets STANDIN_RUN; builds the boot files
#   standin_install_rescuevm "$destdir"           # a `meson install --destdir` tree, or a .deb
#   standin_disk data0 64M virtio RVM-SERIAL-0
#   standin_disk data1 64M ahci RVM-SERIAL-1 "RVM Test SATA"
#   standin_net                                   # NIC into a new namespace with a gateway
#   standin_seed_file /etc/rescuevm/rescuevm.toml 0644 <<<"$toml"
#   standin_boot "rescuevm.enable=1 rescuevm.vm.accel=tcg"
#   standin_sh 'systemctl is-active rescuevm'     # stdout, stderr and exit status of the command
#
# Every function that starts something must run in the test's main shell (not inside $(...)):
# QEMU is registered with rv_cleanup_kill and killed at exit, whatever happens.
#
# Functions:
#   standin_new                         new stand-in: STANDIN_RUN (a temp dir), a default seed,
#                                       the kernel and initramfs built (tests/standin/build-standin.sh)
#   standin_meson_install BUILD_DIR DESTDIR
#                                       meson install --destdir of a build, laid out for /usr
#   standin_install_rescuevm DEB_OR_DESTDIR
#                                       DESTDIR: its files are copied into the seed (ELF files
#                                       without debug info), rescuevm.service enabled, as the
#                                       package will; DEB: dpkg -i inside the stand-in at boot
#   standin_seed_file PATH [MODE]       stdin becomes file PATH in the stand-in (default mode 0644)
#   standin_enable UNIT...              systemctl enable UNIT in the stand-in before systemd starts
#   standin_disk NAME SIZE BUS SERIAL [MODEL] [SECTOR]
#                                       a disk file RUN/disks/NAME (NAME ending in .qcow2: qcow2,
#                                       else raw, sparse) on BUS virtio | ahci | nvme with SERIAL
#                                       (and MODEL for ahci; SECTOR 4096 makes a 4Kn disk)
#   standin_net                         network namespace STANDIN_NS with tap "st0" holding the
#                                       gateway STANDIN_GW (203.0.113.1/24); the stand-in's NIC
#                                       (MAC STANDIN_MAC) gets STANDIN_IP (203.0.113.10/24) and the
#                                       default route from systemd-networkd
#   standin_boot [KERNEL_PARAMS]        boots it; returns when the guest agent in the stand-in
#                                       answers (fails with the console's last lines if it powers
#                                       off or does not answer within STANDIN_BOOT_TIMEOUT, 600 s)
#   standin_run PROGRAM [ARG...]        run PROGRAM in the stand-in: its stdout, stderr, exit status
#   standin_sh SCRIPT                   the same for bash -c SCRIPT
#   standin_qmp ARGS...                 tests/integration/qmp.py on the stand-in's QMP socket
#   standin_quit                        QMP quit, wait for QEMU (also done at exit by the cleanup)
#   standin_console_tail [N]            the console's last N lines (default 60), CR removed
#
# Files in STANDIN_RUN (their paths are the interface for tests):
#   serial.log    the stand-in's serial console (ttyS0, the kernel's console=): what an operator
#                 sees over IPMI SOL. console.sock is the same port, for typing into it.
#   qmp.sock      QMP for the test (screendump, send-key, system_powerdown, query-status)
#   events.jsonl  every QMP event of the stand-in, one JSON line each (follower on events.sock):
#                 a SHUTDOWN or RESET there means the stand-in itself went down or rebooted
#   qga.sock      the QEMU guest agent's port (tests/standin/qga.py); qga.lock serialises users
#   qemu.log, qemu.pid, initrd.img (the initramfs plus this boot's seed), seed/, disks/
# The stand-in has a VGA (bochs-drm), a USB keyboard and tablet on qemu-xhci, and a getty on
# tty1 and on the serial console, for tests that drive its screen and keyboard through QMP.
#
# Environment (all optional): STANDIN_MEMORY (MiB, default 3072: rescuevm leaves the host 2 GiB), STANDIN_CPUS (2),
# STANDIN_CPU (default max: TCG emulates AMD SVM with nested paging, so the stand-in has a
# working /dev/kvm (kvm_amd) like a real server, and rescuevm runs its guest with KVM inside it;
# that guest boots about ten times faster than under nested TCG. max,-svm,-vmx gives a
# stand-in without KVM: rescuevm then refuses unless rescuevm.vm.accel=tcg), STANDIN_BOOT_TIMEOUT (600), STANDIN_EXEC_TIMEOUT (120 s per
# command), STANDIN_APPEND_BASE (console=ttyS0,115200 quiet), STANDIN_BUILD_DIR (where the boot
# files are built; default BUILD_ROOT/standin, else a temp dir).

STANDIN_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STANDIN_QGA="$STANDIN_LIB_DIR/qga.py"
STANDIN_GW=203.0.113.1
STANDIN_IP=203.0.113.10
STANDIN_MAC=52:54:00:cb:00:0a

# standin_new: sets STANDIN_RUN, STANDIN_SEED, STANDIN_BOOT_DIR and the argument arrays.
standin_new() {
  rv_require qemu-system-x86_64 qemu-img python3 cpio busybox ip flock
  [[ -x /lib/systemd/systemd ]] || rv_fail "systemd is not installed on this machine (the stand-in boots it from here): run scripts/setup"
  [[ -x /lib/systemd/systemd-udevd ]] || rv_fail "udev is not installed on this machine (the stand-in boots it from here): run scripts/setup"
  [[ -x /usr/sbin/qemu-ga ]] || rv_fail "qemu-guest-agent is not installed on this machine (the stand-in runs it from here): run scripts/setup"
  STANDIN_RUN=$(rv_tmpdir)
  STANDIN_SEED=$STANDIN_RUN/seed/seed
  if [[ -n ${STANDIN_BUILD_DIR:-} ]]; then STANDIN_BOOT_DIR=$STANDIN_BUILD_DIR
  elif [[ -n ${BUILD_ROOT:-} ]]; then STANDIN_BOOT_DIR=$BUILD_ROOT/standin
  else STANDIN_BOOT_DIR=$STANDIN_RUN/boot; fi
  "$STANDIN_LIB_DIR/build-standin.sh" "$STANDIN_BOOT_DIR" >&2 || rv_fail "building the stand-in's boot files failed"
  STANDIN_DISK_ARGS=()
  STANDIN_NIC_ARGS=()
  STANDIN_WRAP=()
  STANDIN_AHCI_PORT=0
  STANDIN_SUMMARY=()
  mkdir -p "$STANDIN_RUN/disks" "$STANDIN_SEED/standin" "$STANDIN_SEED/etc/systemd/system" \
    "$STANDIN_SEED/etc/systemd/journald.conf.d"
  # A fresh Debian with systemd: nothing mounted from fstab (the root is set up by the initramfs),
  # its own identity, a volatile journal (it lives in RAM anyway), multi-user.target.
  printf '# stand-in server: the root is an overlay set up by the initramfs; nothing else to mount\n' \
    >"$STANDIN_SEED/etc/fstab"
  echo standin >"$STANDIN_SEED/etc/hostname"
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$STANDIN_SEED/etc/machine-id"
  echo >>"$STANDIN_SEED/etc/machine-id"
  printf '[Journal]\nStorage=volatile\n' >"$STANDIN_SEED/etc/systemd/journald.conf.d/standin.conf"
  # Debian's tmp.conf empties /tmp at boot: here that is the machine's /tmp seen through the
  # overlay, so it would whiteout every file of it over 9p (30 s and more) and hide the files a
  # test hands in. The stand-in keeps the machine's /tmp visible; its own writes go to RAM.
  mkdir -p "$STANDIN_SEED/etc/tmpfiles.d"
  printf '# stand-in: /tmp is the machine'"'"'s, read-only under the overlay: never emptied at boot\nd /tmp 1777 root root -\n' \
    >"$STANDIN_SEED/etc/tmpfiles.d/tmp.conf"
  ln -s /lib/systemd/system/multi-user.target "$STANDIN_SEED/etc/systemd/system/default.target"
  printf '# units enabled before systemd starts (one per line)\ngetty@tty1.service\n' \
    >"$STANDIN_SEED/standin/enable"
  printf '# units masked before systemd starts (one per line)\n' >"$STANDIN_SEED/standin/mask"
  rv_log "stand-in in $STANDIN_RUN (kernel $(cat "$STANDIN_BOOT_DIR/kernel-version"))"
}

# standin_seed_file PATH [MODE]: stdin becomes PATH inside the stand-in, owned by root.
standin_seed_file() {
  local path=$1 mode=${2:-0644}
  [[ $path == /* ]] || rv_fail "standin_seed_file: '$path' is not an absolute path"
  mkdir -p "$STANDIN_SEED$(dirname "$path")"
  cat >"$STANDIN_SEED$path"
  chmod "$mode" "$STANDIN_SEED$path"
}

# standin_enable UNIT...: systemctl enable in the stand-in's root before systemd starts.
standin_enable() { printf '%s\n' "$@" >>"$STANDIN_SEED/standin/enable"; }

# standin_install_rescuevm DEB_OR_DESTDIR: rescuevm into the stand-in.
#   A directory: the tree of `meson install --destdir DIR` of a --prefix=/usr build. Its files
#   are copied into the seed (ELF files with their debug info stripped: 61 MB -> 2 MB, a seed
#   is unpacked into RAM at every boot) and rescuevm.service is enabled, which is what the
#   package's postinst does.
#   A .deb file: copied into the seed; the stand-in's initramfs runs dpkg -i on it in the new
#   root before systemd starts (its maintainer scripts enable the unit).
standin_install_rescuevm() {
  local src=$1 f
  if [[ -d $src ]]; then
    [[ -x $src/usr/sbin/rescuevm ]] || rv_fail "$src has no usr/sbin/rescuevm: give the tree of 'meson install --destdir DIR' of a build configured with --prefix=/usr"
    [[ -f $src/usr/lib/systemd/system/rescuevm.service ]] || rv_fail "$src has no usr/lib/systemd/system/rescuevm.service: configure the build with --prefix=/usr"
    cp -a "$src/." "$STANDIN_SEED/" || rv_fail "copying $src into the seed failed"
    while IFS= read -r -d '' f; do
      [[ $(head -c 4 "$f") == $'\x7fELF' ]] || continue
      if command -v strip >/dev/null; then strip --strip-debug "$f" || rv_fail "strip --strip-debug $f failed"; fi
    done < <(find "$STANDIN_SEED/usr" -type f -perm -u+x -print0)
    standin_enable rescuevm.service
    STANDIN_SUMMARY+=("rescuevm from $src")
  elif [[ -f $src && $src == *.deb ]]; then
    mkdir -p "$STANDIN_SEED/standin/debs"
    cp "$src" "$STANDIN_SEED/standin/debs/" || rv_fail "copying $src into the seed failed"
    STANDIN_SUMMARY+=("$(basename "$src") (dpkg -i)")
  else
    rv_fail "standin_install_rescuevm: '$src' is neither a directory (meson install --destdir) nor a .deb file"
  fi
}

# standin_meson_install BUILD_DIR DESTDIR: `meson install --destdir DESTDIR` of the (already
# built) BUILD_DIR, laid out as with --prefix=/usr whatever BUILD_DIR's prefix is: a build
# configured with the default /usr/local has its tree moved to DESTDIR/usr (nothing compiled
# into rescuevm depends on the prefix) and its unit replaced by the one meson configures for
# --prefix=/usr (ExecStart=/usr/sbin/rescuevm; a configure-only build dir, nothing compiled).
standin_meson_install() {
  local build=$1 dest=$2 prefix
  meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$dest.log" 2>&1 \
    || rv_fail "meson install -C $build --destdir $dest failed: $(tail -n 5 "$dest.log")"
  prefix=$(meson introspect "$build" --buildoptions | python3 -c '
import json, sys
print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))') \
    || rv_fail "cannot read the prefix of the build in $build (meson introspect)"
  if [[ $prefix != /usr ]]; then
    mkdir -p "$dest/usr"
    if ! cp -a "$dest$prefix/." "$dest/usr/" || ! rm -rf "${dest:?}$prefix"; then
      rv_fail "moving $dest$prefix to $dest/usr failed"
    fi
    local usr_conf=$dest.prefix-usr unit=usr/lib/systemd/system/rescuevm.service
    meson setup --prefix /usr "$usr_conf" "$RV_SOURCE_ROOT" >"$dest.prefix-usr.log" 2>&1 \
      || rv_fail "meson setup --prefix /usr $usr_conf failed: $(tail -n 5 "$dest.prefix-usr.log")"
    [[ -f $dest/$unit ]] || rv_fail "$build's install tree has no $prefix/lib/systemd/system/rescuevm.service"
    cp "$usr_conf/units/rescuevm.service" "$dest/$unit"
    rm -rf "$usr_conf"
    grep -qx 'ExecStart=/usr/sbin/rescuevm run' "$dest/$unit" \
      || rv_fail "the unit for --prefix=/usr says $(grep ^ExecStart= "$dest/$unit")"
    rv_log "build $build has prefix $prefix: its install tree moved to /usr in $dest, unit configured for /usr"
  fi
}

# standin_disk NAME SIZE BUS SERIAL [MODEL] [SECTOR]: see the header.
standin_disk() {
  local name=$1 size=$2 bus=$3 serial=$4 model=${5:-} sector=${6:-512} file fmt node sizes=
  [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || rv_fail "standin_disk: '$name' is not a plain file name"
  [[ $serial =~ ^[A-Za-z0-9_.-]+$ ]] || rv_fail "standin_disk: serial '$serial' must be letters, digits, . _ -"
  [[ $model != *,* ]] || rv_fail "standin_disk: model '$model' must not contain a comma"
  file=$STANDIN_RUN/disks/$name
  node=d${#STANDIN_DISK_ARGS[@]}
  if [[ $name == *.qcow2 ]]; then
    fmt=qcow2
    qemu-img create -q -f qcow2 "$file" "$size" || rv_fail "qemu-img create $file failed"
  else
    fmt=raw
    truncate -s "$size" "$file"
  fi
  [[ $sector == 512 ]] || sizes=",logical_block_size=$sector,physical_block_size=$sector"
  STANDIN_DISK_ARGS+=(-blockdev "driver=file,filename=$file,node-name=$node-file,cache.direct=off"
    -blockdev "driver=$fmt,file=$node-file,node-name=$node")
  case $bus in
    virtio) STANDIN_DISK_ARGS+=(-device "virtio-blk-pci,drive=$node,serial=$serial$sizes") ;;
    ahci)
      ((STANDIN_AHCI_PORT < 6)) || rv_fail "standin_disk: q35's AHCI controller has 6 ports, all used"
      STANDIN_DISK_ARGS+=(-device "ide-hd,bus=ide.$STANDIN_AHCI_PORT,drive=$node,serial=$serial${model:+,model=$model}$sizes")
      STANDIN_AHCI_PORT=$((STANDIN_AHCI_PORT + 1)) ;;
    nvme) STANDIN_DISK_ARGS+=(-device "nvme,drive=$node,serial=$serial$sizes") ;;
    *) rv_fail "standin_disk: bus '$bus' is not one of virtio, ahci, nvme" ;;
  esac
  STANDIN_SUMMARY+=("$bus disk $serial")
}

# standin_net: see the header. The tap is created inside the namespace and QEMU runs there
# (ip netns exec), so the stand-in's frames never reach the machine's own network.
standin_net() {
  STANDIN_NS=$(rv_netns standin)
  ip -n "$STANDIN_NS" tuntap add dev st0 mode tap || rv_fail "cannot create tap st0 in $STANDIN_NS"
  ip -n "$STANDIN_NS" addr add "$STANDIN_GW/24" dev st0
  ip -n "$STANDIN_NS" link set st0 up
  STANDIN_WRAP=(ip netns exec "$STANDIN_NS")
  # shellcheck disable=SC2054 # commas separate QEMU's option fields, not array elements
  STANDIN_NIC_ARGS=(-netdev tap,id=uplink,ifname=st0,script=no,downscript=no
    -device "virtio-net-pci,netdev=uplink,mac=$STANDIN_MAC")
  standin_seed_file /etc/systemd/network/20-standin-uplink.network <<EOF
# The stand-in server's uplink: a static address and its gateway, as a provider's rescue system has.
[Match]
MACAddress=$STANDIN_MAC

[Network]
Address=$STANDIN_IP/24
Gateway=$STANDIN_GW
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
  standin_enable systemd-networkd.service
  STANDIN_SUMMARY+=("uplink $STANDIN_IP via $STANDIN_GW")
}

# standin__initrd: the built initramfs, zero-padded to 4 bytes (the kernel looks for the next
# cpio header only at 4-byte boundaries), then this boot's seed as an uncompressed cpio.
standin__initrd() {
  local base=$STANDIN_BOOT_DIR/initramfs.cpio.gz size
  printf '%s\n' "${STANDIN_SUMMARY[@]:-nothing}" | paste -sd ';' - | sed 's/;/; /g' >"$STANDIN_SEED/standin/summary"
  size=$(stat -c %s "$base")
  {
    cat "$base"
    head -c $(((4 - size % 4) % 4)) /dev/zero
    (cd "$STANDIN_RUN/seed" && find seed -print | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0)
  } >"$STANDIN_RUN/initrd.img" || rv_fail "assembling the stand-in's initramfs failed"
}

# standin_boot [KERNEL_PARAMS]: see the header. Sets STANDIN_PID, STANDIN_BOOT_SECONDS.
standin_boot() {
  local run=$STANDIN_RUN kernel append deadline started=$SECONDS
  standin__initrd
  kernel=$STANDIN_BOOT_DIR/vmlinux
  [[ -f $kernel ]] || kernel=$STANDIN_BOOT_DIR/vmlinuz
  append="${STANDIN_APPEND_BASE:-console=ttyS0,115200 quiet} ${1:-}"
  rm -f "$run"/{serial.log,qmp.sock,events.sock,qga.sock,console.sock,events.jsonl}
  "${STANDIN_WRAP[@]}" qemu-system-x86_64 -name "standin-$RV_TEST_NAME" \
    -machine q35 -accel tcg -cpu "${STANDIN_CPU:-max}" \
    -m "${STANDIN_MEMORY:-3072}" -smp "${STANDIN_CPUS:-2}" \
    -nodefaults -no-user-config -display none -rtc base=utc \
    -action reboot=shutdown,shutdown=pause \
    -kernel "$kernel" -initrd "$run/initrd.img" -append "$append" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -chardev "socket,id=con0,path=$run/console.sock,server=on,wait=off,logfile=$run/serial.log" \
    -serial chardev:con0 \
    -chardev "socket,id=qga0,path=$run/qga.sock,server=on,wait=off" \
    -device virtio-serial-pci,id=vser0 \
    -device virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0 \
    -qmp "unix:$run/qmp.sock,server=on,wait=off" \
    -qmp "unix:$run/events.sock,server=on,wait=off" \
    -device VGA -device qemu-xhci,id=xhci -device usb-kbd,bus=xhci.0 -device usb-tablet,bus=xhci.0 \
    "${STANDIN_DISK_ARGS[@]}" "${STANDIN_NIC_ARGS[@]}" \
    </dev/null >"$run/qemu.log" 2>&1 &
  STANDIN_PID=$!
  echo "$STANDIN_PID" >"$run/qemu.pid"
  rv_cleanup_kill "$STANDIN_PID"
  # python3 itself, not the rv_qmp function: a function run with & is a subshell, and $! would
  # be that subshell, not the follower.
  python3 "$RV_QMP" --follow --timeout 7200 "$run/events.sock" >"$run/events.jsonl" 2>"$run/events.err" &
  rv_cleanup_kill $!
  rv_log "stand-in booting (QEMU pid $STANDIN_PID): $append"
  deadline=$((SECONDS + ${STANDIN_BOOT_TIMEOUT:-600}))
  while :; do
    if grep -aq 'standin: FATAL' "$run/serial.log" 2>/dev/null; then
      standin__boot_fail "the stand-in's initramfs failed"
    fi
    if ! kill -0 "$STANDIN_PID" 2>/dev/null; then
      standin__boot_fail "QEMU exited: $(tail -n 5 "$run/qemu.log")"
    fi
    if grep -aqE '"event":"(SHUTDOWN|RESET)"' "$run/events.jsonl" 2>/dev/null; then
      standin__boot_fail "the stand-in went down while booting: $(grep -aE '"event":"(SHUTDOWN|RESET)"' "$run/events.jsonl" | head -n 1)"
    fi
    if flock "$run/qga.lock" python3 "$STANDIN_QGA" "$run/qga.sock" wait --timeout 2 2>/dev/null; then
      break
    fi
    ((SECONDS < deadline)) || standin__boot_fail "its guest agent did not answer within ${STANDIN_BOOT_TIMEOUT:-600} s"
    sleep 1   # bounded wait for the guest agent: it starts when udev sees its virtio port
  done
  STANDIN_BOOT_SECONDS=$((SECONDS - started))
  rv_log "stand-in up after $STANDIN_BOOT_SECONDS s (guest agent answers)"
}

standin__boot_fail() {
  {
    echo "---- stand-in console (last 40 lines)"
    standin_console_tail 40
  } >&2
  rv_fail "stand-in: $*"
}

standin_console_tail() { tr -d '\r' <"$STANDIN_RUN/serial.log" 2>/dev/null | tail -n "${1:-60}"; }

# standin_run PROGRAM [ARG...]: PROGRAM's stdout and stderr here, its exit status returned
# (124: still running after STANDIN_EXEC_TIMEOUT; 125: the guest agent failed).
standin_run() {
  flock "$STANDIN_RUN/qga.lock" python3 "$STANDIN_QGA" "$STANDIN_RUN/qga.sock" exec \
    --timeout "${STANDIN_EXEC_TIMEOUT:-120}" -- "$@"
}

standin_sh() { standin_run /bin/bash -c "$1"; }

standin_qmp() { rv_qmp "$STANDIN_RUN/qmp.sock" "$@"; }

# standin_quit: ends QEMU (QMP quit; SIGKILL after 20 s) and reaps it. Call it in the main shell.
standin_quit() {
  local i
  [[ -n ${STANDIN_PID:-} ]] || return 0
  standin_qmp --timeout 10 quit >/dev/null 2>&1 || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$STANDIN_PID" 2>/dev/null || break
    sleep 0.2
  done
  kill -9 "$STANDIN_PID" 2>/dev/null || true
  wait "$STANDIN_PID" 2>/dev/null || true
  STANDIN_PID=
}
