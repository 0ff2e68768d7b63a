# SPDX-License-Identifier: GPL-2.0-or-later
# Shared bash helpers for the network-contract tests: a "server host" (network namespace plus private /run), a gateway with a DHCP server, snapshots.
#
# Source after lib.sh. The server host is a network namespace and a mount + UTS namespace
# held by one sleeping process; inside it /run, /var/lib/dhcp and /var/lib/dhcpcd are
# private tmpfs, /etc/resolv.conf and /etc/dhcpcd.conf are private copies and /sys is
# read-only (so systemd-networkd, with no udev, configures links at once). Network daemons,
# DHCP clients and rescuevm run in it through nl_in; nothing they write reaches the machine.
#
#   nl_host NAME                  create the namespaces; sets NL_NS (its netns) and NL_PID
#   nl_in CMD...                  run CMD in the server host
#   nl_networkd_start             dbus-daemon + systemd-networkd in the server host
#   nl_gateway NAME               a gateway netns (sets NL_GW)
#   nl_link HOST_IF GW_IF MAC NET hand a veth pair to host and gateway; the gateway side gets NET.1/24
#   nl_dhcp_server GW_IF NET MAC  busybox udhcpd on GW_IF, NET.10 leased to MAC (log: $NL_TMP/udhcpd.GW_IF.log)
#   nl_acks GW_IF                 how many DHCP ACKs that server has sent
#   nl_snapshot [IF...]           addresses and routes of the server host (of IF only, if given), sorted,
#                                 without what changes by itself (lifetimes, tentative, expiry)
#   nl_wait_snapshot WANT SEC IF...  wait until nl_snapshot IF... prints WANT; 1 on timeout
#   nl_addresses IF               the IPv4/IPv6 addresses of IF in the server host, one line
#   nl_pings NS ADDR [ARGS...]    0 when ADDR answers a ping from NS

NL_TMP=${NL_TMP:-$(rv_tmpdir)}

nl_in() { nsenter -t "$NL_PID" -m -n -u -- "$@"; }

nl_host() {
  NL_NS=$(rv_netns "$1")
  local ready=$NL_TMP/host-ready
  rm -f "$ready"
  cp /etc/resolv.conf "$NL_TMP/resolv.conf.host" 2>/dev/null || : >"$NL_TMP/resolv.conf.host"
  printf 'nodev\nnoarp\nnohook resolv.conf, hostname, timesyncd, ntp, wpa_supplicant, chrony, openntpd\n' \
    >"$NL_TMP/dhcpcd.conf"
  # shellcheck disable=SC2016 # expanded by the inner shell
  ip netns exec "$NL_NS" unshare -m -u --propagation private bash -c '
    set -e
    mount -t tmpfs -o mode=0755 rv-run /run
    mkdir -p /run/lock
    for d in /var/lib/dhcp /var/lib/dhcpcd; do
      [ -d "$d" ] && mount -t tmpfs -o mode=0755 rv-state "$d"
    done
    mount --bind "$1/resolv.conf.host" /etc/resolv.conf
    if [ -e /etc/dhcpcd.conf ]; then mount --bind "$1/dhcpcd.conf" /etc/dhcpcd.conf; fi
    mount -o remount,bind,ro /sys
    hostname rv-server
    touch "$2"
    exec sleep 100000' nl-host "$NL_TMP" "$ready" </dev/null >"$NL_TMP/host.log" 2>&1 &
  NL_PID=$!
  rv_cleanup_kill "$NL_PID"
  rv_wait_for_file "$ready" 10 || rv_fail "the server host did not come up: $(cat "$NL_TMP/host.log")"
}

rv_wait_for_file() { # FILE SEC
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [[ -e $1 ]] && return 0
    sleep 0.1
  done
  return 1
}

nl_networkd_start() {
  nl_in mkdir -p /run/dbus /run/systemd/network
  nl_in dbus-daemon --system --fork --nopidfile || rv_fail "dbus-daemon did not start in the server host"
  nl_in /lib/systemd/systemd-networkd >"$NL_TMP/networkd.log" 2>&1 </dev/null &
  rv_cleanup_kill $!
  local i
  for ((i = 0; i < 100; i++)); do
    nl_in networkctl list >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  rv_fail "systemd-networkd did not answer networkctl: $(cat "$NL_TMP/networkd.log")"
}

nl_gateway() { NL_GW=$(rv_netns "$1"); }

