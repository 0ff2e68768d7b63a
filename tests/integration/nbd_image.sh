#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Proves the rescue image served over NBD with TLS: each probe failure refused at plan and run, the boot through the overlay, a server outage paused and resumed, the overlay bound.
#
# Usage (root): tests/integration/nbd_image.sh   (meson: meson test -C BUILD nbd_image)
# Two network namespaces joined by a veth: IMG (198.51.100.1) runs qemu-nbd --read-only with TLS
# (x509 from certtool, made here) serving the test guest's uefi.qcow2 / bios.qcow2 as export
# "rescue"; HOST (198.51.100.10) runs `rescuevm plan` and `rescuevm run` (TCG, network.mode none,
# one loop disk passed, which carries the guest's params block).
#  F. plan exits 3 and run refuses, each with its fix: server down, wrong host name, unknown CA,
#     missing client certificate, client key readable by others, export not found, no TLS at all.
#  B. run boots uefi through the overlay (the guest names the image as its boot disk) and reads
#     1 MiB of its boot disk once a second (O_DIRECT). The server is stopped for 25 s: the agent
#     logs the pause (image server unreachable), `status` shows it paused; the server comes back:
#     the agent logs the resume, the reads go on with the same checksum.
#  O. bios image, vm.overlay_max = 16MiB, the guest writes 24 MiB to its boot disk: the VM is
#     paused with the overlay line, `status` says paused.
# The served image files are byte-identical afterwards.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

: "${RESCUEVM:?RESCUEVM must point at the rescuevm binary}"
rv_require qemu-system-x86_64 qemu-img qemu-io qemu-nbd certtool losetup python3 sha256sum

BOOT_TIMEOUT=300
tmp=$(rv_tmpdir)
dir=$(rv_guest_images)
rt=$tmp/rt
rv_cleanup_add rv_kill_qemu_for "$rt"

# ---------------------------------------------------------------- namespaces and certificates
IMG=$(rv_netns rvnbd-img)
HOST=$(rv_netns rvnbd-host)
ip -n "$IMG" link add img0 type veth peer name host0 netns "$HOST"
ip -n "$IMG" addr add 198.51.100.1/24 dev img0
ip -n "$IMG" link set img0 up
ip -n "$HOST" addr add 198.51.100.10/24 dev host0
ip -n "$HOST" link set host0 up

