#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# network_claim: the uplink of a "server" namespace is read, claimed through a passthru macvtap and given back exactly; bad uplinks are refused untouched.
#
# Namespaces (created here, removed at exit): SRV has veth "up0" (MAC $MAC, 203.0.113.10/32,
# default via 203.0.113.1 reached through an on-link host route, 2001:db8::10/128 with default
# via fe80::1) and a fake DHCP client (busybox udhcpc) on it; GW holds the veth peer with
# 203.0.113.1/24, 2001:db8::1/64 and fe80::1; BAD holds the bad uplinks. The driver
# ($NET_DRIVER, tests/integration/net_driver.cpp) runs inside SRV/BAD through ip netns exec.
# With the test guest available, a last step boots it in QEMU on the macvtap's fd and the
# guest, carrying the server's MAC and IP, pings the gateway.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rv_require ip jq busybox

DRV=${NET_DRIVER:-${BUILD_ROOT:-}/tests/integration/net_driver}
[[ -x $DRV ]] || rv_fail "net_driver not found at $DRV: build the tree (ninja) first"
MAC=02:00:5e:10:00:10
tmp=$(rv_tmpdir)
SRV=$(rv_netns rvnet-srv)
GW=$(rv_netns rvnet-gw)
BAD=$(rv_netns rvnet-bad)

in_srv() { ip netns exec "$SRV" "$@"; }
in_gw() { ip netns exec "$GW" "$@"; }

# --- the server and its gateway --------------------------------------------------------------
ip -n "$SRV" link add up0 address "$MAC" type veth peer name gw0 netns "$GW"
ip -n "$GW" link set gw0 up
ip -n "$GW" addr add 203.0.113.1/24 dev gw0
ip -n "$GW" addr add fe80::1/64 dev gw0 nodad
ip -n "$GW" addr add 2001:db8::1/64 dev gw0 nodad
ip -n "$SRV" link set up0 up
ip -n "$SRV" addr add 203.0.113.10/32 dev up0
ip -n "$SRV" route add 203.0.113.1 dev up0 scope link
ip -n "$SRV" route add default via 203.0.113.1 dev up0
ip -n "$SRV" addr add 2001:db8::10/128 dev up0
ip -n "$SRV" -6 route add default via fe80::1 dev up0
printf 'search example.net\nnameserver 213.186.33.99\nnameserver 2001:41d0:3:163::1\n' >"$tmp/resolv.conf"

# IPv6 duplicate address detection takes about a second after an address appears.
wait_dad() {
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -z $(ip -n "$1" -6 addr show tentative) ]] && return 0
    sleep 0.1
  done
  rv_fail "IPv6 addresses in $1 stay tentative: $(ip -n "$1" -6 addr show tentative)"
}
wait_dad "$SRV"
wait_dad "$GW"

# Addresses and routes of a namespace, without what changes by itself (lifetimes, flags
# such as tentative, route expiry), sorted.
snapshot() {
  ip -n "$1" -j addr show | jq -S '[.[] | .ifname as $dev | .addr_info[]
      | {dev: $dev, family: .family, local: .local, prefixlen: .prefixlen, scope: .scope,
         broadcast: .broadcast, label: .label}] | sort_by(.dev, .local)'
  ip -n "$1" -j -4 route show table all | jq -S 'sort_by(.table, .dst, .dev)'
  ip -n "$1" -j -6 route show table all | jq -S 'map(del(.expires)) | sort_by(.table, .dst, .dev)'
}

pings() { # pings NS ADDR [PING_ARGS...]: 0 when ADDR answers from NS (one retry)
  local ns=$1 addr=$2
  shift 2
  ip netns exec "$ns" busybox ping -c 1 -W 1 "$@" "$addr" >/dev/null 2>&1 ||
    ip netns exec "$ns" busybox ping -c 2 -W 2 "$@" "$addr" >/dev/null 2>&1
}

