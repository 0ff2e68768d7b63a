#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# agent_network: `rescuevm run` hands a namespace's uplink to the test guest (config drive with the server's network and a secret password) and gives it back exactly.
#
# Namespaces (created here, removed at exit): SRV has veth "up0" (MAC $MAC, 203.0.113.10/32,
# default via 203.0.113.1 reached through an on-link host route, 2001:db8::10/128 with default
# via fe80::1); GW holds the peer with 203.0.113.1/24, fe80::1 and 2001:db8::1/64. The agent
# runs in SRV with the test guest (rvtest.net=configdrive: the guest learns the server's
# network only from the config drive). Checked: the guest pings the gateway with the server's
# MAC and IP; the host's uplink is bare meanwhile; the password never leaks (agent log, QEMU's
# argv, plan --json, files readable by others); a password file readable by others is refused
# with nothing changed; after SIGTERM everything is back; network.mode = "none" changes nothing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rv_require ip jq busybox qemu-system-x86_64 xorriso

[[ -n ${RESCUEVM:-} && -x $RESCUEVM ]] || rv_fail "RESCUEVM is not set to the rescuevm binary (run through meson test)"
MAC=02:00:5e:10:00:10
tmp=$(rv_tmpdir)
chmod 0700 "$tmp"
SRV=$(rv_netns rvan-srv)
GW=$(rv_netns rvan-gw)
in_srv() { ip netns exec "$SRV" "$@"; }

# --- the server and its gateway (as in network_claim.sh) ------------------------------------
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
printf 'nameserver 213.186.33.99\nnameserver 2001:41d0:3:163::1\n' >"$tmp/resolv.conf"

wait_dad() { # IPv6 duplicate address detection takes about a second after an address appears
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -z $(ip -n "$1" -6 addr show tentative) ]] && return 0
    sleep 0.1
  done
  rv_fail "IPv6 addresses in $1 stay tentative: $(ip -n "$1" -6 addr show tentative)"
}
wait_dad "$SRV"
wait_dad "$GW"

# Addresses and routes of a namespace, without what changes by itself (lifetimes, flags such
# as tentative, route expiry), sorted.
snapshot() {
  ip -n "$1" -j addr show | jq -S '[.[] | .ifname as $dev | .addr_info[]
      | {dev: $dev, family: .family, local: .local, prefixlen: .prefixlen, scope: .scope,
         broadcast: .broadcast, label: .label}] | sort_by(.dev, .local)'
  ip -n "$1" -j -4 route show table all | jq -S 'sort_by(.table, .dst, .dev)'
  ip -n "$1" -j -6 route show table all | jq -S 'map(del(.expires)) | sort_by(.table, .dst, .dev)'
}
links() { ip -n "$SRV" -j link show | jq -r '.[].ifname' | sort | tr '\n' ' '; }

pings() { # pings NS ADDR [PING_ARGS...]: 0 when ADDR answers from NS (one retry)
  local ns=$1 addr=$2
  shift 2
  ip netns exec "$ns" busybox ping -c 1 -W 1 "$@" "$addr" >/dev/null 2>&1 ||
    ip netns exec "$ns" busybox ping -c 2 -W 2 "$@" "$addr" >/dev/null 2>&1
}

pings "$SRV" 203.0.113.1 || rv_fail "setup: the server does not reach its gateway 203.0.113.1"
pings "$GW" 203.0.113.10 || rv_fail "setup: the gateway does not reach the server"
before=$(snapshot "$SRV")
before_links=$(links)
[[ $before == *'"prefixlen": 32'* && $before == *'"2001:db8::10"'* && $before == *'"default"'* ]] \
  || rv_fail "setup: the snapshot of $SRV misses its addresses or routes: $before"

# --- guest, disk, password, configuration --------------------------------------------------------
RV_GUEST_DIR=$(rv_guest_build)
disk=$(rv_loop_disk 64M)
# A random password, one line, only characters that grep -F finds verbatim anywhere.
password=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
password="Rv-${password}"
pwfile=$tmp/admin-password
(umask 077; printf '%s\n' "$password" >"$pwfile")
chown root:root "$pwfile"
: >"$tmp/cmdline"
rt=$tmp/rt
rv_cleanup_add rv_kill_qemu_for "$rt"

