#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Nothing that runs on the host (src/, include/, units/, initramfs/) can reboot, halt, power off or kexec it: no reboot(2), no systemctl reboot, no shutdown -r...
#
# Usage: tests/integration/no_host_reboot.sh   (meson: meson test -C BUILD no_host_reboot; no root needed)
#
# The checker looks at code, not prose: comments are removed first, and for the C/C++ call
# patterns string literals are emptied too, so a log line such as "guest restarted itself
# (Windows reboot)" or a comment saying "never reboot the host" does not trip it. It flags:
#   C/C++ (code only): reboot(...), RB_AUTOBOOT / RB_HALT_SYSTEM / RB_POWER_OFF / RB_KEXEC /
#     RB_SW_SUSPEND, LINUX_REBOOT_*, SYS_reboot / __NR_reboot / SYS_kexec_*, kexec_load /
#     kexec_file_load, #include <sys/reboot.h> or <linux/reboot.h>
#   commands (in code and in string literals, any file): systemctl [options] reboot | poweroff |
#     halt | kexec | soft-reboot (also as separate argv strings "systemctl", ..., "reboot"),
#     shutdown -r/-h/-P/-H/now/+N/--reboot..., /sbin/ or /usr/sbin/ reboot|poweroff|halt|shutdown,
#     reboot|poweroff|halt -f/-p/--force..., init or telinit 0|6, sysrq-trigger, login1 Reboot/PowerOff,
#     a string literal that is exactly "reboot", "poweroff", "halt", "shutdown", "kexec"
#   shell scripts: reboot, poweroff, halt at a command position (line start, after ; & | then do
#     else exec)
#   systemd units: FailureAction=, SuccessAction=, StartLimitAction=, JobTimeoutAction=... set to
#     reboot*, poweroff*, halt*, kexec, exit*
#   udev rules: RUN+= with any of the commands above (checked as strings)
# The test first runs the checker on planted samples: every pattern must be found in a bad
# sample, and a sample of harmless prose, comments and log messages must pass. Only then is the
# real tree checked. The guest's own init (tests/guest/init) powers the *guest* off and is not
# in the checked directories.
set -euo pipefail

SOURCE_ROOT=${SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
name=no_host_reboot
fail() { printf 'FAIL: %s: %s\n' "$name" "$*" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rv-$name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/check.py" <<'EOF'
"""Prints FILE:LINE: WHAT: TEXT for every way to reboot/halt/power off the host found under the given roots."""
import os, re, sys

CPP = (".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp")
C_CODE = [
    (r"(?<![\w.>:])reboot\s*\(", "reboot(2) call"),
    (r"\bRB_(AUTOBOOT|HALT_SYSTEM|POWER_OFF|KEXEC|SW_SUSPEND|ENABLE_CAD|DISABLE_CAD)\b", "reboot(2) command constant"),
    (r"\bLINUX_REBOOT_\w+", "reboot(2) magic/command constant"),
    (r"\b(SYS_reboot|__NR_reboot|SYS_kexec_load|SYS_kexec_file_load|__NR_kexec_\w+)\b", "reboot/kexec syscall number"),
    (r"\bkexec_(file_)?load\s*\(", "kexec call"),
    (r"#\s*include\s*<(sys|linux)/reboot\.h>", "reboot header"),
]
SH_WORD = r"(/usr)?(/s?bin/)?"
COMMANDS = [
    (r"\bsystemctl\b(\s+-{1,2}[\w=-]+)*\s+(reboot|poweroff|halt|kexec|soft-reboot)\b", "systemctl power command"),
    (r"\"systemctl\"\s*,\s*(\"[^\"]*\"\s*,\s*)*\"(reboot|poweroff|halt|kexec|soft-reboot)\"", "systemctl power command (argv)"),
    (r"\bshutdown(\s+|\"\s*,\s*\")(-[a-zA-Z]*[rhHPk]\b|--(reboot|halt|poweroff)\b|now\b|\+?[0-9]+\b)", "shutdown command"),
    (r"/s?bin/(reboot|poweroff|halt|shutdown|telinit|kexec)\b", "power command path"),
    (r"\b(reboot|poweroff|halt)(\s+|\"\s*,\s*\")(-[a-zA-Z]*[fpdn]\b|--(force|poweroff|reboot|halt|no-wall)\b)", "power command with flags"),
    (r"\b(tel)?init(\s+|\"\s*,\s*\")[06]\b", "init runlevel 0/6"),
    (r"sysrq-trigger", "magic SysRq trigger"),
    (r"login1.*\b(Reboot|PowerOff|Halt|KExec)\b", "logind power call"),
    # As an argument or list element: {"reboot"}, spawn("halt"), argv = {..., "shutdown"}; not status == "shutdown".
    (r"[{(,]\s*\"(/usr)?(/s?bin/)?(reboot|poweroff|halt|shutdown|kexec|telinit)\"\s*[,})]", "power command as an argv string"),
]
SHELL_CMD = [
    (r"(^|[;&|]|\b(then|do|else|exec)\b)\s*" + SH_WORD + r"(reboot|poweroff|halt)\b(?!\s*[=(])", "power command in a script"),
]
UNIT = [
    (r"^\s*(FailureAction|SuccessAction|StartLimitAction|JobTimeoutAction|JobRunningTimeoutAction|WatchdogAction)\s*="
     r"\s*(reboot|poweroff|halt|kexec|exit|soft-reboot)", "unit action that ends the host"),
]

def strip_cpp_comments(text):
    # Keep line numbers: replace comments by spaces (newlines kept), strings kept as they are.
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1]); i = j + 1
        else:
            out.append(c); i += 1
    return "".join(out)

