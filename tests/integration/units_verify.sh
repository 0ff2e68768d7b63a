#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Checks the systemd unit with systemd-analyze verify, its required settings, and that nothing in units/ can reboot or power off the host.
set -euo pipefail

: "${SOURCE_ROOT:?set by meson}"
: "${RESCUEVM:?set by meson}"
units=$SOURCE_ROOT/units

fail() { echo "FAIL: units_verify: $*" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The unit is a template (units/meson.build fills in the build's sbindir);
# checked here as the Debian package configures it (prefix /usr).
sed 's|@sbindir@|/usr/sbin|g' "$SOURCE_ROOT/units/rescuevm.service.in" >"$tmp/rescuevm.service.usr"
unit=$tmp/rescuevm.service.usr

# 1. systemd-analyze verify. ExecStart= must name an existing executable: when
# rescuevm is not installed, verify a copy that points at the built binary.
cp "$unit" "$tmp/rescuevm.service"
if [[ ! -x /usr/sbin/rescuevm ]]; then
  sed -i "s|^ExecStart=/usr/sbin/rescuevm |ExecStart=$RESCUEVM |" "$tmp/rescuevm.service"
  grep -q "^ExecStart=$RESCUEVM run\$" "$tmp/rescuevm.service" || fail "could not point ExecStart at $RESCUEVM"
fi
# Verify the unit and every unit it names; other units' problems are not ours,
# so keep only the lines about this file.
if ! out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$tmp/rescuevm.service" 2>&1); then
  echo "$out" >&2
  fail "systemd-analyze verify failed"
fi
ours=$(grep -F 'rescuevm.service' <<<"$out" || true)
if [[ -n $ours ]]; then
  echo "$ours" >&2
  fail "systemd-analyze verify warns about rescuevm.service"
fi
echo "ok: systemd-analyze verify"

# 2. The settings the agent's behaviour depends on (issue 4 and 8).
value() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
expect() {
  local got
  got=$(value "$1")
  [[ $got == "$2" ]] || fail "$1=$got, expected $1=$2"
}
expect Type notify
expect ExecStart "/usr/sbin/rescuevm run"
expect ConditionKernelCommandLine "rescuevm.enable=1"
expect KillMode process
expect Restart on-failure
expect StandardOutput journal+console
[[ -n $(value WatchdogSec) ]] || fail "no WatchdogSec"
grep -q '^After=.*network-online.target' "$unit" || fail "not ordered after network-online.target"
grep -q '^Wants=.*network-online.target' "$unit" || fail "does not want network-online.target"
grep -q '^After=.*systemd-udevd.service' "$unit" || fail "not ordered after systemd-udevd.service"
if grep -v '^#' "$unit" | grep -q 'systemd-udev-settle'; then
  fail "depends on systemd-udev-settle.service (deprecated; the agent waits for udev itself)"
fi

# TimeoutStopSec must exceed the guest power-down wait (supervisor.shutdown_timeout, 120 s).
stop=$(value TimeoutStopSec)
seconds=$(systemd-analyze timespan "$stop" | sed -n 's/^ *μs: *//p')
[[ -n $seconds ]] || fail "cannot read TimeoutStopSec=$stop"
((seconds > 120 * 1000000)) || fail "TimeoutStopSec=$stop is not longer than the 120 s guest power-down timeout"
echo "ok: required settings (Type=notify, watchdog, KillMode=process, TimeoutStopSec=$stop)"

# 3. Nothing in units/ may reboot, halt or power off the host: no unit action
# settings and no such command anywhere.
pattern='FailureAction|SuccessAction|StartLimitAction|JobTimeoutAction|reboot|poweroff|halt|kexec'
if hits=$(grep -rniE "$pattern" "$units"); then
  echo "$hits" >&2
  fail "units/ mentions a host reboot/poweroff action"
fi
echo "ok: no reboot, poweroff, halt or kexec action in units/"

# 4. The tmpfiles entry makes runtime_dir root-only and never ages it.
grep -qE '^d /run/rescuevm 0700 root root -$' "$units/rescuevm.tmpfiles" ||
  fail "rescuevm.tmpfiles does not create /run/rescuevm 0700 root root"
if command -v systemd-tmpfiles >/dev/null; then
  mkdir "$tmp/root"
  systemd-tmpfiles --create --root="$tmp/root" "$units/rescuevm.tmpfiles"
  [[ $(stat -c '%a %U' "$tmp/root/run/rescuevm") == "700 root" ]] ||
    fail "systemd-tmpfiles made $(stat -c '%a %U' "$tmp/root/run/rescuevm"), expected 700 root"
fi
echo "ok: tmpfiles entry"

echo "PASS: units_verify"