write_config() { # write_config FILE MODE: the agent's configuration with network.mode = MODE
  cat >"$1" <<EOF
[host]
min_memory = "1GiB"

[vm]
kernel = "$(rv_guest_kernel "$RV_GUEST_DIR")"
initrd = "$RV_GUEST_DIR/initramfs.cpio.gz"
append = "$(rv_guest_append "rvtest.net=configdrive rvtest.ping_count=2 rvtest.final=wait")"
accel = "tcg"
firmware = "bios"
memory = "512MiB"
cpus = 2
display = "none"

[disks]
match = ["${disk#/dev/}"]

[network]
mode = "$2"
uplink = "up0"
resolv_conf = "$tmp/resolv.conf"

[guest]
admin_password_file = "$pwfile"

[paths]
runtime_dir = "$rt"
EOF
}
write_config "$tmp/macvtap.toml" macvtap
write_config "$tmp/none.toml" none
rescuevm() { # rescuevm CONFIG ARGS...: the agent's CLI inside the server namespace
  local cfg=$1
  shift
  in_srv "$RESCUEVM" --config "$cfg" --kernel-cmdline "$tmp/cmdline" "$@"
}

no_password_in() { # no_password_in WHAT FILE...: fail when any FILE holds the password
  local f
  for f in "${@:2}"; do
    ! grep -a -q -F -- "$password" "$f" || rv_fail "password leaked: $1 ($f)"
  done
}

# --- plan: the network facts, the password shown as set only ----------------------------------
rescuevm "$tmp/macvtap.toml" plan --json >"$tmp/plan.json" 2>"$tmp/plan.log" \
  || rv_fail "plan failed ($?): $(tail -5 "$tmp/plan.log")"
no_password_in "plan --json" "$tmp/plan.json" "$tmp/plan.log"
jq -e --arg mac "$MAC" '.. | objects | select(has("uplink") and has("mac")) | select(.uplink == "up0" and .mac == $mac)' \
  "$tmp/plan.json" >/dev/null || rv_fail "plan --json has no network section for up0 with $MAC: $(jq -c . "$tmp/plan.json" | head -c 2000)"
grep -q '203.0.113.10' "$tmp/plan.json" || rv_fail "plan --json does not show 203.0.113.10"
jq -e '.. | objects | select(.name? == "password") | .ok == true' "$tmp/plan.json" >/dev/null \
  || rv_fail "plan --json has no passing password check: $(jq -c '.checks' "$tmp/plan.json")"
rv_pass "plan --json: network of up0 ($MAC, 203.0.113.10), password check passes, password not printed"

# --- run with the uplink handed to the guest ------------------------------------------------
ip -n "$GW" neigh flush dev gw0
# Straight from this shell (no function, no subshell): $! is the agent itself (ip netns exec execs it).
ip netns exec "$SRV" "$RESCUEVM" --config "$tmp/macvtap.toml" --kernel-cmdline "$tmp/cmdline" run >"$tmp/agent.log" 2>&1 </dev/null &
agent=$!
rv_cleanup_kill "$agent"
console=$rt/guest-console.log
rv_wait_for '^RVTEST ping gw=203\.0\.113\.1 ' "$console" 300 \
  || rv_fail "the guest never pinged 203.0.113.1: agent: $(tail -20 "$tmp/agent.log") console: $(grep -a RVTEST "$console" 2>/dev/null | tail -20)"
grep -a RVTEST "$console" | tr -d '\r' | sed 's/^/  guest: /' >&2 || true
grep -a -q -E "^RVTEST configdrive found dev=sr" "$console" || rv_fail "guest: no config drive CD-ROM"
grep -a -q -E "^RVTEST configdrive meta .*admin_pass=set" "$console" || rv_fail "guest: config drive carries no admin_pass"
grep -a -q -i -E "^RVTEST configdrive link .*mac=$MAC dev=eth0" "$console" \
  || rv_fail "guest: network_data.json has no link with $MAC matching its NIC"
grep -a -q -E "^RVTEST configdrive network .*dev=eth0 address=203\.0\.113\.10/32" "$console" \
  || rv_fail "guest: network_data.json did not give eth0 203.0.113.10/32"
grep -a -q -E "^RVTEST ping gw=203\.0\.113\.1 ok" "$console" || rv_fail "guest: ping 203.0.113.1 failed"
ip -n "$GW" neigh show 203.0.113.10 dev gw0 | grep -q -i "lladdr $MAC" \
  || rv_fail "the gateway's neighbour table has no 203.0.113.10 at $MAC: $(ip -n "$GW" neigh show)"
rv_pass "the guest took 203.0.113.10/32 and $MAC from the config drive and pinged 203.0.113.1; the gateway sees 203.0.113.10 at $MAC"

# The host is off the wire: no address on up0, none anywhere in SRV except loopback.
[[ -z $(ip -n "$SRV" -j addr show dev up0 | jq -r '.[].addr_info[]') ]] \
  || rv_fail "during the run up0 still carries addresses: $(ip -n "$SRV" addr show dev up0)"