# A DHCP client on the uplink (busybox udhcpc: no server answers, it just keeps asking). The
# claim makes it release and idle (SIGUSR2: it keeps running, holding no socket), the release
# makes it ask again (SIGUSR1: its packet socket is back); net_dhcp_clients.sh covers leases.
in_srv busybox udhcpc -f -i up0 -s /bin/true -T 3 -A 3 >/dev/null 2>&1 &
udhcpc_pid() { ip netns pids "$SRV" | while read -r p; do
    [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") == *udhcpc*up0* ]] && echo "$p"; done; }
for ((i = 0; i < 50; i++)); do [[ -n $(udhcpc_pid) ]] && break; sleep 0.1; done
dhcp_pid=$(udhcpc_pid)
[[ -n $dhcp_pid ]] || rv_fail "could not start busybox udhcpc in $SRV"
udhcpc_asking() { # 0 when udhcpc $dhcp_pid holds a packet socket (it is asking for a lease)
  local fd inode
  for fd in /proc/"$dhcp_pid"/fd/*; do
    inode=$(readlink "$fd" 2>/dev/null) || continue
    [[ $inode == socket:* ]] || continue
    inode=${inode#socket:[}
    awk -v i="${inode%]}" 'NR > 1 && $9 == i { found = 1 } END { exit !found }' "/proc/$dhcp_pid/net/packet" && return 0
  done
  return 1
}
wait_asking() { # wait_asking yes|no: until udhcpc_asking says so (5 s)
  local i
  for ((i = 0; i < 50; i++)); do
    if udhcpc_asking; then [[ $1 == yes ]] && return 0; else [[ $1 == no ]] && return 0; fi
    sleep 0.1
  done
  return 1
}
wait_asking yes || rv_fail "setup: udhcpc $dhcp_pid holds no packet socket"

pings "$SRV" 203.0.113.1 || rv_fail "setup: the server does not reach its gateway 203.0.113.1"
pings "$GW" 203.0.113.10 || rv_fail "setup: the gateway does not reach the server"
pings "$SRV" fe80::1 -I up0 || rv_fail "setup: the server does not reach fe80::1"
before=$(snapshot "$SRV")
[[ $before == *'"prefixlen": 32'* && $before == *'"2001:db8::10"'* && $before == *'"default"'* ]] \
  || rv_fail "setup: the snapshot of $SRV misses its addresses or routes: $before"

# --- facts ----------------------------------------------------------------------------------
facts=$(in_srv "$DRV" facts --resolv-conf "$tmp/resolv.conf" 2>"$tmp/facts.log")
echo "$facts" | jq . >"$tmp/facts.json"
check_fact() { # check_fact JQ_EXPR WHAT
  [[ $(echo "$facts" | jq -r "$1") == true ]] || rv_fail "facts: $2: $(echo "$facts" | jq -c .)"
}
check_fact '.uplink == "up0" and .found and .up and .carrier and .kind == "veth"' "uplink up0 (veth, up)"
check_fact ".mac == \"$MAC\" and .mtu == 1500" "MAC $MAC and MTU 1500"
check_fact '.problem == ""' "no problem"
check_fact '.addresses | map("\(.family) \(.address)/\(.prefix)") | sort == ["ipv4 203.0.113.10/32", "ipv6 2001:db8::10/128"]' "addresses"
check_fact '.link_local | length == 1 and (.[0].address | startswith("fe80:"))' "link-local noted separately"
check_fact '.gateways == ["203.0.113.1", "fe80::1"]' "gateways"
check_fact 'any(.routes[]; .destination == "default" and .gateway == "203.0.113.1" and .gateway_outside_prefix)' "IPv4 default route via an outside gateway"
check_fact 'any(.routes[]; .destination == "default" and .gateway == "fe80::1" and .gateway_outside_prefix)' "IPv6 default route via fe80::1"
check_fact 'any(.routes[]; .destination == "203.0.113.1/32" and .gateway == "")' "on-link host route to the gateway"
check_fact '.dns == ["213.186.33.99", "2001:41d0:3:163::1"]' "DNS from resolv.conf"
check_fact ".dhcp and .dhcp_client == \"udhcpc pid $dhcp_pid\"" "DHCP client found"
check_fact '.handover.steps == ["udhcpc"]' "udhcpc handed over by its signals"
check_fact '.macvtap_supported' "macvtap supported"
facts_static=$(in_srv "$DRV" facts --addressing static 2>/dev/null)
[[ $(echo "$facts_static" | jq .dhcp) == false ]] || rv_fail "network.addressing = static does not force dhcp off"
rv_pass "facts: up0, $MAC, 203.0.113.10/32 + 2001:db8::10/128, gateways outside the prefix, DNS, udhcpc"

# --- claim, check, release ------------------------------------------------------------------
run=$tmp/run
claim_start() { # claim_start [DRIVER_OPTIONS...]: a driver holding a claim, as coprocess DRV
  coproc DRVP { ip netns exec "$SRV" "$DRV" claim --runtime-dir "$run" "$@" 2>>"$tmp/claim.log"; }
  rv_cleanup_add "kill -9 ${DRVP_PID} 2>/dev/null"
  read -r -t 60 -u "${DRVP[0]}" claimed || rv_fail "the driver said nothing: $(cat "$tmp/claim.log")"
  [[ $(echo "$claimed" | jq -r '.claimed // false') == true ]] \
    || rv_fail "claim failed: $claimed $(tail -5 "$tmp/claim.log")"
}
claim_command() { # claim_command release|abandon: tells the driver, waits for it to exit
  local pid=$DRVP_PID reply=
  echo "$1" >&"${DRVP[1]}"
  [[ $1 == abandon ]] || read -r -t 60 -u "${DRVP[0]}" reply || true
  wait "$pid" || true
  echo "$reply"
}

claimed_checks() {
  local what=$1 tapidx tap drvpid
  [[ -z $(ip -n "$SRV" addr show dev up0 | grep -w inet) ]] || rv_fail "$what: up0 still has IPv4"
  [[ -z $(ip -n "$SRV" -j addr show dev up0 | jq -r '.[].addr_info[]') ]] \
    || rv_fail "$what: up0 still has addresses: $(ip -n "$SRV" addr show dev up0)"
  [[ -z $(ip -n "$SRV" -j addr show dev rvtap0 | jq -r '.[].addr_info[]') ]] \
    || rv_fail "$what: rvtap0 has addresses: $(ip -n "$SRV" addr show dev rvtap0)"
  ip -n "$SRV" -d -j link show rvtap0 | jq -e --arg mac "$MAC" '.[0] | .linkinfo.info_kind == "macvtap"
      and .linkinfo.info_data.mode == "passthru" and .address == $mac and .link == "up0"
      and (.flags | index("UP"))' >/dev/null \
    || rv_fail "$what: rvtap0 is not an up passthru macvtap on up0 with $MAC: $(ip -n "$SRV" -d link show rvtap0)"
  tapidx=$(ip -n "$SRV" -j link show rvtap0 | jq -r '.[0].ifindex')
  tap=$(echo "$claimed" | jq -r .tap_path)
  # devtmpfs's node for the macvtap, or the driver's own (named for its major-minor) when
  # devtmpfs has none for it or tapN there is another device (see "foreign /dev/tapN" below).
  [[ $tap == */tap$tapidx || $tap == */rescuevm-tap$tapidx-$(ip netns exec "$SRV" cat "/sys/class/net/rvtap0/macvtap/tap$tapidx/dev" | tr : -) ]] \
    || rv_fail "$what: tap path $tap is not tap$tapidx"
  [[ $(stat -c %t:%T "$tap") == $(printf '%x:%x' $(ip netns exec "$SRV" cat "/sys/class/net/rvtap0/macvtap/tap$tapidx/dev" | tr : ' ')) ]] \
    || rv_fail "$what: $tap is $(stat -c %t:%T "$tap") (hex), not rvtap0's device $(ip netns exec "$SRV" cat "/sys/class/net/rvtap0/macvtap/tap$tapidx/dev")"
  drvpid=$(echo "$claimed" | jq -r .pid)
  [[ $(readlink "/proc/$drvpid/fd/$(echo "$claimed" | jq -r .tap_fd)") == "$tap" ]] \
    || rv_fail "$what: the driver does not hold $tap open"
  [[ $(ip netns exec "$SRV" cat /proc/sys/net/ipv6/conf/up0/disable_ipv6) == 1 ]] \
    || rv_fail "$what: IPv6 is still enabled on up0"
  [[ $(udhcpc_pid) == "$dhcp_pid" ]] || rv_fail "$what: udhcpc $dhcp_pid is gone (it should idle, released)"
  wait_asking no || rv_fail "$what: the DHCP client still asks for a lease (it holds its packet socket)"
  [[ $(stat -c %a "$run/network-claim.json") == 600 ]] || rv_fail "$what: record is not 0600"
  ! pings "$GW" 203.0.113.10 || rv_fail "$what: the server still answers ping on 203.0.113.10"
  ! pings "$GW" 2001:db8::10 || rv_fail "$what: the server still answers ping on 2001:db8::10"
}

