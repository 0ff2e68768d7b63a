#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# net_dhcp_clients: dhclient, dhcpcd (per interface and as a manager of two interfaces) and busybox udhcpc let go of the uplink through their own controls and serve it again after; unsupported stacks are refused by facts, claim, plan and run alike.
#
# Each case gets a fresh server host (net_lib.sh: network namespace, private /run,
# /var/lib/dhcp, /var/lib/dhcpcd, resolv.conf and dhcpcd.conf) and a gateway namespace with
# busybox udhcpd leasing 203.0.113.10/24 to the uplink up0 (MAC $MAC). The DHCP client runs
# in the server host as a rescue image would start it; the claim is made by the test driver
# ($NET_DRIVER: the UplinkClaim `rescuevm run` uses). Checked each time: during the claim the
# client has let go (stopped, or released and idle) and nothing puts an address back on up0
# or rvtap0; after the release addresses and routes are as before and the client serves up0
# again (the DHCP server acknowledges it anew).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/net_lib.sh"
rv_require ip jq busybox nsenter unshare dhclient dhcpcd
[[ -x $NL_DRIVER ]] || rv_fail "net_driver not found at $NL_DRIVER: build the tree (ninja) first"
[[ -n ${RESCUEVM:-} && -x $RESCUEVM ]] || rv_fail "RESCUEVM is not set to the rescuevm binary (run through meson test)"
MAC=02:00:5e:10:00:10
MAC1=02:00:5e:10:00:11
TOP=$NL_TMP
chmod 0700 "$TOP"

new_case() { # NAME: a fresh server host and gateway, up0 on DHCP from gw0
  NL_TMP=$TOP/$1
  mkdir -p "$NL_TMP"
  nl_host "rvdc-$1"
  nl_gateway "rvdc-gw"
  nl_link up0 gw0 "$MAC" 203.0.113
  nl_dhcp_server gw0 203.0.113 "$MAC"
  run=$NL_TMP/run
}

end_case() { # the namespaces go, with every process in them
  local ns
  for ns in "$NL_NS" "$NL_GW"; do
    ip netns pids "$ns" | xargs -r kill -9
    ip netns del "$ns"
  done
}

wait_lease() { # IF NET [any]: until IF has NET.10/24 and a default route via NET.1 (with
  local i       # "any": a default route on any interface; one dhclient for two sets only one)
  for ((i = 0; i < 150; i++)); do
    [[ $(nl_addresses "$1") == "$2.10/24" && -n $(ip -n "$NL_NS" -4 route show default) ]] \
      && [[ ${3:-} == any || $(ip -n "$NL_NS" -4 route show default dev "$1") == *"$2.1"* ]] && return 0
    sleep 0.2
  done
  rv_fail "$1 got no lease from $2.1: [$(nl_addresses "$1")] $(ip -n "$NL_NS" -4 route)"
}

check_facts() { # NAME STEP
  facts=$(nl_driver facts --uplink up0)
  [[ $(echo "$facts" | jq -c '[.dhcp_clients[0].name, .dhcp, .handover.steps, .problem]') == "[\"$1\",true,[\"$2\"],\"\"]" ]] \
    || rv_fail "facts: $1 not seen serving up0 as a $2 step: $(echo "$facts" | jq -c '{dhcp_clients, handover, problem}')"
}

bare() { # WHAT: nothing of the host on up0 or rvtap0, also after a while
  sleep 3
  [[ -z $(nl_addresses up0) && -z $(nl_addresses rvtap0) ]] \
    || rv_fail "$1: addresses came back: up0 [$(nl_addresses up0)] rvtap0 [$(nl_addresses rvtap0)]"
  ip -n "$NL_NS" -d -j link show rvtap0 | jq -e '.[0].linkinfo.info_data.mode == "passthru"' >/dev/null \
    || rv_fail "$1: no passthru macvtap rvtap0"
  ! nl_pings "$NL_GW" 203.0.113.10 || rv_fail "$1: the host still answers on 203.0.113.10"
}