def empty_cpp_strings(text):
    return re.sub(r'"(\\.|[^"\\\n])*"', '""', re.sub(r"'(\\.|[^'\\\n])*'", "''", text))

def strip_hash_comments(text):
    lines = []
    for line in text.split("\n"):
        if re.match(r"\s*#", line) and not re.match(r"\s*#\s*include", line):
            lines.append("")
        else:
            lines.append(re.sub(r"(^|\s)#.*$", "", line))   # " # comment" after code
    return "\n".join(lines)

def kind(path):
    base = os.path.basename(path)
    if base.endswith(CPP):
        return "cpp"
    if base.endswith((".service", ".socket", ".target", ".timer", ".mount", ".path")):
        return "unit"
    if base.endswith(".rules"):
        return "rules"
    if base.endswith((".sh", ".bash")) or base in ("meson.build",):
        return "shell" if base != "meson.build" else "other"
    try:
        with open(path, "rb") as f:
            head = f.readline()
    except OSError:
        return None
    if head.startswith(b"#!") and (b"sh" in head):
        return "shell"
    return "other"

def scan(path, found):
    k = kind(path)
    if k is None:
        return
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return
    if k == "cpp":
        views = [(strip_cpp_comments(text), COMMANDS)]
        views.append((empty_cpp_strings(views[0][0]), C_CODE))
    elif k == "shell":
        code = strip_hash_comments(text)
        views = [(code, COMMANDS + SHELL_CMD)]
    elif k == "unit":
        code = strip_hash_comments(text)
        views = [(code, COMMANDS + UNIT)]
    else:
        code = strip_hash_comments(text)
        views = [(code, COMMANDS)]
    for view, patterns in views:
        for lineno, line in enumerate(view.split("\n"), 1):
            for pattern, what in patterns:
                if re.search(pattern, line):
                    found.append(f"{path}:{lineno}: {what}: {text.split(chr(10))[lineno - 1].strip()}")

found = []
for root in sys.argv[1:]:
    if os.path.isfile(root):
        scan(root, found)
        continue
    for dirpath, dirnames, filenames in os.walk(root):
        for fn in sorted(filenames):
            scan(os.path.join(dirpath, fn), found)
for f in found:
    print(f)
EOF

check() { python3 "$tmp/check.py" "$@"; }