released_checks() {
  local what=$1
  wait_dad "$SRV"
  [[ $(snapshot "$SRV") == "$before" ]] \
    || rv_fail "$what: addresses/routes differ: $(diff <(echo "$before") <(snapshot "$SRV") || true)"
  ! ip -n "$SRV" link show rvtap0 >/dev/null 2>&1 || rv_fail "$what: rvtap0 still exists"
  [[ ! -e $run/network-claim.json ]] || rv_fail "$what: the record was not removed"
  [[ $(ip netns exec "$SRV" cat /proc/sys/net/ipv6/conf/up0/disable_ipv6) == 0 ]] \
    || rv_fail "$what: IPv6 not enabled again on up0"
  [[ $(udhcpc_pid) == "$dhcp_pid" ]] || rv_fail "$what: udhcpc $dhcp_pid is not the one serving up0"
  wait_asking yes || rv_fail "$what: the DHCP client does not ask for a lease again"
  pings "$SRV" 203.0.113.1 || rv_fail "$what: the server does not reach 203.0.113.1 again"
  pings "$GW" 203.0.113.10 || rv_fail "$what: the gateway does not reach the server again"
  pings "$SRV" 2001:db8::1 || rv_fail "$what: the server does not reach 2001:db8::1 again"
}

claim_start
claimed_checks "claim"
rv_pass "claim: up0 bare (no IPv4, no IPv6 link-local), passthru macvtap rvtap0 with $MAC, $(echo "$claimed" | jq -r .tap_path) open, udhcpc released (SIGUSR2), no answer to ping"
reply=$(claim_command release)
[[ $(echo "$reply" | jq -r .released) == true ]] || rv_fail "release failed: $reply"
released_checks "release"
rv_pass "release: addresses, routes, sysctls restored exactly, udhcpc asking again (SIGUSR1, same pid), pings work"