[[ -z $(ip -n "$SRV" -j addr show | jq -r '.[] | select(.ifname != "lo") | .addr_info[]') ]] \
  || rv_fail "during the run the server namespace holds addresses: $(ip -n "$SRV" addr show)"
ip -n "$SRV" -d -j link show rvtap0 | jq -e '.[0].linkinfo.info_kind == "macvtap" and .[0].linkinfo.info_data.mode == "passthru"' >/dev/null \
  || rv_fail "during the run there is no passthru macvtap rvtap0: $(ip -n "$SRV" -d link show)"
# Who answers for 203.0.113.10 now is the guest: it answers while QEMU runs, not while it is frozen.
qemu_pid=$(jq -r .pid "$rt/qemu.json")
[[ $qemu_pid =~ ^[0-9]+$ && $(tr '\0' ' ' <"/proc/$qemu_pid/cmdline") == *qemu-system* ]] \
  || rv_fail "no QEMU found from $rt/qemu.json"
pings "$GW" 203.0.113.10 || rv_fail "during the run nobody answers ping on 203.0.113.10 (the guest should)"
kill -STOP "$qemu_pid"
if ip netns exec "$GW" busybox ping -c 2 -W 2 203.0.113.10 >/dev/null 2>&1; then
  kill -CONT "$qemu_pid"
  rv_fail "203.0.113.10 answers while the guest is frozen: the host still speaks on the uplink"
fi
kill -CONT "$qemu_pid"
pings "$GW" 203.0.113.10 || rv_fail "the guest no longer answers after being resumed"
rv_pass "during the run up0 carries no address, rvtap0 is a passthru macvtap, and 203.0.113.10 answers only while the guest runs"

# --- the password stays secret ------------------------------------------------------------------
tr '\0' '\n' <"/proc/$qemu_pid/cmdline" >"$tmp/qemu.cmdline"
no_password_in "QEMU's argv" "$tmp/qemu.cmdline"
grep -q -- '-netdev' "$tmp/qemu.cmdline" && grep -q 'fd=3' "$tmp/qemu.cmdline" \
  || rv_fail "QEMU's argv has no -netdev tap with fd=3: $(tr '\n' ' ' <"$tmp/qemu.cmdline")"
[[ $(stat -c '%a %U' "$rt/config-2.iso") == "600 root" ]] \
  || rv_fail "config-2.iso is not 0600 root: $(stat -c '%a %U' "$rt/config-2.iso")"
readable=$(find "$rt" -type f -perm -o=r)
for f in $readable; do no_password_in "file readable by others" "$f"; done
# Nor anywhere under runtime_dir except the config drive (0600, the guest's copy).
while IFS= read -r f; do
  [[ $f == "$rt/config-2.iso" ]] || no_password_in "runtime_dir file" "$f"
done < <(find "$rt" -type f)
rv_pass "the password is not in QEMU's argv nor in any runtime_dir file but the 0600 config drive ($(echo $readable | wc -w) files readable by others checked)"

# --- SIGTERM: the agent ends, the host has its uplink back -------------------------------------
kill -TERM "$agent"
rc=0
wait "$agent" || rc=$?
[[ $rc == 0 ]] || rv_fail "the agent exited $rc after SIGTERM: $(tail -20 "$tmp/agent.log")"
no_password_in "the agent's log" "$tmp/agent.log"
! kill -0 "$qemu_pid" 2>/dev/null || rv_fail "QEMU $qemu_pid still runs after the agent stopped"
wait_dad "$SRV"
[[ $(snapshot "$SRV") == "$before" ]] \
  || rv_fail "after the run addresses/routes differ: $(diff <(echo "$before") <(snapshot "$SRV") || true)"
[[ $(links) == "$before_links" ]] || rv_fail "after the run links differ: $before_links -> $(links)"
[[ $(in_srv cat /proc/sys/net/ipv6/conf/up0/disable_ipv6) == 0 ]] || rv_fail "IPv6 not enabled again on up0"
pings "$SRV" 203.0.113.1 || rv_fail "after the run the server does not reach 203.0.113.1"
pings "$SRV" 2001:db8::1 || rv_fail "after the run the server does not reach 2001:db8::1"
pings "$GW" 203.0.113.10 || rv_fail "after the run the gateway does not reach the server"
rv_pass "SIGTERM: agent exit 0, QEMU gone, addresses/routes/links of $SRV exactly as before, pings work, password not in the agent's log"

