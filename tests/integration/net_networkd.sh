#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# net_networkd: a real systemd-networkd (in a namespace, with dbus) lets go of the uplink for the session through a runtime drop-in and takes it back exactly, static and DHCP; networkd plus a second client is refused by facts, claim, plan and run alike.
#
# The server host (net_lib.sh: network namespace, private /run, read-only /sys so networkd
# needs no udev) runs dbus-daemon and /lib/systemd/systemd-networkd. Its uplink up0 (MAC
# $MAC) is configured by /run/systemd/network/50-up0.network: first statically
# (203.0.113.10/32, on-link route to 203.0.113.1, default via it; 2001:db8::10/128, default via
# fe80::1), then by DHCP from busybox udhcpd in the gateway namespace. The claim is made by the
# test driver ($NET_DRIVER, the same UplinkClaim `rescuevm run` uses) and `rescuevm plan`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/net_lib.sh"
rv_require ip jq busybox nsenter unshare networkctl dbus-daemon
[[ -x /lib/systemd/systemd-networkd ]] || rv_fail "systemd-networkd is missing: install systemd"
[[ -x $NL_DRIVER ]] || rv_fail "net_driver not found at $NL_DRIVER: build the tree (ninja) first"
[[ -n ${RESCUEVM:-} && -x $RESCUEVM ]] || rv_fail "RESCUEVM is not set to the rescuevm binary (run through meson test)"
MAC=02:00:5e:10:00:10
run=$NL_TMP/run
chmod 0700 "$NL_TMP"

nl_host rvnd-srv
nl_gateway rvnd-gw
nl_link up0 gw0 "$MAC" 203.0.113
ip -n "$NL_GW" addr add fe80::1/64 dev gw0 nodad
ip -n "$NL_GW" addr add 2001:db8::1/64 dev gw0 nodad
nl_dhcp_server gw0 203.0.113 "$MAC"
nl_networkd_start

admin_state() { nl_in networkctl --json=short status "$1" 2>/dev/null | jq -r '.AdministrativeState // "none"'; }
wait_state() { # IFACE STATE SEC
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    [[ $(admin_state "$1") == "$2" ]] && return 0
    sleep 0.2
  done
  return 1
}
use_network() { # the .network file for up0, then networkd configures it
  printf '%s\n' "$@" | nl_in tee /run/systemd/network/50-up0.network >/dev/null
  nl_in networkctl reload
  nl_in networkctl reconfigure up0
}

static_network=(
  "[Match]" "Name=up0" ""
  "[Network]" "IPv6AcceptRA=no" "LinkLocalAddressing=ipv6" "Address=203.0.113.10/32" "Address=2001:db8::10/128" ""
  "[Route]" "Destination=203.0.113.1/32" "Scope=link" ""
  "[Route]" "Gateway=203.0.113.1" ""
  "[Route]" "Gateway=fe80::1")
dhcp_network=(
  "[Match]" "Name=up0" ""
  "[Network]" "DHCP=ipv4" "IPv6AcceptRA=no" "LinkLocalAddressing=no" ""
  "[DHCPv4]" "ClientIdentifier=mac" "SendRelease=no")

# claimed_checks WHAT: networkd leaves up0 and the macvtap alone, the host is off the wire.
claimed_checks() {
  local what=$1 dropin=/run/systemd/network/0-rescuevm-up0.network
  nl_in test -f "$dropin" || rv_fail "$what: no drop-in $dropin"
  [[ $(nl_in cat "$dropin") == *$'[Match]\nName=up0 rvtap0\n\n[Link]\nUnmanaged=yes'* ]] \
    || rv_fail "$what: the drop-in does not match up0 and rvtap0 as unmanaged: $(nl_in cat "$dropin")"
  [[ $(admin_state up0) == unmanaged ]] || rv_fail "$what: networkctl says up0 is $(admin_state up0)"
  wait_state rvtap0 unmanaged 5 || rv_fail "$what: networkctl says rvtap0 is $(admin_state rvtap0)"
  sleep 2 # give networkd time to (wrongly) put something back
  [[ -z $(nl_addresses up0) && -z $(nl_addresses rvtap0) ]] \
    || rv_fail "$what: addresses on the uplink: up0 [$(nl_addresses up0)] rvtap0 [$(nl_addresses rvtap0)]"
  ! nl_pings "$NL_GW" 203.0.113.10 || rv_fail "$what: the host still answers on 203.0.113.10"
}

# given_back WHAT STATE: networkd manages up0 again, addresses and routes as before.
given_back() {
  local what=$1
  nl_in test ! -e /run/systemd/network/0-rescuevm-up0.network || rv_fail "$what: the drop-in is still there"
  local state
  state=$(admin_state up0)
  [[ $state == configured || $state == configuring ]] || rv_fail "$what: networkctl says up0 is $state after the release: $(tail -20 "$NL_TMP/networkd.log")"
  ! ip -n "$NL_NS" link show rvtap0 >/dev/null 2>&1 || rv_fail "$what: rvtap0 still exists"
  nl_wait_snapshot "$before" 20 up0 \
    || rv_fail "$what: addresses/routes differ: $(diff <(echo "$before") <(nl_snapshot up0) || true)"
  wait_state up0 configured 20 || rv_fail "$what: up0 is $(admin_state up0), not configured again"
  nl_pings "$NL_GW" 203.0.113.10 || rv_fail "$what: the gateway does not reach the host again"
}