# --- an agent that dies holding the claim: a new one releases it from the record --------------
claim_start
claimed_checks "claim before crash"
claim_command abandon >/dev/null
[[ -f $run/network-claim.json ]] || rv_fail "crash: no record left behind"
[[ -z $(ip -n "$SRV" -j addr show dev up0 | jq -r '.[].addr_info[]') ]] || rv_fail "crash: up0 got addresses back by itself"
reply=$(in_srv "$DRV" release --runtime-dir "$run" 2>>"$tmp/claim.log")
[[ $(echo "$reply" | jq -r .released) == true ]] || rv_fail "release from the record failed: $reply"
released_checks "release after crash"
reply=$(in_srv "$DRV" release --runtime-dir "$run" 2>>"$tmp/claim.log")
[[ $(echo "$reply" | jq -r .reason) == "no record" ]] || rv_fail "second release: $reply"
rv_pass "crash recovery: a claim abandoned by its agent is released from $run/network-claim.json"

claim_start
reply=$(claim_command detach)
[[ $(echo "$reply" | jq -r .detached) == true && -f $run/network-claim.json ]] || rv_fail "detach: $reply"
[[ -z $(ip -n "$SRV" -j addr show dev up0 | jq -r '.[].addr_info[]') ]] || rv_fail "detach released the uplink"
ip -n "$SRV" link show rvtap0 >/dev/null 2>&1 || rv_fail "detach removed rvtap0"
reply=$(in_srv "$DRV" release --runtime-dir "$run" 2>>"$tmp/claim.log")
[[ $(echo "$reply" | jq -r .released) == true ]] || rv_fail "release after detach failed: $reply"
released_checks "release after detach"
rv_pass "detach leaves the claim (macvtap, record) for a later agent, which releases it"