# --- a password file readable by others is refused, nothing changed ----------------------------
chmod 0644 "$pwfile"
rc=0
rescuevm "$tmp/macvtap.toml" plan --json >"$tmp/plan-bad.json" 2>"$tmp/plan-bad.log" || rc=$?
[[ $rc == 3 ]] || rv_fail "plan with a 0644 password file exited $rc, not 3"
grep -q -i 'readable by nobody else' "$tmp/plan-bad.json" "$tmp/plan-bad.log" \
  || rv_fail "plan does not say the password file is readable by others: $(cat "$tmp/plan-bad.log") $(jq -c .checks "$tmp/plan-bad.json" 2>/dev/null)"
no_password_in "plan with a bad password file" "$tmp/plan-bad.json" "$tmp/plan-bad.log"
rc=0
timeout 120 ip netns exec "$SRV" "$RESCUEVM" --config "$tmp/macvtap.toml" --kernel-cmdline "$tmp/cmdline" run \
  >"$tmp/agent-bad.log" 2>&1 </dev/null || rc=$?
[[ $rc == 3 ]] || rv_fail "run with a 0644 password file exited $rc, not 3: $(tail -5 "$tmp/agent-bad.log")"
grep -q -i 'readable by nobody else' "$tmp/agent-bad.log" \
  || rv_fail "run does not say the password file is readable by others: $(tail -5 "$tmp/agent-bad.log")"
no_password_in "run with a bad password file" "$tmp/agent-bad.log"
[[ $(snapshot "$SRV") == "$before" && $(links) == "$before_links" ]] \
  || rv_fail "the refused run changed the namespace: $(diff <(echo "$before") <(snapshot "$SRV") || true) $(links)"
for c in /proc/[0-9]*/cmdline; do
  [[ $(tr '\0' ' ' 2>/dev/null <"$c") != *qemu-system*"$rt"* ]] || rv_fail "the refused run started QEMU (${c%/cmdline})"
done
rv_pass "a password file readable by others: plan and run exit 3 with the reason, namespace unchanged"
chmod 0600 "$pwfile"

# --- network.mode = "none": a VM without a NIC, the namespace untouched ------------------------
rm -f "$console"
# Straight from this shell (no function, no subshell): $! is the agent itself (ip netns exec execs it).
ip netns exec "$SRV" "$RESCUEVM" --config "$tmp/none.toml" --kernel-cmdline "$tmp/cmdline" run >"$tmp/agent-none.log" 2>&1 </dev/null &
agent=$!
rv_cleanup_kill "$agent"
rv_wait_for '^RVTEST (configdrive done|configdrive missing|ready)' "$console" 300 \
  || rv_fail "mode none: the guest did not come up: $(tail -20 "$tmp/agent-none.log")"
rv_wait_for '^RVTEST (ready|wait)' "$console" 120 || rv_fail "mode none: the guest did not finish its setup"
grep -a RVTEST "$console" | tr -d '\r' | sed 's/^/  guest(none): /' >&2 || true
qemu_pid=$(jq -r .pid "$rt/qemu.json")
tr '\0' '\n' <"/proc/$qemu_pid/cmdline" >"$tmp/qemu-none.cmdline"
! grep -q -- '-netdev' "$tmp/qemu-none.cmdline" || rv_fail "mode none: QEMU got a -netdev"
! grep -a -q -E '^RVTEST configdrive link .*dev=eth' "$console" || rv_fail "mode none: the guest has a NIC"
grep -a -q -E '^RVTEST configdrive done links=0 networks=0' "$console" \
  || rv_fail "mode none: the config drive still describes a network"
! grep -a -q -E '^RVTEST ping .* ok' "$console" || rv_fail "mode none: the guest reached a gateway"
[[ $(snapshot "$SRV") == "$before" && $(links) == "$before_links" ]] \
  || rv_fail "mode none changed the namespace during the run: $(diff <(echo "$before") <(snapshot "$SRV") || true) $(links)"
pings "$GW" 203.0.113.10 || rv_fail "mode none: the server no longer answers the gateway"
kill -TERM "$agent"
rc=0
wait "$agent" || rc=$?
[[ $rc == 0 ]] || rv_fail "mode none: the agent exited $rc after SIGTERM: $(tail -10 "$tmp/agent-none.log")"
no_password_in "the agent's log (mode none)" "$tmp/agent-none.log"
[[ $(snapshot "$SRV") == "$before" && $(links) == "$before_links" ]] || rv_fail "mode none changed the namespace"
rv_pass "network.mode = none: the VM runs without a NIC, the namespace keeps its addresses, routes and links"