# --- 1. the checker must catch each planted call -----------------------------------------
bad=$tmp/bad
mkdir -p "$bad"
n=0
plant() {   # plant EXT CONTENT: one bad sample per file, so each must be found on its own
  n=$((n + 1))
  printf '%s\n' "$2" >"$bad/sample$n.$1"
}
plant cpp '#include <sys/reboot.h>'
plant cpp 'void f() { ::reboot(RB_AUTOBOOT); }'
plant cpp 'void f() { reboot (0x4321fedc); }'
plant cpp 'long r = syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, 0, 0, 0);'
plant cpp 'int x = LINUX_REBOOT_CMD_POWER_OFF;'
plant cpp 'void f() { sync(); ::reboot(RB_POWER_OFF); }'
plant cpp 'void f() { kexec_file_load(k, i, 0, "", 0); }'
plant cpp 'int r = std::system("systemctl reboot");'
plant cpp 'int r = std::system("systemctl --force --no-wall poweroff");'
plant cpp 'std::vector<std::string> a = {"systemctl", "--no-block", "halt"};'
plant cpp 'options.argv = {"shutdown", "-r", "now"};'
plant cpp 'system("shutdown -h +1");'
plant cpp 'options.argv = {"/sbin/reboot"};'
plant cpp 'options.argv = {"reboot"};'
plant cpp 'spawn({"poweroff", "-f"});'
plant cpp 'run_helper({"/usr/sbin/halt"}, log);'
plant cpp 'spawn("shutdown");'
plant cpp 'write_file("/proc/sysrq-trigger", "b");'
plant cpp 'call("org.freedesktop.login1.Manager", "Reboot");'
plant cpp 'exec("telinit 6");'
plant sh 'reboot'
plant sh 'if true; then poweroff -f; fi'
plant sh 'sync; halt'
plant sh 'exec /sbin/reboot'
plant sh 'echo b >/proc/sysrq-trigger'
plant sh 'systemctl kexec'
plant sh '[ "$x" ] && reboot'
plant service $'[Unit]\nFailureAction=reboot-force'
plant service $'[Service]\nExecStopPost=/usr/bin/systemctl poweroff'
plant rules 'ACTION=="add", RUN+="/sbin/shutdown -r now"'
for ((i = 1; i <= n; i++)); do
  f=$(ls "$bad"/sample$i.*)
  [[ -n $(check "$f") ]] || fail "the checker misses a planted host reboot in $(basename "$f"): $(cat "$f")"
done

# --- 2. ...and leave prose, comments and log messages alone ------------------------------
good=$tmp/good
mkdir -p "$good"
cat >"$good/ok.cpp" <<'EOC'
// The agent never calls reboot(2) or systemctl reboot: nothing the VM does reboots the host.
/* shutdown -r now would be a disaster here; so would /sbin/reboot and RB_AUTOBOOT. */
log->info("guest restarted itself (Windows reboot {}); VM keeps running, host stays in rescue", n);
log->info("guest powered itself off (Windows shutdown); the VM stays off");
log->warn("check the disk before rebooting the server (reboot (2) is never called)");
c.log(kInfo, "host reboot: never; a second SIGTERM skips the wait");
p.restart_on_poweroff = cfg.supervisor.on_guest_poweroff == OnGuestPoweroff::restart;
b.add({"-action", "reboot=reset,shutdown=pause,panic=pause"});
c.s.reboots++; on_guest_shutdown(c, e); state.reboot_count = 0; if (status == "shutdown") stop();
feed(sv::GuestReset{reason, guest}); qmp("system_powerdown"); qmp("system_reset");
EOC
cat >"$good/ok.sh" <<'EOC'
#!/bin/sh
# The host is never rebooted or powered off; reboot and poweroff happen in the guest only.
say "INFO" "the VM may reboot; the host stays in rescue"
reboots=0
poweroff_policy=stay-off
echo "to end the session: systemctl stop rescuevm (never systemctl reboot here)" # not a call
EOC
cat >"$good/ok.service" <<'EOC'
[Service]
# FailureAction=reboot would be wrong: the host must stay up.
Restart=on-failure
ExecStart=/usr/sbin/rescuevm run
EOC
out=$(check "$good")
# The echo line above mentions "systemctl reboot" inside a string: that IS flagged on purpose
# (a command in a string may be run); everything else in the good samples must pass.
out=$(grep -v 'ok.sh:6:' <<<"$out" || true)
[[ -z $out ]] || fail "the checker flags harmless text: $out"
[[ -n $(check "$good/ok.sh") ]] || fail "the checker misses 'systemctl reboot' inside a shell string"

# --- 3. the real tree --------------------------------------------------------------------
roots=()
for d in src include units initramfs; do
  [[ -d $SOURCE_ROOT/$d ]] && roots+=("$SOURCE_ROOT/$d")
done
((${#roots[@]})) || fail "no source directories under $SOURCE_ROOT"
out=$(check "${roots[@]}")
[[ -z $out ]] || fail "code that could reboot, halt or power off the host:"$'\n'"$out"
files=$(find "${roots[@]}" -type f | wc -l)
printf 'PASS: %s: %d planted host-reboot samples caught, harmless text passed, %d files in %s clean\n' \
  "$name" "$n" "$files" "${roots[*]#"$SOURCE_ROOT/"}"