# --- no devtmpfs node: the driver makes its own (rescuevm-tapN-MAJOR-MINOR) -------------------
mkdir -p "$tmp/fakedev"
claim_start --dev-dir "$tmp/fakedev"
claimed_checks "claim with mknod"
[[ -c $(echo "$claimed" | jq -r .tap_path) && $(echo "$claimed" | jq -r .tap_path) == "$tmp/fakedev/"* ]] \
  || rv_fail "mknod: no character device made in $tmp/fakedev: $claimed"
reply=$(claim_command release)
[[ $(echo "$reply" | jq -r .released) == true ]] || rv_fail "release failed: $reply"
[[ -z $(ls -A "$tmp/fakedev") ]] || rv_fail "mknod: the node was left behind: $(ls "$tmp/fakedev")"
released_checks "release after mknod"
rv_pass "tap node made with mknod from sysfs major:minor when devtmpfs has none ($(basename "$(echo "$claimed" | jq -r .tap_path)")), and removed"

# --- foreign /dev/tapN: a node of another device under the macvtap's name ----------------------------
# devtmpfs names a macvtap's node tapN after its ifindex, which is per network namespace: with
# macvtaps of the same ifindex in two namespaces /dev/tapN is the first one's, and a node made by
# hand outlives its device. The claim must neither use nor touch such a node: it makes its own
# for the macvtap's major:minor. Every tapN here is foreign: a live device (1:3, /dev/null) or a
# stale macvtap number that no device has.
macvtap_major=$(awk '$2 == "macvtap" { print $1 }' /proc/devices)
[[ -n $macvtap_major ]] || rv_fail "setup: no macvtap major in /proc/devices"
for kind in live stale; do
  rm -rf "$tmp/foreigndev"
  mkdir -p "$tmp/foreigndev"
  for ((n = 1; n <= 64; n++)); do
    if [[ $kind == live ]]; then mknod "$tmp/foreigndev/tap$n" c 1 3
    else
      [[ ! -e /sys/dev/char/$macvtap_major:$((60000 + n)) ]] || rv_fail "setup: $macvtap_major:$((60000 + n)) exists"
      mknod "$tmp/foreigndev/tap$n" c "$macvtap_major" $((60000 + n))
    fi
  done
  foreign=$(stat -c '%n %t:%T' "$tmp/foreigndev"/tap*)
  claim_start --dev-dir "$tmp/foreigndev"
  claimed_checks "claim beside $kind foreign nodes"
  [[ $(echo "$claimed" | jq -r .tap_path) == "$tmp/foreigndev/rescuevm-tap"* ]] \
    || rv_fail "$kind foreign nodes: the driver did not make a node of its own: $claimed"
  [[ $(stat -c '%n %t:%T' "$tmp/foreigndev"/tap*) == "$foreign" ]] || rv_fail "$kind foreign nodes: the claim changed them"
  reply=$(claim_command release)
  [[ $(echo "$reply" | jq -r .released) == true ]] || rv_fail "release failed: $reply"
  [[ -z $(find "$tmp/foreigndev" -name 'rescuevm-*') ]] || rv_fail "$kind foreign nodes: the own node was left: $(ls "$tmp/foreigndev")"
  [[ $(stat -c '%n %t:%T' "$tmp/foreigndev"/tap*) == "$foreign" ]] || rv_fail "$kind foreign nodes: the release changed them"
  released_checks "release beside $kind foreign nodes"
done
grep -q "not rvtap0's device" "$tmp/claim.log" || rv_fail "foreign nodes: the driver did not say why it made its own node"
rv_pass "a foreign tapN (another device, or a stale macvtap number) is neither opened nor changed: the claim uses a node of its own for the macvtap's major:minor, removed on release"

