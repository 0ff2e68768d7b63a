#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The contract users and tests rely on: the JSON fields the README lists, the exit statuses, and that `plan` prints the argv `run` executes.
#
# Usage (root): tests/integration/contract.sh   (meson: meson test -C BUILD contract)
#
# 1. Every `plan` and `status` field of README.md's "contract:json" block is in the JSON the
#    program prints, with its type (the block is read from the README, so editing one without
#    the other fails here).
# 2. Exit statuses of the README's commands table: plan ready 0, refused 3, bad config 2;
#    status and vm with no agent 1; disks 0.
# 3. The argv `plan --json` prints is the argv of the QEMU `run` started (its
#    /proc/PID/cmdline) and of the agent's record, word for word but for the uuid.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

readme=$RV_SOURCE_ROOT/README.md
spec=$(sed -n '/<!-- contract:json begin -->/,/<!-- contract:json end -->/p' "$readme" | grep -E '^(plan|status) ' || true)
[[ $(wc -l <<<"$spec") -ge 20 ]] || rv_fail "README.md has no contract:json block (or a tiny one)"

sup_setup "rvtest.heartbeat=5 rvtest.final=wait"

# check_fields COMMAND JSON_FILE: every README line of COMMAND against the JSON.
check_fields() {
  grep -E "^$1 " <<<"$spec" >"$SUP_TMP/spec-$1"
  python3 - "$2" "$1" "$SUP_TMP/spec-$1" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
types = {"string": str, "number": (int, float), "boolean": bool, "array": list, "object": dict}
bad = []
for line in open(sys.argv[3]):
    _, path, typ = line.split()
    values = [doc]
    for part in path.split("."):
        key, each = (part[:-2], True) if part.endswith("[]") else (part, False)
        nxt = []
        for v in values:
            if not isinstance(v, dict) or key not in v:
                bad.append(f"{path}: no '{key}'")
                continue
            v = v[key]
            if each:
                if not isinstance(v, list):
                    bad.append(f"{path}: '{key}' is not a list")
                    continue
                nxt.extend(v)
            else:
                nxt.append(v)
        values = nxt
    want = types[typ]
    for v in values:
        if isinstance(v, bool) and typ == "number" or not isinstance(v, want):
            bad.append(f"{path}: {json.dumps(v)[:60]} is not a {typ}")
            break
    if not values and "[]" not in path:
        bad.append(f"{path}: missing")
if bad:
    sys.exit(f"{sys.argv[2]} --json does not keep the README's contract: " + "; ".join(sorted(set(bad))))
PY
}

# ---------------------------------------------------------------- exit statuses, plan fields
rc=0; sup_rescuevm plan --json >"$SUP_TMP/plan.json" 2>"$SUP_TMP/plan.err" || rc=$?
[[ $rc == 0 ]] || rv_fail "plan of a ready host: exit $rc, want 0: $(tail -3 "$SUP_TMP/plan.err")"
check_fields plan "$SUP_TMP/plan.json" || rv_fail "plan --json fields"
[[ $(grep -c '^plan ' <<<"$spec") -gt 0 ]]
rv_pass "plan --json has every field the README lists ($(grep -c '^plan ' <<<"$spec")), with its type; exit 0 when ready"

sed 's/^min_memory = .*/min_memory = "1TiB"/' "$SUP_CONF" >"$SUP_TMP/refused.toml"
rc=0; "$RESCUEVM" --config "$SUP_TMP/refused.toml" --kernel-cmdline "$SUP_CMDLINE" plan >/dev/null 2>&1 || rc=$?
[[ $rc == 3 ]] || rv_fail "plan refused by a check: exit $rc, want 3"
rc=0; "$RESCUEVM" --config "$SUP_TMP/refused.toml" --kernel-cmdline "$SUP_CMDLINE" run >/dev/null 2>&1 || rc=$?
[[ $rc == 3 ]] || rv_fail "run refused by a check: exit $rc, want 3"
printf '[disks]\nbus = "ahci"\n' >"$SUP_TMP/bad.toml"
rc=0; "$RESCUEVM" --config "$SUP_TMP/bad.toml" --kernel-cmdline "$SUP_CMDLINE" plan >/dev/null 2>"$SUP_TMP/bad.err" || rc=$?
[[ $rc == 2 ]] || rv_fail "plan with a bad config: exit $rc, want 2"
grep -q 'bad.toml:2: disks.bus: "ahci" is not one of' "$SUP_TMP/bad.err" || rv_fail "the config error does not name file, line and key: $(cat "$SUP_TMP/bad.err")"
rc=0; sup_rescuevm status >/dev/null 2>&1 || rc=$?
[[ $rc == 1 ]] || rv_fail "status with no agent: exit $rc, want 1"
rc=0; sup_rescuevm vm reset >/dev/null 2>&1 || rc=$?
[[ $rc == 1 ]] || rv_fail "vm reset with no agent: exit $rc, want 1"
rc=0; sup_rescuevm disks --json >/dev/null 2>&1 || rc=$?
[[ $rc == 0 ]] || rv_fail "disks --json: exit $rc, want 0"
rv_pass "exit statuses: plan/run refused 3, bad config 2 (naming file:line: key), status and vm without an agent 1, disks 0"

# ---------------------------------------------------------------- status fields, plan == run
sup_agent_start
rv_wait_for '^RVTEST ready' "$SUP_CONSOLE" "$SUP_BOOT_TIMEOUT" || sup_fail "the guest did not come up"
sup_rescuevm status --json >"$SUP_TMP/status.json" || sup_fail "status --json failed"
check_fields status "$SUP_TMP/status.json" || sup_fail "status --json fields"
rv_pass "status --json has every field the README lists ($(grep -c '^status ' <<<"$spec")), with its type"

sup_rescuevm plan --json >"$SUP_TMP/plan-now.json" 2>/dev/null || true
qemu=$(sup_status vm.qemu_pid)
python3 - "$SUP_TMP/plan-now.json" "/proc/$qemu/cmdline" "$SUP_RT/qemu.json" <<'PY' || sup_fail "plan's argv is not run's"
import json, sys
plan = json.load(open(sys.argv[1]))["qemu"]["argv"]
running = open(sys.argv[2], "rb").read().decode().split("\0")[:-1]
record = json.load(open(sys.argv[3]))["argv"]
def masked(argv):
    out = list(argv)
    for i, w in enumerate(out[:-1]):
        if w == "-uuid":
            out[i + 1] = "<uuid>"
    return out
for name, other in (("QEMU's /proc/PID/cmdline", running), ("the agent's record", record)):
    if masked(plan) != masked(other):
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(masked(plan), masked(other))) if a != b][:3]
        sys.exit(f"plan --json argv differs from {name}: {len(plan)} vs {len(other)} words; first differences {diff}")
print(f"{len(plan)} words identical")
PY
rv_pass "the argv plan --json prints is the one run executes: QEMU $qemu's /proc cmdline and the agent's record, word for word (uuid aside)"
sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "agent exit $SUP_AGENT_RC after SIGTERM, want 0"
rv_pass "run exits 0 after a clean stop"