# --- networkd, static -------------------------------------------------------------------------
use_network "${static_network[@]}"
wait_state up0 configured 20 || rv_fail "setup: networkd did not configure up0: $(admin_state up0) $(cat "$NL_TMP/networkd.log")"
nl_wait_dad "$NL_NS"
nl_wait_dad "$NL_GW"
nl_pings "$NL_GW" 203.0.113.10 || rv_fail "setup: the gateway does not reach the host"
before=$(nl_snapshot up0)
[[ $before == *'"203.0.113.10"'* && $before == *'"2001:db8::10"'* && $before == *'"fe80::1"'* ]] \
  || rv_fail "setup: the snapshot misses addresses or routes: $before"

facts=$(nl_driver facts --uplink up0)
[[ $(echo "$facts" | jq -c '[.networkd.running, .networkd.admin_state, .networkd.network_file, .handover.steps, .problem]') \
  == '[true,"configured","/run/systemd/network/50-up0.network",["networkd"],""]' ]] \
  || rv_fail "facts: networkd not seen managing up0: $(echo "$facts" | jq -c '{networkd, handover, problem}')"
nl_config "$NL_TMP/plan.toml" up0 "$NL_TMP/rt"
rc=0
nl_rescuevm "$NL_TMP/plan.toml" plan --json >"$NL_TMP/plan.json" 2>"$NL_TMP/plan.log" || rc=$?
jq -e '.checks[] | select(.name == "network") | .ok and (.message | contains("/run/systemd/network/0-rescuevm-up0.network with Unmanaged=yes"))' \
  "$NL_TMP/plan.json" >/dev/null || rv_fail "plan does not accept networkd and say how: rc $rc $(jq -c '.checks' "$NL_TMP/plan.json")"
jq -e '.network.handover.steps[0].kind == "networkd"' "$NL_TMP/plan.json" >/dev/null \
  || rv_fail "plan --json has no networkd hand-over step: $(jq -c '.network.handover' "$NL_TMP/plan.json")"
rv_pass "facts and plan: systemd-networkd manages up0 (configured, 50-up0.network); plan accepts it: $(jq -r '.checks[] | select(.name == "network") | .message' "$NL_TMP/plan.json")"

nl_claim_start "$run" --uplink up0
claimed_checks "claim (static)"
reply=$(nl_claim_command release)
[[ $(echo "$reply" | jq -r .released) == true ]] || rv_fail "release failed: $reply $(tail -5 "$NL_TMP/driver.log")"
given_back "release (static)"
rv_pass "networkd, static: up0 and rvtap0 unmanaged during the claim (drop-in, networkctl), then networkd configures up0 again; addresses and routes exactly as before"

# An agent that dies holding the claim: the next one gives up0 back to networkd from the record.
nl_claim_start "$run" --uplink up0
claim_command_out=$(nl_claim_command abandon)
[[ $(admin_state up0) == unmanaged && -f $run/network-claim.json ]] || rv_fail "crash: the claim did not stay"
reply=$(nl_driver release --runtime-dir "$run")
[[ $(echo "$reply" | jq -r .released) == true ]] || rv_fail "release from the record failed: $reply $claim_command_out"
given_back "release after a crash (static)"
rv_pass "networkd, static: a claim left by a dead agent is given back to networkd from the record"

# --- networkd, DHCP ---------------------------------------------------------------------------
use_network "${dhcp_network[@]}"
for ((i = 0; i < 100; i++)); do
  [[ $(nl_addresses up0) == 203.0.113.10/24 && $(ip -n "$NL_NS" -4 route show default) == *203.0.113.1* ]] && break
  sleep 0.2
done
[[ $(nl_addresses up0) == 203.0.113.10/24 ]] || rv_fail "setup: networkd got no DHCP lease: [$(nl_addresses up0)]"
wait_state up0 configured 20 || rv_fail "setup: up0 is $(admin_state up0)"
before=$(nl_snapshot up0)
facts=$(nl_driver facts --uplink up0)
[[ $(echo "$facts" | jq -c '[.networkd.dhcp_lease, .dhcp, .handover.steps]') == '[true,true,["networkd"]]' ]] \
  || rv_fail "facts: networkd's DHCP lease not seen: $(echo "$facts" | jq -c '{networkd, dhcp, handover}')"
acks=$(nl_acks gw0)
nl_claim_start "$run" --uplink up0
claimed_checks "claim (DHCP)"
reply=$(nl_claim_command release)
[[ $(echo "$reply" | jq -r .released) == true ]] || rv_fail "release failed: $reply"
given_back "release (DHCP)"
for ((i = 0; i < 50; i++)); do (($(nl_acks gw0) > acks)) && break; sleep 0.2; done
(($(nl_acks gw0) > acks)) || rv_fail "networkd did not ask the DHCP server again after the release"
rv_pass "networkd, DHCP: lease seen as DHCP; unmanaged during the claim; networkd renews its lease after it ($(nl_acks gw0) ACKs from the server); addresses and routes as before"

# --- networkd and a second client on the same uplink: refused everywhere -----------------------
nl_in busybox udhcpc -f -i up0 -s /bin/true -T 3 -A 3 >/dev/null 2>&1 &
rv_cleanup_kill $!
for ((i = 0; i < 50; i++)); do [[ $(nl_driver facts --uplink up0 | jq -r .dhcp_client) == udhcpc* ]] && break; sleep 0.1; done
nl_refused_everywhere "networkd and udhcpc" up0 "is served by both systemd-networkd (/run/systemd/network/50-up0.network) and udhcpc pid"
rv_pass "systemd-networkd and udhcpc both serving up0: facts, claim, plan and run refuse with the same message, nothing changed"