released() { # WHAT ACKS_BEFORE: as before, and the server heard from the client again
  local i
  [[ $(echo "$reply" | jq -r .released) == true ]] || rv_fail "$1: release failed: $reply $(tail -5 "$NL_TMP/driver.log"; [[ ! -f $NL_TMP/manager.log ]] || grep -v -e run-hooks -e control_free "$NL_TMP/manager.log" | tail -25)"
  nl_wait_snapshot "$before" 20 up0 || rv_fail "$1: addresses/routes differ: $(diff <(echo "$before") <(nl_snapshot up0) || true)"
  for ((i = 0; i < 100; i++)); do (($(nl_acks gw0) > $2)) && break; sleep 0.2; done
  (($(nl_acks gw0) > $2)) || rv_fail "$1: the client did not ask the DHCP server again"
  nl_pings "$NL_GW" 203.0.113.10 || rv_fail "$1: the gateway does not reach the host again"
  [[ ! -e $run/network-claim.json ]] || rv_fail "$1: the record is still there"
}

pids_of() { # PATTERN: pids in the server host whose command line matches
  local p
  for p in $(ip netns pids "$NL_NS"); do
    [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") == $1 ]] && echo "$p"
  done
  return 0
}

# --- dhclient, as ifupdown starts it ------------------------------------------------------------
new_case dhclient
dhclient_args=(-4 -v -i -pf /run/dhclient.up0.pid -lf /var/lib/dhcp/dhclient.up0.leases -I -df /var/lib/dhcp/dhclient6.up0.leases up0)
timeout 60 nsenter -t "$NL_PID" -m -n -u -- dhclient "${dhclient_args[@]}" >"$NL_TMP/dhclient.log" 2>&1 \
  || rv_fail "setup: dhclient failed: $(tail -5 "$NL_TMP/dhclient.log")"
wait_lease up0 203.0.113
nl_wait_dad "$NL_NS"
before=$(nl_snapshot up0)
old=$(nl_in cat /run/dhclient.up0.pid)
check_facts dhclient dhclient
acks=$(nl_acks gw0)
nl_claim_start "$run" --uplink up0
[[ -z $(pids_of "*dhclient -*up0 ") ]] || rv_fail "claim: dhclient still runs: $(pids_of "*dhclient -*up0 ")"
bare "claim (dhclient)"
reply=$(nl_claim_command release)
released "release (dhclient)" "$acks"
new=$(nl_in cat /run/dhclient.up0.pid)
[[ $new != "$old" && $(tr '\0' ' ' <"/proc/$new/cmdline") == */dhclient" -4 -v -i -I -nw -pf /run/dhclient.up0.pid -lf /var/lib/dhcp/dhclient.up0.leases -df /var/lib/dhcp/dhclient6.up0.leases up0 " ]] \
  || rv_fail "release: dhclient was not started again with its own files: pid $new: $(tr '\0' ' ' <"/proc/$new/cmdline" 2>/dev/null)"
rv_pass "dhclient (ifupdown-style): stopped by dhclient -x, started again as dhclient -nw with the same pid and lease files (pid $old -> $new); addresses and routes as before, lease renewed"

# A dead agent's claim: the next one starts dhclient from the record's files, not from a command line.
acks=$(nl_acks gw0)
nl_claim_start "$run" --uplink up0
nl_claim_command abandon >/dev/null
[[ -z $(pids_of "*dhclient -*up0 ") && -f $run/network-claim.json ]] || rv_fail "crash: the claim did not stay"
! grep -q -e '"argv"' -e 'cmdline' "$run/network-claim.json" || rv_fail "crash: the record holds a command line"
reply=$(nl_driver release --runtime-dir "$run")
released "release after a crash (dhclient)" "$acks"
[[ -n $(pids_of "*/dhclient *-pf /run/dhclient.up0.pid*") ]] \
  || rv_fail "crash: dhclient not started again: $(tail -5 "$NL_TMP/driver.log"; for p in $(ip netns pids "$NL_NS"); do tr '\0' ' ' <"/proc/$p/cmdline"; echo; done)"
rv_pass "dhclient: a claim left by a dead agent is given back from the record (hand-over steps, no command line)"
end_case

# --- dhcpcd for the uplink alone ----------------------------------------------------------------------
new_case dhcpcd
nl_in dhcpcd -4 -b up0 >"$NL_TMP/dhcpcd.log" 2>&1 || rv_fail "setup: dhcpcd failed: $(cat "$NL_TMP/dhcpcd.log")"
wait_lease up0 203.0.113
sleep 1
nl_wait_dad "$NL_NS"
before=$(nl_snapshot up0)
check_facts dhcpcd dhcpcd
[[ $(echo "$facts" | jq -c '[.dhcp_clients[0].family, .dhcp_clients[0].pid_file]') == '["ipv4","/run/dhcpcd/up0-4.pid"]' ]] \
  || rv_fail "facts: dhcpcd -4 for up0 not recognised: $(echo "$facts" | jq -c .dhcp_clients)"
acks=$(nl_acks gw0)
nl_claim_start "$run" --uplink up0
[[ -z $(pids_of "dhcpcd: up0*") ]] || rv_fail "claim: dhcpcd still runs"
bare "claim (dhcpcd)"
reply=$(nl_claim_command release)
released "release (dhcpcd)" "$acks"
[[ -n $(pids_of "dhcpcd: up0*") ]] || rv_fail "release: dhcpcd for up0 was not started again"
rv_pass "dhcpcd -4 for up0 alone: stopped by dhcpcd -4 -x up0, started again by dhcpcd -4 -b up0; addresses and routes as before, lease renewed"
end_case

# --- a dhcpcd manager serving up0 and up1 ------------------------------------------------------------
new_case manager
nl_link up1 gw1 "$MAC1" 198.51.100
nl_dhcp_server gw1 198.51.100 "$MAC1"
nl_in dhcpcd -b -d -j "$NL_TMP/manager.log" >"$NL_TMP/dhcpcd.log" 2>&1 \
  || rv_fail "setup: the dhcpcd manager failed: $(cat "$NL_TMP/dhcpcd.log")"
wait_lease up0 203.0.113
wait_lease up1 198.51.100
sleep 1
nl_wait_dad "$NL_NS"
before=$(nl_snapshot up0)
before1=$(nl_snapshot up1)
manager=$(nl_in cat /run/dhcpcd/pid)
check_facts dhcpcd dhcpcd-manager
acks=$(nl_acks gw0)
acks1=$(nl_acks gw1)
nl_claim_start "$run" --uplink up0
bare "claim (dhcpcd manager)"
[[ $(nl_snapshot up1) == "$before1" ]] || rv_fail "claim: the manager's other interface up1 changed: $(nl_snapshot up1)"
[[ $(nl_in cat /run/dhcpcd/pid) == "$manager" ]] && kill -0 "$manager" || rv_fail "claim: the dhcpcd manager was stopped"
# (Not `dhcpcd -U rvtap0`: dhcpcd 9.4 answers no command after that one until it restarts.)
grep -q "control command: dhcpcd -x rvtap0" "$NL_TMP/manager.log" && grep -q "rvtap0: removing interface" "$NL_TMP/manager.log" \
  || rv_fail "claim: the manager was not told to leave rvtap0: $(grep rvtap0 "$NL_TMP/manager.log")"
# It sees rvtap0 appear before it is told to leave it: it may try to add a link-local
# address at carrier (the kernel refuses: IPv6 was off on rvtap0 before it went up), but it
# never sends or configures anything there.
! grep -q -E "rvtap0: (leased|probing|soliciting|sending|adding IP address|adding route|adding default route)" "$NL_TMP/manager.log" \
  || rv_fail "claim: the manager used rvtap0: $(grep rvtap0 "$NL_TMP/manager.log")"
[[ $(nl_in cat /proc/sys/net/ipv6/conf/rvtap0/disable_ipv6) == 1 ]] || rv_fail "claim: IPv6 is on on rvtap0"
reply=$(nl_claim_command release)
released "release (dhcpcd manager)" "$acks"
[[ $(nl_snapshot up1) == "$before1" ]] || rv_fail "release: up1 changed"
[[ $(nl_in cat /run/dhcpcd/pid) == "$manager" ]] && kill -0 "$manager" || rv_fail "release: not the same manager"
rv_pass "dhcpcd manager of up0 and up1: -x up0 and -x rvtap0 through /run/dhcpcd/sock, -n up0 after; up1 kept its lease ($(nl_acks gw1) ACKs there, $acks1 before) and the manager (pid $manager) ran throughout"
end_case

# --- busybox udhcpc, as an initramfs runs it -------------------------------------------------------
new_case udhcpc
cat >"$NL_TMP/udhcpc.script" <<EOF
#!/bin/sh
echo "\$1 \${ip:-}" >>"$NL_TMP/udhcpc.events"
case "\$1" in
  deconfig) ip -4 addr flush dev "\$interface" ;;
  bound|renew)
    ip -4 addr flush dev "\$interface"
    ip -4 addr add "\$ip/\$mask" dev "\$interface"
    [ -n "\$router" ] && ip -4 route replace default via "\${router%% *}" dev "\$interface" ;;
