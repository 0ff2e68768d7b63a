#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Proves qemu-system-x86_64 accepts every golden argv (tests/unit/golden/*.argv) with real files, loop disks and a macvtap fd (NBD goldens: nbd_image.sh).
#
# Usage (root): tests/integration/golden_argv_qemu.sh   (meson: meson test -C BUILD golden_argv_qemu)
#
# For each golden file (one argv word per line, as render_qemu_argv() produced it) the
# placeholders are replaced by real things made in a temp dir, and nothing else is changed:
#   -add-fd fd=N,...,opaque=/dev/sdX  -> fd N open on a loop device with the logical sector size
#                                        the golden gives that disk (losetup --sector-size)
#   /srv/rescuevm/windows-rescue.qcow2 -> a small qcow2 made with qemu-img
#   /run/rescuevm/...                  -> a per-golden run dir whose session files (overlay.qcow2
#                                        over the image, the UEFI vars copy, config-2.iso) are made
#                                        by the agent's own code (session_driver: plan_vm() on the
#                                        same golden case, then prepare_session_files()), which
#                                        also prints its argv for these paths: it must be the
#                                        golden's, word for word
#   -kernel / -initrd values           -> the test guest's files (tests/guest/build-guest.sh)
#   tap ... fd=3                       -> a real passthru macvtap fd: QEMU runs inside a network
#                                        namespace holding a veth and a macvtap on it, started
#                                        with 3<> a node of its own for the macvtap's major:minor
# Changes this machine forces, each made only when needed and logged:
#   - always (RV_GOLDEN_KVM=1 keeps KVM where it works; a /dev/kvm that opens can still fail
#     at the first vCPU, as on these machines): "-accel kvm" becomes "-accel tcg", the "-cpu host,hv-..." word becomes
#     "-cpu max" and "-rtc base=localtime" is dropped. The Hyper-V flags fail under TCG; which
#     flags the KVM argv carries is checked by the unit test (tests/unit/test_qemu_argv.cpp),
#     not here.
#   - no /dev/vhost-net (host kernel without CONFIG_VHOST_NET): "vhost=on" becomes "vhost=off".
#   - the goldens' -m (from a 64 GiB fixture host) is more than this machine's RAM, which the
#     kernel's overcommit heuristic refuses: -m stays as it is, and the RAM is given as a
#     memory-backend-ram of the same size with reserve=off (appended -object and -machine
#     memory-backend=...; QEMU merges -machine options). Untouched pages cost nothing.
# Each QEMU starts paused (-S, from the golden). Over QMP (qmp.py) the test asserts:
# query-status is "prelaunch" and not running; query-block lists every disk the golden
# attaches, by device id: disk0 on the "overlay" node whose file is the overlay and whose
# backing file is the image, disk1..N on their diskN-file nodes opening /dev/fdset/N,
# read-write, and query-fdsets shows fd set N holding the right loop device; the config
# drive read-only on the ISO; then "cont" gives "running", and "quit" makes QEMU exit 0 with
# nothing on stderr. Everything is removed at exit, also on failure.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

rv_require qemu-system-x86_64 qemu-img losetup python3 xorriso ip sha256sum
: "${SESSION_DRIVER:?SESSION_DRIVER must point at the session_driver test program (meson sets it)}"