# --- failure midway: rolled back -----------------------------------------------------------------
out=$(in_srv "$DRV" claim --runtime-dir "$run" --dev-dir /proc/rvnet-none --node-dir /proc/rvnet-none 2>>"$tmp/claim.log" </dev/null) || true
[[ $(echo "$out" | jq -r '.refused // ""') == *"cannot create"* ]] || rv_fail "midway failure: $out"
[[ $(snapshot "$SRV") == "$before" ]] || rv_fail "midway failure changed addresses/routes"
! ip -n "$SRV" link show rvtap0 >/dev/null 2>&1 || rv_fail "midway failure: rvtap0 left behind"
[[ ! -e $run/network-claim.json ]] || rv_fail "midway failure: record left behind"
[[ $(udhcpc_pid) == "$dhcp_pid" ]] && wait_asking yes || rv_fail "midway failure: the DHCP client does not ask again"
rv_pass "a claim failing after the macvtap was made rolls back: $(echo "$out" | jq -r .refused)"

# --- refusals change nothing ------------------------------------------------------------------
# No IPv6 here: link-local addresses appearing as links come up would change the snapshots.
ip netns exec "$BAD" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$BAD" link add b0 type veth peer name b0p
ip -n "$BAD" link add b1 type veth peer name b1p
ip -n "$BAD" link set b0 up
ip -n "$BAD" link set b0p up
ip -n "$BAD" addr add 198.51.100.5/24 dev b0
ip -n "$BAD" link add br0 type bridge forward_delay 0
ip -n "$BAD" link set b1 master br0
ip -n "$BAD" link set b1 up
ip -n "$BAD" link set br0 up
bond=no
if ip -n "$BAD" link add bond0 type bond 2>/dev/null; then
  ip -n "$BAD" link add b2 type veth peer name b2p
  ip -n "$BAD" link set b2 master bond0
  bond=yes
fi
refused() { # refused WHAT EXPECTED_TEXT DRIVER_OPTIONS...
  local what=$1 expect=$2 out snap
  shift 2
  snap=$(snapshot "$BAD")
  out=$(ip netns exec "$BAD" "$DRV" claim --runtime-dir "$tmp/badrun" "$@" 2>>"$tmp/claim.log" </dev/null) && true
  [[ $(echo "$out" | jq -r '.refused // ""') == *"$expect"* ]] \
    || rv_fail "$what: expected a refusal saying \"$expect\", got: $out"
  [[ $(snapshot "$BAD") == "$snap" ]] || rv_fail "$what: the refusal changed addresses/routes"
  [[ -z $(ip -n "$BAD" -j link show type macvtap | jq -r '.[]') ]] || rv_fail "$what: a macvtap was left"
  [[ ! -e $tmp/badrun/network-claim.json ]] || rv_fail "$what: a record was left"
  rv_log "refused ($what): $(echo "$out" | jq -r .refused)"
}
refused "no default route, uplink auto" 'no default route' --uplink auto
refused "missing uplink" 'uplink eth7 does not exist' --uplink eth7
refused "bridge port" 'b1 is a port of bridge br0: set network.uplink = "br0"' --uplink b1
ip -n "$BAD" link set b0 down
refused "uplink down" 'uplink b0 is down' --uplink b0
ip -n "$BAD" link set b0 up
if [[ $bond == yes ]]; then
  refused "bond member" 'b2 is a member of bond bond0: set network.uplink = "bond0"' --uplink b2
  rv_pass "refusals (no default route, missing, bridge port, bond member, down) change nothing"
else
  rv_pass "refusals (no default route, missing, bridge port, down) change nothing (this kernel has no bonding driver: the bond-member message is covered by the unit test)"
fi
# An IPv4 address with a finite lifetime is a DHCP lease even without a client running.
[[ $(ip netns exec "$BAD" "$DRV" facts --uplink b0 2>/dev/null | jq .dhcp) == false ]] \
  || rv_fail "facts: b0 with a permanent address is reported as DHCP"
