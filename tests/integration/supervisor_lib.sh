# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers shared by the supervisor_*.sh integration tests: one loop disk, the test guest as the rescue image, a `rescuevm run` agent and its status.
#
# Source it after lib.sh:
#   source "$(dirname "$0")/lib.sh"
#   source "$(dirname "$0")/supervisor_lib.sh"
#   sup_setup "rvtest.reboots=1 rvtest.final=poweroff" [EXTRA_TOML_LINES]
#   sup_agent_start                       # sets SUP_AGENT_PID; logs to $SUP_TMP/agent.log
#   sup_wait_boots 1 || rv_fail ...       # "RVTEST boots n=1" on the guest console
#   pid=$(sup_status vm.qemu_pid)
#
# Variables set by sup_setup: SUP_TMP (temp dir), SUP_DISK (/dev/loopN, the guest counts its
# boots on it: it is the guest's vda), SUP_RT (runtime_dir), SUP_CONF (config file),
# SUP_CMDLINE (an empty --kernel-cmdline file, so the host's /proc/cmdline plays no part),
# SUP_CONSOLE (guest console log), SUP_AGENT_LOG.
# Variables read by sup_setup / sup_agent_start when set before:
#   SUP_RT                runtime_dir (default SUP_TMP/rt), e.g. on a tmpfs the test mounted
#   SUP_MORE_DISKS        more kernel names for disks.match ("loop7 loop8"), passed after SUP_DISK
#   SUP_NETWORK           the [network] section's lines (default: mode = "none");
#                         sup_netns_setup sets it for a macvtap uplink in namespaces
#   SUP_WRAP              command prefix of the agent (sup_netns_setup: ip netns exec SRV)
#   SUP_NOTIFY            set to 1: sup_agent_start gives the agent NOTIFY_SOCKET (a datagram
#                         socket a listener logs to SUP_NOTIFY_LOG) and WATCHDOG_USEC=4000000
# Timeouts are generous: under TCG on a shared 2-core machine one guest boot takes 5-60 s.
#
# More helpers (below): sup_ctl (one raw request on the control socket), sup_netns_setup,
# sup_pings, sup_netns_snapshot, sup_notify_listen, sup_qmp_fd / sup_cut_qmp (cut the agent's
# QMP connection from outside with pidfd_getfd + shutdown), sup_image_magic.

: "${RESCUEVM:?RESCUEVM must point at the rescuevm binary}"

SUP_BOOT_TIMEOUT=${SUP_BOOT_TIMEOUT:-240}

# sup_setup GUEST_PARAMS [TOML_LINES]: builds the guest, makes the disk and writes the config.
# The kernel is rv_guest_kernel's choice (the PVH vmlinux) unless SUP_KERNEL_NAME names a file
# in the guest directory (e.g. vmlinuz).
# GUEST_PARAMS are rvtest.* parameters (rvtest.boot_counter=vda is always added). TOML_LINES
# (may be empty) are appended to the file, e.g. a [supervisor] section.
sup_setup() {
  local params=$1 extra=${2:-}
  rv_require qemu-system-x86_64 losetup python3 xorriso pgrep
  SUP_TMP=$(rv_tmpdir)
  RV_GUEST_DIR=$(rv_guest_build)
  SUP_DISK=$(rv_loop_disk 64M)
  SUP_RT=${SUP_RT:-$SUP_TMP/rt}
  SUP_CONF=$SUP_TMP/rescuevm.toml
  SUP_CMDLINE=$SUP_TMP/cmdline
  SUP_CONSOLE=$SUP_RT/guest-console.log
  SUP_AGENT_LOG=$SUP_TMP/agent.log
  : >"$SUP_CMDLINE"
  local kernel
  kernel=$(rv_guest_kernel)
  [[ -z ${SUP_KERNEL_NAME:-} ]] || kernel=$RV_GUEST_DIR/$SUP_KERNEL_NAME
  # QEMU outlives a killed agent on purpose: kill whatever still runs on this runtime_dir
  # before the loop disk is detached (cleanups run last-registered first).
  rv_cleanup_add rv_kill_qemu_for "$SUP_RT"
  local match="\"${SUP_DISK#/dev/}\"" d network=${SUP_NETWORK:-'mode = "none"'}
  for d in ${SUP_MORE_DISKS:-}; do match+=", \"${d#/dev/}\""; done
  cat >"$SUP_CONF" <<EOF
[host]
min_memory = "1GiB"

[vm]
kernel = "$kernel"
initrd = "$RV_GUEST_DIR/initramfs.cpio.gz"
append = "$(rv_guest_append "rvtest.boot_counter=vda $params")"
accel = "tcg"
firmware = "bios"
memory = "512MiB"
cpus = 2
display = "none"

[disks]
match = [$match]

[network]
$network

[guest]
admin_password_file = "$SUP_TMP/no-password"

[paths]
runtime_dir = "$SUP_RT"
$extra
EOF
  rv_log "disk $SUP_DISK, runtime_dir $SUP_RT, guest: $params"
}