goldens=("$RV_SOURCE_ROOT"/tests/unit/golden/*.argv)
[[ -e ${goldens[0]} ]] || rv_fail "no golden argv files in $RV_SOURCE_ROOT/tests/unit/golden"

tmp=$(rv_tmpdir)
RV_GUEST_DIR=$(rv_guest_build)
guest_kernel=$(rv_guest_kernel)
guest_initrd=$RV_GUEST_DIR/initramfs.cpio.gz

kvm_usable=0
if [[ ${RV_GOLDEN_KVM:-0} == 1 && -r /dev/kvm && -w /dev/kvm ]]; then kvm_usable=1; fi
vhost_usable=0
if [[ -c /dev/vhost-net ]]; then vhost_usable=1; fi
host_mem_mib=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 1024))

# The shared input: the rescue image (every golden opens it read-only).
image=$tmp/windows-rescue.qcow2
qemu-img create -q -f qcow2 "$image" 64M || rv_fail "qemu-img could not create $image"
image_sha=$(rv_sha256 "$image")

# macvtap_tap NS MAC: a veth (one end carrying MAC, as the server's uplink would) and a
# passthru macvtap on it inside NS; echoes the tap's character device path.
macvtap_tap() {
  local ns=$1 mac=$2 ifindex dev mm
  ip -n "$ns" link add rvup0 address "$mac" type veth peer name rvgw0 \
    || rv_fail "could not create a veth in $ns"
  ip -n "$ns" link add link rvup0 name rvmvt0 type macvtap mode passthru \
    || rv_fail "could not create a passthru macvtap on rvup0 in $ns"
  ip -n "$ns" link set rvgw0 up
  ip -n "$ns" link set rvup0 up
  ip -n "$ns" link set rvmvt0 up
  ifindex=$(ip netns exec "$ns" cat /sys/class/net/rvmvt0/ifindex)
  mm=$(ip netns exec "$ns" cat "/sys/class/net/rvmvt0/macvtap/tap$ifindex/dev")
  # devtmpfs names the node after the ifindex, which each namespace counts on its own:
  # /dev/tapN may be another namespace's macvtap (or a stale node). Our own node from the
  # macvtap's major:minor is always this one.
  dev=$tmp/$ns-tap$ifindex
  mknod "$dev" c "${mm%:*}" "${mm#*:}" || rv_fail "could not make $dev ($mm)"
  echo "$dev"
}

# check_qmp QMP_OUTPUT EXPECT_FILE: asserts the replies of "query-status query-block
# query-fdsets cont query-status quit" (ids qmp.py-1..6). EXPECT_FILE lines:
# "ID NODE FILE RO [BACKING|-] [FDSET_DEVICE]".
check_qmp() {
  python3 - "$1" "$2" <<'EOF'
import json, re, sys
replies = {}
for line in open(sys.argv[1]):
    msg = json.loads(line)
    if "id" in msg:
        replies[msg["id"]] = msg
def reply(n, what):
    msg = replies.get(f"qmp.py-{n}")
    if msg is None or "error" in msg:
        sys.exit(f"{what}: no reply or an error: {msg}")
    return msg["return"]
st = reply(1, "query-status before cont")
if st["status"] not in ("prelaunch", "paused") or st["running"]:
    sys.exit(f"QEMU was not started paused: query-status says {st}")
blocks = reply(2, "query-block")
fdsets = {f["fdset-id"]: [fd.get("opaque") for fd in f.get("fds", [])] for f in reply(3, "query-fdsets")}
def qdev_id(entry):
    # virtio-blk shows as /machine/peripheral/ID/virtio-backend, other devices as ID.
    q = entry.get("qdev", "")
    m = re.match(r"^/machine/peripheral/([^/]+)(/.*)?$", q)
    return m.group(1) if m else q
seen = {qdev_id(b): b for b in blocks}
want_ids = set()
for line in open(sys.argv[2]):
    f = line.split()
    dev_id, node, path, ro = f[:4]
    want_ids.add(dev_id)
    b = seen.get(dev_id)
    if b is None:
        sys.exit(f"query-block has no drive for device {dev_id}; it lists {sorted(seen)}")
    ins = b.get("inserted")
    if not ins:
        sys.exit(f"device {dev_id} has no medium inserted: {b}")
    if ins.get("node-name") != node:
        sys.exit(f"device {dev_id} is on node {ins.get('node-name')}, want {node}")
    if ins.get("file") != path:
        sys.exit(f"device {dev_id} opens {ins.get('file')}, want {path}")
    if str(ins.get("ro")).lower() != ro:
        sys.exit(f"device {dev_id} has ro={ins.get('ro')}, want {ro}")
    if len(f) > 4 and f[4] != "-":
        backing = ins.get("image", {}).get("backing-image", {}).get("filename")
        if backing != f[4]:
            sys.exit(f"device {dev_id}: backing file {backing}, want {f[4]}")
    if len(f) > 5:
        fdset = int(path.rsplit("/", 1)[1])
        if fdsets.get(fdset) != [f[5]]:
            sys.exit(f"device {dev_id}: fd set {fdset} holds {fdsets.get(fdset)}, want [{f[5]}]")
disks = {i for i in seen if re.fullmatch(r"disk[0-9]+", i)}
if disks != {i for i in want_ids if re.fullmatch(r"disk[0-9]+", i)}:
    sys.exit(f"query-block lists disks {sorted(disks)}, the golden attaches {sorted(want_ids)}")
reply(4, "cont")
st = reply(5, "query-status after cont")
if st["status"] != "running":
    sys.exit(f"after cont QEMU is {st['status']}, not running")
reply(6, "quit")
print(f"{len(want_ids)} drives as expected")
EOF
}

checked=()
for golden in "${goldens[@]}"; do
  name=$(basename "$golden" .argv)
  run=$tmp/$name
  mkdir -p "$run"
  mapfile -t words <"$golden"
  if printf '%s\n' "${words[@]}" | grep -q '^driver=nbd,'; then
    # Its image is on an image server with TLS: nbd_image.sh boots that argv against a real one.
    rv_log "$name: skipped here (the image is an NBD export; nbd_image.sh boots it against qemu-nbd with TLS)"
    continue
  fi
  [[ ${words[0]} == qemu-system-x86_64 ]] || rv_fail "$name: argv[0] is '${words[0]}', want qemu-system-x86_64"
  printf '%s\n' "${words[@]}" | grep -qx -- -S || rv_fail "$name: the golden argv has no -S"

  # Pass 1: which loop devices the golden needs (its -add-fd fd sets), their sector sizes.
  declare -A node_dev=() node_lbs=() dev_loop=() set_fd=() set_dev=()
  for w in "${words[@]}"; do
    if [[ $w =~ ^fd=([0-9]+),set=([0-9]+),opaque=(/dev/[^,]+)$ ]]; then
      set_fd[${BASH_REMATCH[2]}]=${BASH_REMATCH[1]}
      set_dev[${BASH_REMATCH[2]}]=${BASH_REMATCH[3]}
    fi
    if [[ $w =~ ^driver=host_device,node-name=([^,]+),filename=/dev/fdset/([0-9]+), ]]; then
      node_dev[${BASH_REMATCH[1]}]=${set_dev[${BASH_REMATCH[2]}]:?fd set ${BASH_REMATCH[2]} has no -add-fd before it}
    fi
    if [[ $w =~ drive=([^,]+),.*logical_block_size=([0-9]+) ]]; then
      node_lbs[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
    fi
  done
  for node in "${!node_dev[@]}"; do
    lbs=${node_lbs[$node]:-512}
    dev_loop[${node_dev[$node]}]=$(rv_loop_disk 32M "$lbs")
  done

  # The session files, by the agent's own code; its argv for these paths is the golden's.
  "$SESSION_DRIVER" prepare "$name" "$run" "$image" "$guest_kernel" "$guest_initrd" >"$run/agent.argv" \
    2>"$run/driver.err" || rv_fail "$name: session_driver failed: $(cat "$run/driver.err")"
  for f in overlay.qcow2 config-2.iso; do
    [[ -f $run/$f ]] || grep -q -- "-kernel" "$golden" || rv_fail "$name: the agent's preparation made no $f"
  done
  expected_argv=$(sed -e "s|/run/rescuevm/|$run/|g" -e "s|/srv/rescuevm/windows-rescue.qcow2|$image|g" \
    -e "s|^/boot/vmlinuz-test\$|$guest_kernel|" -e "s|^/var/lib/rescuevm/initramfs.cpio.gz\$|$guest_initrd|" "$golden")
  [[ $expected_argv == "$(cat "$run/agent.argv")" ]] \
    || rv_fail "$name: the agent's argv for these paths is not the golden's: $(diff <(echo "$expected_argv") "$run/agent.argv" | head -10)"

  # Pass 2: substitute placeholders; apply only the changes this machine forces.
  args=()
  notes=()
  wrap=()
  tap_dev=
  prev=
  skip_next=0
  mem_mib=
  for w in "${words[@]}"; do
    if ((skip_next)); then skip_next=0; prev=$w; continue; fi
    case $prev in
      -kernel) w=$guest_kernel ;;
      -initrd) w=$guest_initrd ;;
      -accel) if [[ $w == kvm && $kvm_usable == 0 ]]; then w=tcg; notes+=("accel kvm->tcg"); fi ;;
      -cpu)
        if [[ $w == host,* && $kvm_usable == 0 ]]; then
          [[ $w == *hv-* ]] || rv_fail "$name: a KVM -cpu word without Hyper-V flags: $w"
          w=max; notes+=("cpu host,hv-*->max")
        fi ;;
      -m) mem_mib=${w%M} ;;
    esac
    if [[ $w == -rtc && $kvm_usable == 0 ]]; then
      skip_next=1; notes+=("-rtc dropped"); prev=$w; continue
    fi
    w=${w//\/run\/rescuevm\//$run/}
    w=${w//\/srv\/rescuevm\/windows-rescue.qcow2/$image}
    if [[ $w =~ ^fd=[0-9]+,set=[0-9]+,opaque=(/dev/[^,]+)$ ]]; then
      w=${w/opaque=${BASH_REMATCH[1]}/opaque=${dev_loop[${BASH_REMATCH[1]}]}}
    fi
    if [[ $w =~ ^driver=file,node-name=firmware-code,filename=([^,]+), ]]; then
      [[ -f $run/uefi-vars.fd ]] || rv_fail "$name: the agent's preparation made no uefi-vars.fd"
    fi
    if [[ $w =~ ^tap,.*fd=3 ]]; then
      if [[ $vhost_usable == 0 && $w == *vhost=on* ]]; then
        w=${w/vhost=on/vhost=off}; notes+=("vhost=on->off")
      fi
      mac=
      for m in "${words[@]}"; do
        [[ $m =~ ,mac=([0-9a-f:]{17}) ]] && mac=${BASH_REMATCH[1]}
      done
      [[ -n $mac ]] || rv_fail "$name: a tap netdev but no NIC with a mac="
      ns=$(rv_netns rvgold)
      tap_dev=$(macvtap_tap "$ns" "$mac")
      wrap=(ip netns exec "$ns")
    fi
    args+=("$w")
    prev=$w
  done
  if [[ -n $mem_mib ]] && ((mem_mib >= host_mem_mib)); then
    args+=(-object "memory-backend-ram,id=rvtest-ram,size=${mem_mib}M,reserve=off" -machine memory-backend=rvtest-ram)
    notes+=("RAM as memory-backend-ram reserve=off")
  fi
  # Every placeholder must be gone (a missed one would make QEMU touch the real path).
  leftover=$(printf '%s\n' "${args[@]}" | grep -E '/run/rescuevm|/srv/rescuevm|/dev/sd|/dev/nvme|/boot/vmlinuz-test|/var/lib/rescuevm' || true)
  [[ -z $leftover ]] || rv_fail "$name: placeholders left in the argv: $leftover"

  # What query-block must show: "ID NODE FILE RO [BACKING]".
  expect=$run/expect
  : >"$expect"
  for w in "${args[@]}"; do
    if [[ $w =~ (^|,)id=(disk[0-9]+),(.*,)?drive=([^,]+) ]]; then
      id=${BASH_REMATCH[2]} node=${BASH_REMATCH[4]}
      if [[ $node == overlay ]]; then
        echo "$id overlay $run/overlay.qcow2 false $image" >>"$expect"
      else
        dev=${node_dev[$node]:-}
        [[ -n $dev ]] || rv_fail "$name: device $id uses node $node, which is not a host_device"
        set=${id#disk}
        echo "$id $node /dev/fdset/$set false - ${dev_loop[$dev]}" >>"$expect"
      fi
    elif [[ $w =~ ^ide-cd,id=config-drive,.*drive=config-drive ]]; then
      echo "config-drive config-drive $run/config-2.iso true" >>"$expect"
    fi
  done
  (($(grep -c '^disk' "$expect") >= 1)) || rv_fail "$name: found no disk devices in the golden"

  rv_log "$name: $(grep -c '^disk' "$expect") disk(s)${tap_dev:+, macvtap $tap_dev}${notes[*]:+; changed: ${notes[*]}}"
  # The disks on the fds the golden names (-add-fd), as the agent passes its O_EXCL fds.
  for set in "${!set_fd[@]}"; do
    eval "exec ${set_fd[$set]}<>\"\${dev_loop[\${set_dev[$set]}]}\""
  done
  if [[ -n $tap_dev ]]; then
    "${wrap[@]}" "${args[@]}" >"$run/qemu.out" 2>"$run/qemu.err" 3<>"$tap_dev" &
  else
    "${args[@]}" >"$run/qemu.out" 2>"$run/qemu.err" &
  fi
  pid=$!
  for set in "${!set_fd[@]}"; do eval "exec ${set_fd[$set]}>&-"; done
  rv_cleanup_add "kill -9 $pid; wait $pid"
  rc=0
  rv_qmp --timeout 90 "$run/qmp.sock" query-status query-block query-fdsets cont query-status quit >"$run/qmp.out" 2>"$run/qmp.err" || rc=$?
  if ((rc != 0)); then
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rv_fail "$name: QMP session failed (qmp.py exit $rc): $(cat "$run/qmp.err" "$run/qmp.out" "$run/qemu.err")"
  fi
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; rv_fail "$name: QEMU did not exit 30 s after quit"; }
  qrc=0
  wait "$pid" || qrc=$?
  ((qrc == 0)) || rv_fail "$name: QEMU exited with status $qrc: $(cat "$run/qemu.err")"
  [[ ! -s $run/qemu.err ]] || rv_fail "$name: QEMU printed on stderr: $(cat "$run/qemu.err")"
  result=$(check_qmp "$run/qmp.out" "$expect" 2>&1) || rv_fail "$name: $result"
  rv_log "$name: accepted; paused at start, $result, ran, quit with status 0"
  checked+=("$name")
  unset node_dev node_lbs dev_loop
done

[[ $(rv_sha256 "$image") == "$image_sha" ]] || rv_fail "the rescue image changed although every golden opens it read-only"
rv_pass "qemu-system-x86_64 accepted the ${#checked[@]} local-image golden argvs (${checked[*]}): started paused, drives as the golden attaches them, ran, quit with 0 and no error output; the image is unchanged"