ip -n "$BAD" addr add 198.51.100.6/24 dev b0 valid_lft 600 preferred_lft 600
[[ $(ip netns exec "$BAD" "$DRV" facts --uplink b0 2>/dev/null | jq .dhcp) == true ]] \
  || rv_fail "facts: b0 with a 600 s address lifetime is not reported as DHCP"
rv_pass "an IPv4 address with a finite lifetime counts as DHCP"

ip -n "$SRV" link add rvtap0 link up0 type macvlan mode bridge
snap=$(snapshot "$SRV")
out=$(in_srv "$DRV" claim --runtime-dir "$run" 2>>"$tmp/claim.log" </dev/null) && true
[[ $(echo "$out" | jq -r '.refused // ""') == *"rvtap0 already exists"* ]] || rv_fail "taken macvtap name: $out"
[[ $(snapshot "$SRV") == "$snap" ]] || rv_fail "taken macvtap name: refusal changed something"
ip -n "$SRV" link del rvtap0
wait_dad "$SRV"
rv_pass "an existing rvtap0 is refused, nothing changed"

# --- the test guest on the macvtap, with the server's MAC and IP, pings the gateway --------------
if [[ ${RV_SKIP_GUEST:-} == 1 ]]; then
  rv_log "RV_SKIP_GUEST=1: guest ping not run"
  exit 0
fi
command -v qemu-system-x86_64 >/dev/null || rv_fail "qemu-system-x86_64 missing: run scripts/setup"
RV_GUEST_DIR=$(rv_guest_build)
ip -n "$GW" neigh flush dev gw0
append=$(rv_guest_append "rvtest.net=ip:203.0.113.10/32,gw:203.0.113.1,ip6:2001:db8::10/128,gw6:fe80::1,mac:$MAC rvtest.final=poweroff")
out=$(timeout 240 ip netns exec "$SRV" "$DRV" qemu --runtime-dir "$run" \
  --qemu-arg qemu-system-x86_64 --qemu-arg -machine --qemu-arg q35 --qemu-arg -accel --qemu-arg tcg \
  --qemu-arg -nodefaults --qemu-arg -no-user-config --qemu-arg -m --qemu-arg 512 \
  --qemu-arg -display --qemu-arg none --qemu-arg -no-reboot \
  --qemu-arg -serial --qemu-arg "file:$tmp/serial.log" \
  --qemu-arg -kernel --qemu-arg "$(rv_guest_kernel "$RV_GUEST_DIR")" \
  --qemu-arg -initrd --qemu-arg "$RV_GUEST_DIR/initramfs.cpio.gz" \
  --qemu-arg -append --qemu-arg "$append" \
  --qemu-arg -netdev --qemu-arg tap,id=net0,fd=3 \
  --qemu-arg -device --qemu-arg "virtio-net-pci,netdev=net0,mac=$MAC" \
  2>>"$tmp/claim.log" </dev/null) || rv_fail "guest run failed: $out $(tail -5 "$tmp/claim.log")"
grep -a "RVTEST" "$tmp/serial.log" | sed 's/^/  guest: /' >&2 || true
grep -a -q "RVTEST net dev=eth0 mac=$MAC ip=203.0.113.10/32" "$tmp/serial.log" \
  || rv_fail "guest: no NIC with $MAC configured as 203.0.113.10/32"
grep -a -q "RVTEST ping gw=203.0.113.1 ok" "$tmp/serial.log" || rv_fail "guest: ping 203.0.113.1 failed"
grep -a -q "RVTEST ping gw=fe80::1 ok" "$tmp/serial.log" || rv_fail "guest: ping fe80::1 failed"
ip -n "$GW" neigh show 203.0.113.10 dev gw0 | grep -q -i "lladdr $MAC" \
  || rv_fail "gateway's neighbour table has no 203.0.113.10 at $MAC: $(ip -n "$GW" neigh show)"
[[ $(echo "$out" | tail -1 | jq -r .released) == true ]] || rv_fail "release after the guest: $out"
released_checks "release after the guest"
rv_pass "guest with the server's MAC and IP on the passthru macvtap pings 203.0.113.1 and fe80::1; the gateway sees 203.0.113.10 at $MAC; the host is back afterwards"
