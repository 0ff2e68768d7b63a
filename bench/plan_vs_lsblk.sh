#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmark: `rescuevm plan --json` against `lsblk -J -O` over the same 32 loop disks
# (medians of hyperfine runs); prints the ratio and appends it to bench/RESULTS.md.
# Root. Usage: bench/plan_vs_lsblk.sh [RESCUEVM binary] (default: build/rescuevm).
# Env: RUNS (default 30), NO_RECORD=1 to leave RESULTS.md alone.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
rescuevm=$(realpath "${1:-${RESCUEVM:-$here/../build/rescuevm}}")
runs=${RUNS:-30}
disks=32
[[ -x $rescuevm ]] || { echo "plan_vs_lsblk: $rescuevm is not an executable; build first" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "plan_vs_lsblk: needs root (loop devices)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "plan_vs_lsblk: hyperfine missing (scripts/setup)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/rescuevm-bench.XXXXXX)
loops=()
cleanup() {
    set +e
    for l in "${loops[@]}"; do losetup -d "$l"; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# 32 sparse 64 MiB disks: a third GPT with two partitions, a third MBR with
# one, a third blank; every fourth one 4Kn. partx makes the kernel see the tables.
for i in $(seq 0 $((disks - 1))); do
    truncate -s 64M "$tmp/d$i.img"
    opts=(--partscan)
    ((i % 4 == 3)) && opts+=(--sector-size 4096)
    loop=$(losetup --find --show "${opts[@]}" "$tmp/d$i.img")
    loops+=("$loop")
    case $((i % 3)) in
    0) printf 'label: gpt\n,16M,U\n,,EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' | sfdisk -q "$loop" >/dev/null 2>&1 ;;
    1) printf 'label: dos\n,,7\n' | sfdisk -q "$loop" >/dev/null 2>&1 ;;
    2) ;;
    esac
    ((i % 3 == 2)) || partx -u "$loop" 2>/dev/null || partx -a "$loop"
done
names=("${loops[@]##*/}")

kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)
match=$(printf '"%s", ' "${names[@]}")
cat > "$tmp/rescuevm.toml" <<TOML
[host]
min_memory = "256MiB"
[vm]
kernel = "$kernel"
accel = "tcg"
firmware = "bios"
memory = "512MiB"
cpus = 1
[disks]
match = [${match%, }]
[network]
mode = "none"
[paths]
runtime_dir = "$tmp/run"
TOML
mkdir "$tmp/run"
: > "$tmp/cmdline"

plan_cmd="$rescuevm plan --json --config $tmp/rescuevm.toml --kernel-cmdline $tmp/cmdline --log-level error"
lsblk_cmd="lsblk -J -O ${loops[*]}"

# Both must see the same 32 disks before their times mean anything.
if ! $plan_cmd > "$tmp/plan.json"; then
    python3 -c 'import json,sys; [print("check", c["name"], c["ok"], c["message"], file=sys.stderr) for c in json.load(open(sys.argv[1]))["checks"]]' "$tmp/plan.json" || true
    echo "plan_vs_lsblk: rescuevm plan refused this config; nothing to time" >&2
    exit 1
fi
$lsblk_cmd > "$tmp/lsblk.json"
python3 - "$tmp/plan.json" "$tmp/lsblk.json" "${names[@]}" <<'PY'
import json, sys
plan = {d["name"] for d in json.load(open(sys.argv[1]))["disks"] if d["selected"]}
lsblk = {d["name"] for d in json.load(open(sys.argv[2]))["blockdevices"]}
want = set(sys.argv[3:])
if not (want <= plan and want <= lsblk):
    sys.exit(f"plan_vs_lsblk: plan selected {len(want & plan)}/32, lsblk listed {len(want & lsblk)}/32")
PY

hyperfine --style basic --warmup 3 --runs "$runs" --export-json "$tmp/hyperfine.json" \
    -n "rescuevm plan --json" "$plan_cmd" -n "lsblk -J -O" "$lsblk_cmd"

read -r plan_ms lsblk_ms ratio < <(python3 - "$tmp/hyperfine.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
p, l = r["rescuevm plan --json"]["median"], r["lsblk -J -O"]["median"]
print(f"{p * 1000:.2f} {l * 1000:.2f} {p / l:.2f}")
PY
)
verdict=$(python3 -c "print('meets' if $ratio <= 1.0 else 'misses')")
echo "median: rescuevm plan --json ${plan_ms} ms, lsblk -J -O ${lsblk_ms} ms, ratio ${ratio} (${verdict} the target: plan no slower than lsblk)"

if [[ ${NO_RECORD:-0} != 1 ]]; then
    results=$here/RESULTS.md
    [[ -f $results ]] || printf '# Benchmark results\n\nEach section is written by its benchmark script; newest entries last.\n' > "$results"
    grep -q '^## plan vs lsblk' "$results" || cat >> "$results" <<'MD'

## plan vs lsblk (bench/plan_vs_lsblk.sh)

`rescuevm plan --json` (inventory with libblkid, in-use detection, checks,
QEMU argv) against `lsblk -J -O` over the same 32 loop disks (64 MiB sparse
files; a third GPT with two partitions, a third MBR, a third blank; every
fourth 4Kn). hyperfine, 3 warm-up runs, medians. Target: ratio <= 1.

| date (UTC) | commit | host | runs | plan median | lsblk median | ratio |
|---|---|---|---|---|---|---|
MD
    commit=$(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo "?")
    host="$(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1 /proc/loadavg)"
    row="| $(date -u +%Y-%m-%dT%H:%MZ) | $commit | $host | $runs | ${plan_ms} ms | ${lsblk_ms} ms | ${ratio} |"
    # The row goes at the end of this section's table: other sections may follow it.
    python3 - "$results" "$row" <<'PY'
import sys
path, row = sys.argv[1:]
lines = open(path).read().split("\n")
start = next(i for i, l in enumerate(lines) if l.startswith("## plan vs lsblk"))
end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
last = max(i for i in range(start, end) if lines[i].startswith("|"))
lines.insert(last + 1, row)
open(path, "w").write("\n".join(lines))
PY
    echo "recorded in $results"
fi