# sup_rescuevm ARGS...: the CLI against this test's config.
sup_rescuevm() { "$RESCUEVM" --config "$SUP_CONF" --kernel-cmdline "$SUP_CMDLINE" "$@"; }

# sup_agent_start: `rescuevm run` in the background (log appended to SUP_AGENT_LOG, level
# SUP_LOG_LEVEL, default debug: QMP events are logged);
# sets SUP_AGENT_PID and waits until the control socket answers.
sup_agent_start() {
  echo "---- agent started $(date +%T)" >>"$SUP_AGENT_LOG"
  local -a env=()
  if [[ -n ${SUP_NOTIFY:-} ]]; then
    [[ -n ${SUP_NOTIFY_SOCKET:-} ]] || sup_notify_listen
    env=(env "NOTIFY_SOCKET=$SUP_NOTIFY_SOCKET" WATCHDOG_USEC=4000000)
  fi
  # The binary itself, not the sup_rescuevm function: a function run with & is a subshell,
  # and $! would be that subshell, not the agent (signals would miss it). SUP_WRAP and env exec.
  # shellcheck disable=SC2086 # SUP_WRAP is a command prefix, split on purpose
  ${SUP_WRAP:-} "${env[@]}" "$RESCUEVM" --config "$SUP_CONF" --kernel-cmdline "$SUP_CMDLINE" \
    --log-level "${SUP_LOG_LEVEL:-debug}" run >>"$SUP_AGENT_LOG" 2>&1 </dev/null &
  SUP_AGENT_PID=$!
  rv_cleanup_kill "$SUP_AGENT_PID"
  local i
  for ((i = 0; i < 300; i++)); do
    sup_rescuevm status --json >/dev/null 2>&1 && return 0
    sup_alive "$SUP_AGENT_PID" || rv_fail "the agent exited at start: $(tail -n 20 "$SUP_AGENT_LOG")"
    sleep 0.2   # bounded wait for the socket to appear
  done
  rv_fail "the agent's control socket did not answer within 60 s: $(tail -n 20 "$SUP_AGENT_LOG")"
}

# sup_alive PID: PID exists and is not a zombie (an exited child not yet reaped still answers kill -0).
sup_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# sup_status PATH: one field of `rescuevm status --json` (dotted path, e.g. vm.qemu_pid).
sup_status() {
  sup_rescuevm status --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}

# sup_wait_status PATH VALUE TIMEOUT: until status field PATH equals VALUE; 1 on timeout.
sup_wait_status() {
  local deadline=$((SECONDS + $3)) v
  while :; do
    v=$(sup_status "$1" 2>/dev/null) || v=
    [[ $v == "$2" ]] && return 0
    ((SECONDS < deadline)) || { rv_log "status $1 is '$v', not '$2'"; return 1; }
    sleep 0.5   # bounded poll of the agent's answer
  done
}

# sup_wait_boots N: until the guest console says it booted the Nth time (its counter on the disk).
sup_wait_boots() { rv_wait_for "^RVTEST boots n=$1 " "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT"; }

# sup_record_pid: the pid in runtime_dir/qemu.json (empty if there is none).
sup_record_pid() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$SUP_RT/qemu.json" 2>/dev/null || true
}

# sup_qemu_pids: pids of QEMU processes whose command line names this runtime_dir.
sup_qemu_pids() { pgrep -f "qemu-system.*$SUP_RT" || true; }

# sup_agent_stop: SIGTERM to the agent and wait for it (in this shell: only the parent can
# reap it, so never call it inside $(...)); sets SUP_AGENT_RC to its exit status.
sup_agent_stop() {
  SUP_AGENT_RC=0
  kill -TERM "$SUP_AGENT_PID"
  wait "$SUP_AGENT_PID" || SUP_AGENT_RC=$?
}

# sup_fail MSG: rv_fail with the tail of the agent log and of the guest console.
sup_fail() {
  {
    echo "---- agent log (tail)"; tail -n 30 "$SUP_AGENT_LOG" 2>/dev/null
    echo "---- guest console (RVTEST lines)"; tr -d '\r' <"$SUP_CONSOLE" 2>/dev/null | grep -a '^RVTEST' | tail -n 20
  } >&2
  rv_fail "$*"
}