pki=$tmp/pki
mkdir -p "$pki/server" "$pki/client"
certs() {   # certs DIR CN TEMPLATE_LINES...: a key and a certificate signed by $ca_dir's CA
  local out=$1 cn=$2 name=$3
  shift 3
  certtool --generate-privkey --outfile "$out/$name-key.pem" >/dev/null 2>&1
  printf 'cn = %s\nexpiration_days = 2\n' "$cn" >"$tmp/$name.info"
  printf '%s\n' "$@" >>"$tmp/$name.info"
  certtool --generate-certificate --load-ca-certificate "$ca_dir/ca-cert.pem" --load-ca-privkey "$ca_dir/ca-key.pem" \
    --load-privkey "$out/$name-key.pem" --template "$tmp/$name.info" --outfile "$out/$name-cert.pem" >/dev/null 2>&1 \
    || rv_fail "certtool could not make $out/$name-cert.pem"
  chmod 600 "$out/$name-key.pem"
}
make_ca() {   # make_ca DIR: a self-signed CA in DIR (ca-key.pem, ca-cert.pem)
  mkdir -p "$1"
  certtool --generate-privkey --outfile "$1/ca-key.pem" >/dev/null 2>&1
  printf 'cn = rescuevm test CA %s\nca\ncert_signing_key\nexpiration_days = 2\n' "$RANDOM" >"$tmp/ca.info"
  certtool --generate-self-signed --load-privkey "$1/ca-key.pem" --template "$tmp/ca.info" \
    --outfile "$1/ca-cert.pem" >/dev/null 2>&1 || rv_fail "certtool could not make a CA in $1"
}
ca_dir=$pki/ca
make_ca "$ca_dir"
certs "$pki/server" images.test server 'dns_name = images.test' 'tls_www_server' 'encryption_key' 'signing_key'
certs "$pki/client" rescuevm-host client 'tls_www_client' 'encryption_key' 'signing_key'
cp "$ca_dir/ca-cert.pem" "$pki/server/"
cp "$ca_dir/ca-cert.pem" "$pki/client/"
# Another CA, and a client that trusts only it (unknown CA for the server's certificate).
ca_dir=$pki/ca2
make_ca "$ca_dir"
mkdir -p "$pki/other-ca"
certs "$pki/other-ca" rescuevm-host client 'tls_www_client' 'encryption_key' 'signing_key'
cp "$ca_dir/ca-cert.pem" "$pki/other-ca/"
mkdir -p "$pki/no-cert" "$pki/open-key"
cp "$pki/client/ca-cert.pem" "$pki/client/client-key.pem" "$pki/no-cert/"
cp -p "$pki/client/"*.pem "$pki/open-key/"
chmod 644 "$pki/open-key/client-key.pem"
chmod 755 "$pki" "$pki"/*

# ---------------------------------------------------------------- the image server
declare -A sums
for f in uefi.qcow2 bios.qcow2; do sums[$f]=$(rv_sha256 "$dir/$f"); done
NBD_PID=
serve() {   # serve IMAGE: qemu-nbd in IMG with TLS, export "rescue", read-only; sets NBD_PID
  ip netns exec "$IMG" qemu-nbd --read-only --format=qcow2 --export-name=rescue --persistent --shared=8 \
    --object "tls-creds-x509,id=tls0,dir=$pki/server,endpoint=server,verify-peer=on" --tls-creds tls0 \
    --bind 198.51.100.1 --port 10809 "$1" >>"$tmp/nbd.log" 2>&1 &
  NBD_PID=$!
  rv_cleanup_kill "$NBD_PID"
  local i
  for ((i = 0; i < 50; i++)); do
    ip netns exec "$IMG" ss -ltn 2>/dev/null | grep -q '198.51.100.1:10809' && return 0
    sleep 0.1   # bounded wait for the listening socket
  done
  rv_fail "qemu-nbd did not listen: $(cat "$tmp/nbd.log")"
}
unserve() { kill -TERM "$NBD_PID" 2>/dev/null; wait "$NBD_PID" 2>/dev/null || true; NBD_PID=; }

# ---------------------------------------------------------------- the agent's config
disk=$(rv_loop_disk 64M)
conf() {   # conf FIRMWARE URL TLS_DIR HOSTNAME [EXTRA_VM_LINES]: writes $tmp/rescuevm.toml
  local tls_lines=""
  [[ -n $3 ]] && tls_lines="image_tls = \"$3\""$'\n'"image_tls_hostname = \"$4\""
  [[ -z $3 ]] && tls_lines="image_unauthenticated = true"
  cat >"$tmp/rescuevm.toml" <<EOT
[host]
min_memory = "1GiB"

[vm]
image = "$2"
$tls_lines
accel = "tcg"
firmware = "$1"
memory = "512MiB"
cpus = 2
display = "none"
${5:-}

[disks]
match = ["${disk#/dev/}"]

[network]
mode = "none"

[guest]
admin_password_file = "$tmp/no-password"

[paths]
runtime_dir = "$rt"
EOT
}
: >"$tmp/cmdline"
in_host() { ip netns exec "$HOST" "$RESCUEVM" --config "$tmp/rescuevm.toml" --kernel-cmdline "$tmp/cmdline" "$@"; }
URL=nbd://198.51.100.1:10809/rescue

# expect_refusal WHAT TEXT: plan exits 3 naming TEXT in the image check; run refuses (3) with it.
expect_refusal() {
  local what=$1 text=$2 rc=0 out t0=$SECONDS
  out=$(in_host plan 2>&1) || rc=$?
  ((rc == 3)) || rv_fail "$what: plan exited $rc, not 3: $out"
  grep -qF -- "$text" <<<"$out" || rv_fail "$what: plan does not say '$text': $out"
  ((SECONDS - t0 <= 8)) || rv_fail "$what: plan took $((SECONDS - t0)) s, more than a few seconds"
  rc=0
  out=$(timeout 60 ip netns exec "$HOST" "$RESCUEVM" --config "$tmp/rescuevm.toml" --kernel-cmdline "$tmp/cmdline" run 2>&1) || rc=$?
  ((rc == 3)) || rv_fail "$what: run exited $rc, not 3 (refused): $out"
  grep -qF -- "$text" <<<"$out" || rv_fail "$what: run does not say '$text': $out"
  rv_log "F $what: plan and run refuse: $(grep -F -- "$text" <<<"$out" | head -n 1 | cut -c1-200)"
}

# ---------------------------------------------------------------- F: every failure named
conf uefi "$URL" "$pki/client" images.test
expect_refusal "server down" "the image server 198.51.100.1:10809 does not answer: start the NBD server"
serve "$dir/uefi.qcow2"
conf uefi "$URL" "$pki/client" other.test
expect_refusal "wrong host name" "shows a certificate that is not for \"other.test\": set vm.image_tls_hostname"
conf uefi "$URL" "$pki/other-ca" images.test
expect_refusal "unknown CA" "not signed by the CA in $pki/other-ca/ca-cert.pem (unknown CA)"
conf uefi "$URL" "$pki/no-cert" images.test
expect_refusal "missing client cert" "$pki/no-cert/client-cert.pem is missing: put this host's client certificate"
conf uefi "$URL" "$pki/open-key" images.test
expect_refusal "key readable by others" "client-key.pem (uid 0, mode 0644) must be owned by root and readable by root only"
conf uefi "nbd://198.51.100.1:10809/windows" "$pki/client" images.test
expect_refusal "export not found" "has no export \"windows\": fix the export name in vm.image"
conf uefi "$URL" "" ""
expect_refusal "no TLS on a TLS server" "requires TLS: set vm.image_tls"

# ---------------------------------------------------------------- B: boot, outage, resume
rv_params_block "$disk" rvtest.disk_read=boot
conf uefi "$URL" "$pki/client" images.test
out=$(in_host plan 2>&1) || rv_fail "plan refused the good NBD setup: $out"
grep -q "read over NBD (TLS, server certificate checked for \"images.test\"" <<<"$out" || rv_fail "plan's image check: $out"
ip netns exec "$HOST" "$RESCUEVM" --config "$tmp/rescuevm.toml" --kernel-cmdline "$tmp/cmdline" --log-level debug run \
  >"$tmp/agent.log" 2>&1 </dev/null &
agent=$!
rv_cleanup_kill "$agent"
console=$rt/guest-console.log
rv_wait_for '^RVTEST diskread n=3 ' "$console" "$BOOT_TIMEOUT" \
  || rv_fail "the guest did not boot and read its disk: $(tail -n 20 "$tmp/agent.log"); $(grep -a RVTEST "$console" | tail -n 5)"
uefi_id=$(cat "$dir/uefi.ptuuid")
grep -aq "^RVTEST firmware efi=yes kernel=image image=uefi" "$console" || rv_fail "the guest did not boot the uefi image"
grep -aq "^RVTEST bootdisk name=[a-z0-9]* ptuuid=$uefi_id via=efi-loader candidates=1" "$console" \
  || rv_fail "the boot disk is not the served image: $(grep -a bootdisk "$console")"
grep -q "overlay bound set" "$tmp/agent.log" || rv_fail "the agent set no overlay bound: $(grep -i overlay "$tmp/agent.log")"
[[ $(qemu-img info --output=json "$rt/overlay.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("backing-filename",""))') == "" ]] \
  || rv_fail "the overlay records a backing file"
rv_log "B booted the uefi image over NBD+TLS; the guest reads its boot disk"

before=$(rv_count '^RVTEST diskread ' "$console")
unserve
rv_log "B image server stopped"
rv_wait_for "the rescue image's server does not answer" "$tmp/agent.log" 60 \
  || rv_fail "no pause line while the server is away: $(tail -n 15 "$tmp/agent.log")"
state=$(in_host status --json | python3 -c 'import json,sys; v=json.load(sys.stdin)["vm"]; print(v["state"], "|", v["pause_reason"])')
[[ $state == paused* && $state == *"image server does not answer"* ]] || rv_fail "status during the outage: $state"
rv_log "B paused: $state"
sleep 15   # the agent's `cont` retries meet the outage: they must stay quiet and paused
serve "$dir/uefi.qcow2"
rv_log "B image server back"
rv_wait_for "the rescue image's server answers again: the guest runs again" "$tmp/agent.log" 90 \
  || rv_fail "no resume line after the server came back: $(tail -n 15 "$tmp/agent.log")"
rv_wait_for_count $((before + 5)) '^RVTEST diskread ' "$console" 60 \
  || rv_fail "the guest's reads did not go on after the resume"
(($(rv_count "the rescue image's server does not answer" "$tmp/agent.log") == 1)) \
  || rv_fail "the pause was logged more than once: $(grep -c "does not answer" "$tmp/agent.log")"
nsums=$(tr -d '\r' <"$console" | sed -n 's/^RVTEST diskread n=[0-9]* disk=[a-z0-9]* sum=//p' | sort -u | wc -l)
((nsums == 1)) || rv_fail "the boot disk read back differently: $(tr -d '\r' <"$console" | grep -a diskread | sort -t= -k4 -u | head)"
(($(rv_count '^RVTEST error' "$console") == 0)) || rv_fail "guest errors: $(grep -a '^RVTEST error' "$console")"
[[ $(in_host status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["vm"]["state"])') == running ]] \
  || rv_fail "status is not running after the resume"
rv_log "B resumed: $(grep -a "answers again" "$tmp/agent.log" | sed 's/.*answers again/answers again/'); $(rv_count '^RVTEST diskread ' "$console") reads, one checksum"
kill -TERM "$agent"
wait "$agent" || rv_fail "the agent exited $? after SIGTERM"
unserve

# ---------------------------------------------------------------- O: the overlay bound
serve "$dir/bios.qcow2"
rv_params_block "$disk" rvtest.disk_write=boot:24
conf bios "$URL" "$pki/client" images.test 'overlay_max = "16MiB"'
out=$(in_host plan 2>&1) || rv_fail "plan refused the bios NBD setup: $out"
grep -q "the VM may write up to 16 MiB to its disk 0 (vm.overlay_max" <<<"$out" || rv_fail "plan's overlay check: $out"
ip netns exec "$HOST" "$RESCUEVM" --config "$tmp/rescuevm.toml" --kernel-cmdline "$tmp/cmdline" --log-level debug run \
  >"$tmp/agent-overlay.log" 2>&1 </dev/null &
agent=$!
rv_cleanup_kill "$agent"
rv_wait_for "the most vm.overlay_max allows" "$tmp/agent-overlay.log" "$BOOT_TIMEOUT" \
  || rv_fail "no overlay bound pause: $(tail -n 15 "$tmp/agent-overlay.log"); $(grep -a RVTEST "$console" | tail -n 5)"
grep -aq '^RVTEST diskwrite start disk=' "$console" || rv_fail "the guest did not start writing"
! grep -aq '^RVTEST diskwrite done' "$console" || rv_fail "the guest finished 24 MiB past a 16 MiB bound"
state=$(in_host status --json | python3 -c 'import json,sys; v=json.load(sys.stdin)["vm"]; print(v["state"], "|", v["pause_reason"])')
[[ $state == paused*"vm.overlay_max"* ]] || rv_fail "status after the bound: $state"
size=$(stat -c %s "$rt/overlay.qcow2")
((size <= 24 * 1048576)) || rv_fail "the overlay grew to $size bytes"
rv_log "O paused at the bound: $state (overlay $((size / 1048576)) MiB)"
kill -TERM "$agent"
wait "$agent" || rv_fail "the agent exited $? after SIGTERM"
unserve

for f in uefi.qcow2 bios.qcow2; do
  [[ $(rv_sha256 "$dir/$f") == "${sums[$f]}" ]] || rv_fail "$f changed"
done
rv_pass "NBD+TLS image: 7 failures refused with their fix; uefi boot through the overlay; a 25 s server outage paused and resumed with reads intact; the overlay bound pauses; images unchanged"
