#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The layering check: it catches planted violations, then the real tree has none.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${SOURCE_ROOT:-$(cd "$here/../.." && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A planted tree with one violation of each kind: the checker must name every one.
mkdir -p "$tmp/src/core/plan" "$tmp/src/host" "$tmp/src/net" "$tmp/include/rescuevm/core" "$tmp/src/odd"
printf '#include <unistd.h>\n#include <fstream>\n#include <vector>\n#include "rescuevm/sys/files.h"\n' >"$tmp/src/core/plan/bad.cpp"
printf '#include "rescuevm/agent/agent.h"\n#include "rescuevm/core/plan.h"\n' >"$tmp/src/host/bad.cpp"
printf '#include "rescuevm/signatures/disk_signatures.h"\n#include "missing.h"\n' >"$tmp/src/net/bad.cpp"
printf '#include <sys/types.h>\n' >"$tmp/include/rescuevm/core/bad.h"
printf 'int x;\n' >"$tmp/src/odd/file.cpp"
if out=$(python3 "$here/layers.py" "$tmp"); then
  echo "FAIL: layers.py passed a tree with planted violations:"; echo "$out"; exit 1
fi
for expected in 'src/core/plan/bad.cpp:1: the pure core includes <unistd.h>' \
                'src/core/plan/bad.cpp:2: the pure core includes <fstream>' \
                'src/core/plan/bad.cpp:4: core includes rescuevm/sys/files.h' \
                'src/host/bad.cpp:1: host includes rescuevm/agent/agent.h' \
                'src/net/bad.cpp:1: net includes rescuevm/signatures/disk_signatures.h' \
                'src/net/bad.cpp:2: "missing.h"' \
                'include/rescuevm/core/bad.h:1: the pure core includes <sys/types.h>' \
                'src/odd/file.cpp: not in a library folder'; do
  grep -qF "$expected" <<<"$out" || { echo "FAIL: layers.py did not report: $expected"; echo "$out"; exit 1; }
done
for allowed in 'bad.cpp:3' 'src/host/bad.cpp:2'; do
  if grep -qF "$allowed:" <<<"$out"; then echo "FAIL: layers.py reported an allowed include ($allowed)"; echo "$out"; exit 1; fi
done
echo "PASS: layers.py reports every planted violation"

python3 "$here/layers.py" "$root"
