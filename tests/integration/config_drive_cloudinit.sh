#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Config drive: build it for a /32+/128 static server and for a DHCP server, read it back with
# Debian's cloud-init parser, and check that the admin password stays secret.
set -euo pipefail

BUILD_ROOT=${BUILD_ROOT:?BUILD_ROOT must point at the meson build directory}
DRIVER=$BUILD_ROOT/tests/integration/configdrive_driver
PYTHON=/usr/bin/python3 # Debian's, where cloud-init is installed

fail() { echo "FAIL: config_drive_cloudinit: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "must run as root (the password file must be owned by root)"
[[ -x $DRIVER ]] || fail "$DRIVER is not built (ninja -C $BUILD_ROOT)"
for tool in xorriso blkid; do command -v $tool >/dev/null || fail "$tool missing: run scripts/setup"; done

WORK=$(mktemp -d /tmp/rescuevm-config-drive.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# A password with characters JSON must escape, and a random token that appears
# verbatim in both its raw and its JSON-escaped forms, to grep for.
TOKEN=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
PASSWORD="Res\"cue\\Pa\$s-${TOKEN}-ü"
PWFILE=$WORK/admin-password
( umask 077; printf '%s\n' "$PASSWORD" >"$PWFILE" )
unset PASSWORD # from here on only the file holds it

MAC=52:54:00:AB:CD:EF
UUID=$(cat /proc/sys/kernel/random/uuid)

# The password must not appear in the driver's output, nor in any file under
# runtime_dir that others can read; the ISO must hold it (so the grep can find it).
check_secret_kept() { # runtime_dir stdout stderr
    local rt=$1 out=$2 err=$3 f
    ! grep -qF "$TOKEN" "$out" "$err" || fail "the password appears in the driver's output"
    while IFS= read -r -d '' f; do
        ! grep -qaF "$TOKEN" "$f" || fail "the password is in $f, which others can read"
    done < <(find "$rt" -perm /044 -print0)
}

check_iso() { # iso runtime_dir
    local iso=$1 rt=$2 toc joliet
    [[ -f $iso ]] || fail "no ISO at $iso"
    [[ $(stat -c '%a %u' "$iso") == "600 0" ]] || fail "$iso has mode/owner $(stat -c '%a %u' "$iso"), want 600 0"
    [[ $(ls -A "$rt") == config-2.iso ]] || fail "runtime dir holds more than the ISO: $(ls -A "$rt" | tr '\n' ' ')"
    [[ $(blkid -o value -s LABEL "$iso") == config-2 ]] || fail "volume label is not config-2"
    toc=$(xorriso -indev "$iso" -toc 2>&1)
    grep -q 'ISO offers *: Rock_Ridge Joliet' <<<"$toc" || fail "ISO lacks Rock Ridge or Joliet: $toc"
    joliet=$(xorriso -rockridge off -joliet on -indev "$iso" -ls /openstack/latest 2>&1)
    for name in meta_data.json network_data.json user_data; do
        grep -qF "'$name'" <<<"$joliet" || fail "Joliet tree lacks openstack/latest/$name"
    done
    xorriso -indev "$iso" -lsl /openstack/latest 2>/dev/null | grep -q -- "-rw------- .*'meta_data.json'" ||
        fail "Rock Ridge does not record meta_data.json as 0600"
}

extract() { # iso dir
    mkdir -m 0700 "$2"
    xorriso -osirrox on -indev "$1" -extract / "$2" >/dev/null 2>&1 || fail "cannot extract $1"
}

# Reads an extracted config drive the way cloud-init does and checks what it finds.
read_with_cloudinit() { # dir expectation(static|dhcp)
    "$PYTHON" - "$1" "$2" "$MAC" "$UUID" "$PWFILE" <<'EOF'
import ipaddress, sys
from cloudinit.sources.DataSourceConfigDrive import read_config_drive
from cloudinit.sources.helpers.openstack import convert_net_json
from cloudinit.net.network_state import parse_net_config_data

source, kind, mac, uuid, pwfile = sys.argv[1:]
mac = mac.lower()

def check(cond, what):
    if not cond:
        print("FAIL: config_drive_cloudinit (%s): %s" % (kind, what), file=sys.stderr)
        sys.exit(1)

data = read_config_drive(source)
meta = data["metadata"]
check(meta["uuid"] == uuid and meta["instance-id"] == uuid, "uuid/instance-id: %r" % meta.get("uuid"))
check(meta["name"] == "srv42", "name: %r" % meta.get("name"))
check(meta["meta"]["admin_username"] == "Administrator", "admin_username")
check("hostname" not in meta and "local-hostname" not in meta, "a hostname is set")
if kind == "static":
    with open(pwfile, encoding="utf-8") as f:
        password = f.read()[:-1]
    check(meta.get("admin_pass") == password, "admin_pass differs from the password file")
else:
    check("admin_pass" not in meta, "admin_pass present although no password is set")

user_data = data["userdata"]
user_data = user_data.decode() if isinstance(user_data, bytes) else user_data
check(user_data.startswith("#ps1_sysnative\n"), "user_data is not a #ps1_sysnative script")

config = convert_net_json(data["networkdata"], known_macs={mac: "eth0"})
phys = [c for c in config["config"] if c["type"] == "physical"]
check(len(phys) == 1, "links: %r" % phys)
nic = phys[0]
check(nic["name"] == "eth0" and nic["mac_address"] == mac, "link not matched by MAC: %r" % nic)
check(nic["mtu"] == (1500 if kind == "static" else 9000), "mtu %r" % nic.get("mtu"))
dns = [a for c in config["config"] if c["type"] == "nameserver" for a in [c["address"]]]
subnets = nic["subnets"]

if kind == "static":
    check(dns == ["192.0.2.53", "2001:db8::53"], "dns %r" % dns)
    check(len(subnets) == 2, "subnets %r" % subnets)
    v4, v6 = subnets
    check(v4["type"] == "static" and v4["address"] == "203.0.113.10" and v4["netmask"] == "255.255.255.255",
          "IPv4 subnet %r" % v4)
    check(v4["routes"] == [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "203.0.113.1"}],
          "IPv4 routes %r" % v4["routes"])
    check(ipaddress.ip_address("203.0.113.1") not in ipaddress.ip_network("203.0.113.10/32"),
          "the test wants the gateway outside the prefix")
    check(v6["type"] == "static6" and v6["address"] == "2001:db8::10", "IPv6 subnet %r" % v6)
    check(v6["routes"] == [{"network": "::", "netmask": "::", "gateway": "fe80::1"}], "IPv6 routes %r" % v6["routes"])
    check("Add-Route '203.0.113.1/32' '0.0.0.0'" in user_data, "user_data lacks the on-link route to 203.0.113.1")
    check(user_data.index("'203.0.113.1/32'") < user_data.index("Add-Route '0.0.0.0/0' '203.0.113.1'"),
          "user_data adds the default route before the on-link route")
else:
    check(dns == ["192.0.2.1"], "dns %r" % dns)
    check(subnets == [{"type": "dhcp4"}], "subnets %r" % subnets)
    check("Add-Address" not in user_data, "user_data sets an address on a DHCP server")

# What cloud-init's renderers consume: netmasks become prefixes, routes normalise.
state = parse_net_config_data(config)
iface = next(iter(state.iter_interfaces()))
found = [(s.get("address"), s.get("prefix")) for s in iface["subnets"]]
if kind == "static":
    check(found == [("203.0.113.10", 32), ("2001:db8::10", 128)], "network_state subnets %r" % found)
    routes = [(r["network"], r["prefix"], r["gateway"]) for s in iface["subnets"] for r in s.get("routes", [])]
    check(routes == [("0.0.0.0", 0, "203.0.113.1"), ("::", 0, "fe80::1")], "network_state routes %r" % routes)
print("cloud-init reads the %s config drive as expected" % kind)
EOF
}

# --- a /32 + /128 server, gateways outside both prefixes, with a password ---
RT=$WORK/run-static
mkdir -m 0700 "$RT"
"$DRIVER" --runtime-dir "$RT" --password-file "$PWFILE" --uuid "$UUID" --name srv42 \
    --admin-user Administrator --uplink eno1 --mac "$MAC" --mtu 1500 \
    --address 203.0.113.10/32 --address 2001:db8::10/128 \
    --route default,203.0.113.1 --route default,fe80::1 \
    --dns 192.0.2.53 --dns 2001:db8::53 >"$WORK/static.out" 2>"$WORK/static.err" ||
    fail "driver failed for the static server: $(cat "$WORK/static.err")"
ISO=$(cat "$WORK/static.out")
[[ $ISO == "$RT/config-2.iso" ]] || fail "driver printed '$ISO', want $RT/config-2.iso"
check_iso "$ISO" "$RT"
check_secret_kept "$RT" "$WORK/static.out" "$WORK/static.err"
grep -qaF "$TOKEN" "$ISO" || fail "the ISO does not hold the password (so the secrecy greps prove nothing)"
grep -q "admin password set" "$WORK/static.err" || fail "the driver did not log 'admin password set'"
extract "$ISO" "$WORK/static"
read_with_cloudinit "$WORK/static" static

# --- a DHCP server, no password ---
RT=$WORK/run-dhcp
mkdir -m 0700 "$RT"
"$DRIVER" --runtime-dir "$RT" --uuid "$UUID" --name srv42 --uplink enp1s0 --mac "$MAC" --mtu 9000 --dhcp \
    --address 192.0.2.10/24 --route default,192.0.2.1 --dns 192.0.2.1 >"$WORK/dhcp.out" 2>"$WORK/dhcp.err" ||
    fail "driver failed for the DHCP server: $(cat "$WORK/dhcp.err")"
check_iso "$RT/config-2.iso" "$RT"
extract "$RT/config-2.iso" "$WORK/dhcp"
read_with_cloudinit "$WORK/dhcp" dhcp

# --- a password file readable by others, or not owned by root, is refused; nothing is created ---
for bad in mode owner; do
    RT=$WORK/run-refused-$bad
    mkdir -m 0700 "$RT"
    if [[ $bad == mode ]]; then chmod 0644 "$PWFILE"; else chmod 0600 "$PWFILE"; chown 65534 "$PWFILE"; fi
    status=0
    "$DRIVER" --runtime-dir "$RT" --password-file "$PWFILE" --uuid "$UUID" --uplink eno1 --mac "$MAC" \
        --address 203.0.113.10/32 >"$WORK/refused.out" 2>"$WORK/refused.err" || status=$?
    [[ $status -eq 3 ]] || fail "a password file with a bad $bad gave exit status $status, want 3"
    grep -qF "$PWFILE" "$WORK/refused.err" || fail "the refusal does not name the file: $(cat "$WORK/refused.err")"
    grep -qF "chown root:root $PWFILE && chmod 600 $PWFILE" "$WORK/refused.err" ||
        fail "the refusal does not say how to fix it: $(cat "$WORK/refused.err")"
    [[ -z $(ls -A "$RT") ]] || fail "a refused start created $(ls -A "$RT")"
    check_secret_kept "$RT" "$WORK/refused.out" "$WORK/refused.err"
    chown 0 "$PWFILE"
done

echo "PASS: config_drive_cloudinit: static (/32 + /128, gateways outside) and DHCP config drives read" \
     "by cloud-init; 0600 ISO labelled config-2 with Joliet + Rock Ridge; password kept secret; bad file refused"