# sup_ctl LINE: sends LINE (raw bytes, a newline is added) on the control socket on a
# connection of its own and prints the agent's one-line answer (empty if none within 30 s).
sup_ctl() {
  python3 - "$SUP_RT/control.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
data = b""
try:
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
print(data.decode(errors="replace").strip())
PY
}

# sup_netns_setup: a server namespace SUP_SRV with uplink "up0" (MAC SUP_MAC, 203.0.113.10/32,
# default via 203.0.113.1 through an on-link host route) and its gateway namespace SUP_GW
# (gw0, 203.0.113.1/24), both removed at exit; sets SUP_WRAP so the agent runs in SUP_SRV and
# SUP_NETWORK for a macvtap hand-over of up0 (SUP_UPLINK, default "up0"; "auto" works too).
# Call before sup_setup.
sup_netns_setup() {
  rv_require ip jq busybox
  SUP_MAC=02:00:5e:10:00:10
  SUP_SRV=$(rv_netns rvsup-srv)
  SUP_GW=$(rv_netns rvsup-gw)
  ip -n "$SUP_SRV" link add up0 address "$SUP_MAC" type veth peer name gw0 netns "$SUP_GW"
  ip -n "$SUP_GW" link set gw0 up
  ip -n "$SUP_GW" addr add 203.0.113.1/24 dev gw0
  ip -n "$SUP_SRV" link set up0 up
  ip -n "$SUP_SRV" addr add 203.0.113.10/32 dev up0
  ip -n "$SUP_SRV" route add 203.0.113.1 dev up0 scope link
  ip -n "$SUP_SRV" route add default via 203.0.113.1 dev up0
  SUP_RESOLV=$(rv_tmpdir)/resolv.conf
  printf 'nameserver 192.0.2.53\n' >"$SUP_RESOLV"
  SUP_WRAP="ip netns exec $SUP_SRV"
  SUP_NETWORK="mode = \"macvtap\"
uplink = \"${SUP_UPLINK:-up0}\"
resolv_conf = \"$SUP_RESOLV\""
  sup_pings "$SUP_GW" 203.0.113.10 || rv_fail "setup: the gateway does not reach the server"
}

# sup_pings NS ADDR: 0 when ADDR answers a ping from namespace NS (one retry).
sup_pings() {
  ip netns exec "$1" busybox ping -c 1 -W 1 "$2" >/dev/null 2>&1 ||
    ip netns exec "$1" busybox ping -c 2 -W 2 "$2" >/dev/null 2>&1
}

# sup_netns_snapshot NS: addresses, routes and links of NS, without what changes by itself.
sup_netns_snapshot() {
  ip -n "$1" -j addr show | jq -S '[.[] | .ifname as $dev | .addr_info[]
      | {dev: $dev, family: .family, local: .local, prefixlen: .prefixlen, scope: .scope}]
      | map(select(.family == "inet")) | sort_by(.dev, .local)'
  ip -n "$1" -j -4 route show table all | jq -S 'sort_by(.table, .dst, .dev)'
  ip -n "$1" -j link show | jq -r '[.[].ifname] | sort | join(" ")'
}

# sup_notify_listen: a datagram socket SUP_NOTIFY_SOCKET (as systemd's NOTIFY_SOCKET) whose
# messages a listener appends to SUP_NOTIFY_LOG, one per line: "<monotonic seconds> <message
# with newlines as ' | '>". Killed at exit.
sup_notify_listen() {
  SUP_NOTIFY_SOCKET=$SUP_TMP/notify.sock
  SUP_NOTIFY_LOG=$SUP_TMP/notify.log
  : >"$SUP_NOTIFY_LOG"
  python3 - "$SUP_NOTIFY_SOCKET" "$SUP_NOTIFY_LOG" <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        data = s.recv(65536)
        f.write("%.3f %s\n" % (time.monotonic(), data.decode(errors="replace").replace("\n", " | ")))
        f.flush()
PY
  rv_cleanup_kill $!
  local i
  for ((i = 0; i < 50; i++)); do [[ -S $SUP_NOTIFY_SOCKET ]] && return 0; sleep 0.1; done
  rv_fail "the notify listener did not bind $SUP_NOTIFY_SOCKET"
}