nl_link() { # HOST_IF GW_IF MAC NET
  ip -n "$NL_NS" link add "$1" address "$3" type veth peer name "$2" netns "$NL_GW"
  ip -n "$NL_GW" link set "$2" up
  ip -n "$NL_GW" addr add "$4.1/24" dev "$2"
  ip -n "$NL_NS" link set "$1" up
}

nl_dhcp_server() { # GW_IF NET MAC
  local conf=$NL_TMP/udhcpd.$1.conf
  cat >"$conf" <<EOF
start $2.10
end $2.20
interface $1
lease_file $NL_TMP/udhcpd.$1.leases
pidfile $NL_TMP/udhcpd.$1.pid
option subnet 255.255.255.0
option router $2.1
option lease 600
static_lease $3 $2.10
EOF
  : >"$NL_TMP/udhcpd.$1.leases"
  ip netns exec "$NL_GW" busybox udhcpd -f "$conf" >"$NL_TMP/udhcpd.$1.log" 2>&1 </dev/null &
  rv_cleanup_kill $!
}

nl_acks() { rv_count 'sending ACK' "$NL_TMP/udhcpd.$1.log"; }

nl_snapshot() {
  local filter='.'
  if (($#)); then filter="map(select(.ifname as \$n | \$ARGS.positional | index(\$n)))"; fi
  ip -n "$NL_NS" -j addr show | jq -S --args "$filter"' | [.[] | .ifname as $dev | .addr_info[]
      | {dev: $dev, family: .family, local: .local, prefixlen: .prefixlen, scope: .scope,
         broadcast: .broadcast, label: .label}] | sort_by(.dev, .local)' "$@"
  local f=.
  if (($#)); then f='map(select(.dev as $d | $ARGS.positional | index($d)))'; fi
  ip -n "$NL_NS" -j -4 route show table all | jq -S --args "$f"' | sort_by(.table, .dst, .dev)' "$@"
  ip -n "$NL_NS" -j -6 route show table all | jq -S --args "$f"' | map(del(.expires)) | sort_by(.table, .dst, .dev)' "$@"
}

nl_wait_snapshot() { # WANT SEC IF...
  local want=$1 sec=$2 i
  shift 2
  for ((i = 0; i < sec * 5; i++)); do
    [[ $(nl_snapshot "$@") == "$want" ]] && return 0
    sleep 0.2
  done
  return 1
}

nl_addresses() { ip -n "$NL_NS" -j addr show dev "$1" | jq -r '[.[].addr_info[] | select(.scope != "link") | "\(.local)/\(.prefixlen)"] | join(" ")'; }

nl_wait_dad() {
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -z $(ip -n "$1" -6 addr show tentative) ]] && return 0
    sleep 0.1
  done
  rv_fail "IPv6 addresses in $1 stay tentative: $(ip -n "$1" -6 addr show tentative)"
}

nl_pings() {
  local ns=$1 addr=$2
  shift 2
  ip netns exec "$ns" busybox ping -c 1 -W 1 "$@" "$addr" >/dev/null 2>&1 ||
    ip netns exec "$ns" busybox ping -c 2 -W 2 "$@" "$addr" >/dev/null 2>&1
}

# --- the uplink claim through the test driver, and rescuevm itself --------------------------------
#   nl_claim_start RUNDIR [DRIVER_OPTIONS...]   a driver holding a claim (coprocess NL_DRV);
#                                 NL_CLAIMED is its first line (JSON); fails unless it claimed
#   nl_claim_command release|abandon|detach     tell it, wait for it to exit; echoes its reply
#   nl_driver ARGS...             run the driver once in the server host (stdout: its JSON)
#   nl_config FILE UPLINK RUNTIME_DIR           a rescuevm config for plan/run in the server host:
#                                 dummy kernel files, a loop disk, network.mode = "macvtap"
#   nl_rescuevm CONFIG ARGS...    rescuevm in the server host

NL_DRIVER=${NET_DRIVER:-${BUILD_ROOT:-}/tests/integration/net_driver}

nl_driver() { nl_in "$NL_DRIVER" "$@" 2>>"$NL_TMP/driver.log"; }

nl_claim_start() {
  local run=$1
  shift
  coproc NL_DRV { exec nsenter -t "$NL_PID" -m -n -u -- "$NL_DRIVER" claim --runtime-dir "$run" "$@" 2>>"$NL_TMP/driver.log"; }
  rv_cleanup_add "kill -9 ${NL_DRV_PID} 2>/dev/null"
  read -r -t 90 -u "${NL_DRV[0]}" NL_CLAIMED || rv_fail "the driver said nothing: $(tail -20 "$NL_TMP/driver.log")"
  [[ $(echo "$NL_CLAIMED" | jq -r '.claimed // false') == true ]] \
    || rv_fail "claim failed: $NL_CLAIMED $(tail -20 "$NL_TMP/driver.log")"
}

nl_claim_command() {
  local pid=$NL_DRV_PID reply=
  echo "$1" >&"${NL_DRV[1]}"
  [[ $1 == abandon ]] || read -r -t 90 -u "${NL_DRV[0]}" reply || true
  wait "$pid" || true
  echo "$reply"
}

nl_config() { # FILE UPLINK RUNTIME_DIR
  local dir
  dir=$(dirname "$1")
  [[ -f $dir/kernel ]] || { echo kernel >"$dir/kernel"; echo initrd >"$dir/initrd"; }
  [[ -n ${NL_DISK:-} ]] || NL_DISK=$(rv_loop_disk 64M)
  cat >"$1" <<EOF
[host]
min_memory = "1GiB"

[vm]
kernel = "$dir/kernel"
initrd = "$dir/initrd"
accel = "tcg"
firmware = "bios"
memory = "512MiB"
cpus = 1
display = "none"

[disks]
match = ["${NL_DISK#/dev/}"]

[network]
mode = "macvtap"
uplink = "$2"

[paths]
runtime_dir = "$3"
EOF
}

nl_rescuevm() {
  local cfg=$1
  shift
  : >"$NL_TMP/cmdline"
  nl_in "$RESCUEVM" --config "$cfg" --kernel-cmdline "$NL_TMP/cmdline" "$@"
}

# nl_refused_everywhere WHAT UPLINK EXPECTED: facts, the driver's claim, `plan --json` and
# `rescuevm run` all refuse with the same message, which holds EXPECTED; nothing changes.
nl_refused_everywhere() {
  local what=$1 uplink=$2 expect=$3 problem out snap rc
  nl_wait_dad "$NL_NS" # (local routes of link-local addresses appear once DAD is over)
  snap=$(nl_snapshot)
  problem=$(nl_driver facts --uplink "$uplink" | jq -r .problem)
  [[ $problem == *"$expect"* ]] || rv_fail "$what: facts say \"$problem\", not \"$expect\""
  out=$(nl_driver claim --runtime-dir "$NL_TMP/refused-run" --uplink "$uplink" </dev/null) && true
  [[ $(echo "$out" | jq -r '.refused // ""') == "$problem" ]] \
    || rv_fail "$what: the claim did not refuse with the same message: $out"
  nl_config "$NL_TMP/refused.toml" "$uplink" "$NL_TMP/refused-rt"
  rc=0
  nl_rescuevm "$NL_TMP/refused.toml" plan --json >"$NL_TMP/refused-plan.json" 2>"$NL_TMP/refused-plan.log" || rc=$?
  [[ $rc == 3 ]] || rv_fail "$what: plan exited $rc, not 3: $(tail -5 "$NL_TMP/refused-plan.log")"
  [[ $(jq -r '.checks[] | select(.name == "network") | .message' "$NL_TMP/refused-plan.json") == "$problem" ]] \
    || rv_fail "$what: plan's network check is not the same message: $(jq -c '.checks' "$NL_TMP/refused-plan.json")"
  rc=0
  timeout 120 nsenter -t "$NL_PID" -m -n -u -- "$RESCUEVM" --config "$NL_TMP/refused.toml" \
    --kernel-cmdline "$NL_TMP/cmdline" run >"$NL_TMP/refused-run.log" 2>&1 </dev/null || rc=$?
  [[ $rc == 3 ]] || rv_fail "$what: run exited $rc, not 3: $(tail -5 "$NL_TMP/refused-run.log")"
  grep -q -F -- "$problem" "$NL_TMP/refused-run.log" \
    || rv_fail "$what: run does not log the same message: $(tail -5 "$NL_TMP/refused-run.log")"
  [[ $(nl_snapshot) == "$snap" ]] || rv_fail "$what: the refusals changed addresses or routes: $(diff <(echo "$snap") <(nl_snapshot) || true)"
  [[ -z $(ip -n "$NL_NS" -j link show type macvtap | jq -r '.[]') ]] || rv_fail "$what: a macvtap was left"
  [[ ! -e $NL_TMP/refused-run/network-claim.json && ! -e $NL_TMP/refused-rt/network-claim.json ]] \
    || rv_fail "$what: a claim record was left"
  rv_log "refused ($what): $problem"
}