esac
exit 0
EOF
chmod 0755 "$NL_TMP/udhcpc.script"
nl_in busybox udhcpc -f -i up0 -s "$NL_TMP/udhcpc.script" -t 5 -T 1 >"$NL_TMP/udhcpc.log" 2>&1 </dev/null &
rv_cleanup_kill $!
wait_lease up0 203.0.113
sleep 1
nl_wait_dad "$NL_NS"
before=$(nl_snapshot up0)
udhcpc=$(pids_of "busybox udhcpc -f -i up0*")
check_facts udhcpc udhcpc
acks=$(nl_acks gw0)
nl_claim_start "$run" --uplink up0
bare "claim (udhcpc)"
[[ $(pids_of "busybox udhcpc -f -i up0*") == "$udhcpc" ]] || rv_fail "claim: udhcpc $udhcpc is not there any more"
[[ $(tail -1 "$NL_TMP/udhcpc.events") == "deconfig "* ]] || rv_fail "claim: udhcpc did not release (events: $(cat "$NL_TMP/udhcpc.events"))"
grep -q "entering released state" "$NL_TMP/udhcpc.log" || rv_fail "claim: udhcpc did not say it released: $(cat "$NL_TMP/udhcpc.log")"
reply=$(nl_claim_command release)
released "release (udhcpc)" "$acks"
[[ $(pids_of "busybox udhcpc -f -i up0*") == "$udhcpc" ]] || rv_fail "release: not the same udhcpc"
[[ $(tail -1 "$NL_TMP/udhcpc.events") == "bound 203.0.113.10" ]] || rv_fail "release: udhcpc did not bind again (events: $(cat "$NL_TMP/udhcpc.events"))"
rv_pass "busybox udhcpc pid $udhcpc: released its lease and idled during the claim (SIGUSR2), bound 203.0.113.10 again after (SIGUSR1); addresses and routes as before"
end_case