# sup_watchdog_gap FROM [TO]: the longest time in seconds between two WATCHDOG=1 messages
# (and from FROM to the first, from the last to TO) between monotonic times FROM and TO
# (default now), e.g. "2.01".
sup_watchdog_gap() {
  python3 - "$SUP_NOTIFY_LOG" "$1" "${2:-}" <<'PY'
import sys, time
since = float(sys.argv[2])
until = float(sys.argv[3]) if sys.argv[3] else time.monotonic()
beats = [float(l.split()[0]) for l in open(sys.argv[1])
         if "WATCHDOG=1" in l and since <= float(l.split()[0]) <= until]
points = [since] + beats + [until]
print("%.2f" % max(b - a for a, b in zip(points, points[1:])))
PY
}

# sup_now: the monotonic clock of sup_notify_listen's lines.
sup_now() { python3 -c 'import time; print("%.3f" % time.monotonic())'; }

# sup_qmp_fd: the agent's fd of its QMP connection (a unix socket connected to qmp.sock), found
# with ss -xp: the peer of QEMU's end of the connection; empty if there is none.
sup_qmp_fd() {
  local qemu=$1
  python3 - "$SUP_AGENT_PID" "$qemu" "$SUP_RT/qmp.sock" <<'PY'
import os, re, subprocess, sys
agent, qemu, path = sys.argv[1:4]
out = subprocess.run(["ss", "-x", "-a", "-p", "-n"], capture_output=True, text=True).stdout
# Lines: Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process
qemu_side = set()     # inode of QEMU's accepted socket on qmp.sock -> the agent's peer inode
for line in out.splitlines():
    f = line.split()
    if len(f) < 8 or f[0] != "u_str" or f[1] != "ESTAB":
        continue
    local, lport, peer_port = f[4], f[5], f[7]
    if local == path and f"pid={qemu}," in line:
        qemu_side.add(peer_port)
for fd in os.listdir(f"/proc/{agent}/fd"):
    try:
        target = os.readlink(f"/proc/{agent}/fd/{fd}")
    except OSError:
        continue
    m = re.match(r"socket:\[(\d+)\]", target)
    if m and m.group(1) in qemu_side:
        print(fd)
        break
PY
}

# sup_cut_qmp QEMU_PID: shuts down the agent's QMP connection from outside (a copy of its fd
# taken with pidfd_getfd(2), then shutdown(2) on it: the socket is the agent's own); echoes the
# fd. The agent sees the connection end while QEMU lives on; it is never stopped.
sup_cut_qmp() {
  rv_require ss
  local fd
  fd=$(sup_qmp_fd "$1")
  [[ $fd =~ ^[0-9]+$ ]] || sup_fail "no QMP connection of agent $SUP_AGENT_PID to QEMU $1 found with ss -xp"
  python3 - "$SUP_AGENT_PID" "$fd" <<'PY' || sup_fail "could not shut down the agent's QMP fd $fd"
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_getfd = 438
pidfd = os.pidfd_open(int(sys.argv[1]))
fd = libc.syscall(SYS_pidfd_getfd, pidfd, int(sys.argv[2]), 0)
if fd < 0:
    sys.exit("pidfd_getfd: " + os.strerror(ctypes.get_errno()))
s = socket.socket(fileno=fd)
if s.family != socket.AF_UNIX:
    sys.exit(f"fd {sys.argv[2]} of the agent is not a unix socket")
s.shutdown(socket.SHUT_RDWR)
PY
  echo "$fd"
}

# sup_image_magic FILE: "ppm WxH" or "png WxH" when FILE is a valid image of that kind (header
# parsed, size consistent with the file's length for PPM), else "bad: why".
sup_image_magic() {
  python3 - "$1" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
if data.startswith(b"P6"):
    fields, i = [], 2
    while len(fields) < 3:
        while data[i:i+1].isspace():
            i += 1
        if data[i:i+1] == b"#":
            i = data.index(b"\n", i) + 1
            continue
        j = i
        while not data[j:j+1].isspace():
            j += 1
        fields.append(int(data[i:j]))
        i = j
    w, h, maxval = fields
    body = len(data) - (i + 1)
    ok = maxval == 255 and w > 0 and h > 0 and body == w * h * 3
    print(f"ppm {w}x{h}" if ok else f"bad: ppm {w}x{h} maxval {maxval} with {body} bytes of pixels")
elif data.startswith(b"\x89PNG\r\n\x1a\n"):
    length, kind = struct.unpack(">I4s", data[8:16])
    w, h = struct.unpack(">II", data[16:24])
    crc = struct.unpack(">I", data[16 + length:20 + length])[0]
    ok = kind == b"IHDR" and crc == zlib.crc32(data[12:16 + length]) and data.rstrip(b"\0").endswith(b"IEND\xaeB`\x82")
    print(f"png {w}x{h}" if ok else "bad: png header, CRC or IEND")
else:
    print("bad: neither PPM (P6) nor PNG: " + repr(data[:8]))
PY
}
