#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Checks the layering the build promises: each library includes only the libraries below it, and the core includes no system header.
#
# Usage: layers.py SOURCE_ROOT   (exit 0: clean; 1: every violation listed, one per line)
#
# The libraries, lowest first (meson.build builds them in this order):
#   core         pure: config parsing, plan, argv, policy, reports; C++ standard headers that do
#                no I/O, fmt, nlohmann-json and toml++ only
#   sys          primitives: fds, files, processes, event loop, log
#   host         readers of the machine
#   net, signatures, configdrive   executors, each beside the others, never including each other
#   agent        the policy's executor
#   screen       the console viewer (`rescuevm screen`): sys below it, used by cli only
#   cli          subcommands (and src/main.cpp)
import pathlib
import re
import sys

ALLOWED = {
    "core": {"core"},
    "sys": {"core", "sys"},
    "host": {"core", "sys", "host"},
    "net": {"core", "sys", "host", "net"},
    "signatures": {"core", "sys", "signatures"},
    "configdrive": {"core", "sys", "configdrive"},
    "agent": {"core", "sys", "host", "net", "signatures", "configdrive", "agent"},
    "screen": {"core", "sys", "screen"},
    "cli": {"core", "sys", "host", "net", "signatures", "configdrive", "agent", "screen", "cli"},
}

# C++ standard headers a pure function may use: no streams, files, threads, clocks of the
# machine or C library headers that wrap system calls.
PURE_STD = set("""
algorithm any array bit bitset cassert cctype cerrno charconv chrono cinttypes climits cmath
compare concepts cstddef cstdint cstdio cstdlib cstring expected functional initializer_list
iterator limits map memory numeric optional ranges set span string string_view tuple
type_traits unordered_map unordered_set utility variant vector deque list stdexcept
""".split())
PURE_THIRD_PARTY = ("fmt/", "nlohmann/", "toml++/")
# Even among standard headers: these reach the machine.
IMPURE_STD = {"fstream", "iostream", "filesystem", "thread", "mutex", "random", "ctime",
              "csignal", "future", "condition_variable", "sstream"}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')


def layer_of(path: pathlib.Path, root: pathlib.Path):
    rel = path.relative_to(root).parts
    if rel[0] == "src" and len(rel) > 2:
        return rel[1]
    if rel[0] == "src":
        return "cli"  # src/main.cpp
    if rel[:2] == ("include", "rescuevm") and len(rel) > 3:
        return rel[2]
    return None


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = []
    files = sorted(p for d in ("src", "include") for p in (root / d).rglob("*")
                   if p.suffix in (".cpp", ".h"))
    for path in files:
        layer = layer_of(path, root)
        rel = path.relative_to(root)
        if layer not in ALLOWED:
            problems.append(f"{rel}: not in a library folder (one of {', '.join(ALLOWED)})")
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            kind, name = m.groups()
            where = f"{rel}:{number}"
            if kind == '"' and name.startswith("rescuevm/"):
                target = name.split("/")[1]
                if target not in ALLOWED[layer]:
                    problems.append(f"{where}: {layer} includes {name}: {layer} may use only "
                                    f"{', '.join(sorted(ALLOWED[layer]))}")
            elif kind == '"':
                if not (path.parent / name).exists():
                    problems.append(f'{where}: "{name}" is neither rescuevm/... nor a file beside it')
            elif layer == "core":
                pure = name in PURE_STD or name.startswith(PURE_THIRD_PARTY)
                if not pure or name in IMPURE_STD:
                    problems.append(f"{where}: the pure core includes <{name}>: move the I/O to a reader "
                                    f"or an executor, or use a pure equivalent")
    for p in problems:
        print(p)
    print(f"layers: {len(files)} files read, {len(problems)} violation(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