# --- stacks that cannot hand the uplink over: refused everywhere, nothing changed ---------------------
new_case refused
nl_link up1 gw1 "$MAC1" 198.51.100
nl_dhcp_server gw1 198.51.100 "$MAC1"
timeout 60 nsenter -t "$NL_PID" -m -n -u -- dhclient -v -pf /run/dhclient.pid -lf /var/lib/dhcp/dhclient.leases up0 up1 \
  >"$NL_TMP/dhclient.log" 2>&1 || rv_fail "setup: dhclient failed: $(tail -5 "$NL_TMP/dhclient.log")"
wait_lease up0 203.0.113 any
wait_lease up1 198.51.100 any
sleep 1 # (as before the other snapshots: let the client finish its bound script)
nl_refused_everywhere "one dhclient for up0 and up1" up0 "serves up0, up1 in one process: rescuevm could only stop it for up0 by stopping it for all of them"
nl_in dhclient -x -pf /run/dhclient.pid -lf /var/lib/dhcp/dhclient.leases up0 up1 >/dev/null 2>&1
timeout 60 nsenter -t "$NL_PID" -m -n -u -- dhclient -pf /run/dhclient.up0.pid -lf /var/lib/dhcp/dhclient.up0.leases up0 \
  >"$NL_TMP/dhclient.log" 2>&1 || rv_fail "setup: dhclient failed: $(tail -5 "$NL_TMP/dhclient.log")"
wait_lease up0 203.0.113
real=$(nl_in cat /run/dhclient.up0.pid)
echo "$NL_PID" | nl_in tee /run/dhclient.up0.pid >/dev/null
nl_refused_everywhere "dhclient whose pid file holds another pid" up0 "does not own its pid file /run/dhclient.up0.pid (it holds pid $NL_PID): \`dhclient -x\` would stop another process"
kill "$real"
cp /bin/sleep "$NL_TMP/NetworkManager"
nl_in "$NL_TMP/NetworkManager" 600 &
rv_cleanup_kill $!
for ((i = 0; i < 50; i++)); do [[ $(nl_driver facts --uplink up0 | jq -r '.other_managers[0] // ""') == NetworkManager* ]] && break; sleep 0.1; done
nl_refused_everywhere "NetworkManager" up0 "NetworkManager pid"
rv_pass "refused by facts, claim, plan and run with one message, nothing changed: a dhclient serving two interfaces, a dhclient whose pid file is not its own, NetworkManager"
end_case
