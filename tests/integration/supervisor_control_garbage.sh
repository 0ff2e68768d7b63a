#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The agent's control socket refuses garbage (non-JSON, a JSON array, an unknown command, an over-long line, a cut-off request) and keeps working.
#
# Usage (root): tests/integration/supervisor_control_garbage.sh   (meson: meson test -C BUILD supervisor_control_garbage)
#
# With the agent running a guest (rvtest.final=wait), a Python client sends each bad request
# on its own connection and reads the answer. Asserted: the socket is mode 0600; each bad
# request gets {"ok": false, "error": ...} (the over-long line, 1 MiB without a newline, may
# instead just be dropped: the connection is closed and nothing is answered for it); an
# unknown `vm` action is refused; a request split over two writes and a client that hangs up
# mid-line do no harm; afterwards `rescuevm status` works, shows the same agent pid and the VM
# running, and the agent ends with 0 on SIGTERM.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/supervisor_lib.sh"

sup_setup "rvtest.final=wait"
sup_agent_start
sock=$SUP_RT/control.sock
mode=$(stat -c %a "$sock")
[[ $mode == 600 ]] || sup_fail "control socket mode is $mode, want 600"

python3 - "$sock" <<'EOF' || sup_fail "the control socket did not refuse garbage properly (see above)"
import json, socket, sys
path = sys.argv[1]

def ask(payload, expect_answer=True, close_early=False):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass   # the agent may close an over-long request while we still send
    if close_early:
        s.close()
        return None
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    s.close()
    if not data:
        return None
    return json.loads(data.decode())

def refused(name, payload, may_drop=False):
    reply = ask(payload)
    if reply is None and may_drop:
        print(f"ok: {name}: connection closed without an answer")
        return
    if not isinstance(reply, dict) or reply.get("ok") is not False or not reply.get("error"):
        sys.exit(f"{name}: want a refusal, got {reply!r}")
    print(f"ok: {name}: {reply['error']}")

refused("not JSON", b"hello agent\n")
refused("binary", bytes(range(1, 256)).replace(b"\n", b"") + b"\n")
refused("JSON array", b'["status"]\n')
refused("JSON string", b'"status"\n')
refused("object without command", b'{"verb":"status"}\n')
refused("command not a string", b'{"command":42}\n')
refused("unknown command", b'{"command":"reboot-host"}\n')
refused("unknown vm action", b'{"command":"vm","action":"explode"}\n')
refused("over-long line", b"x" * (1 << 20), may_drop=True)
ask(b'{"command":"sta', close_early=True)          # hang up mid-request

# A request in two writes is still one request.
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(path)
s.sendall(b'{"command":')
s.sendall(b'"status"}\n')
data = b""
while not data.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
reply = json.loads(data)
if reply.get("ok") is not True or "status" not in reply:
    sys.exit(f"split request: want a status, got {reply!r}")
print("ok: split request answered")
EOF

sup_alive "$SUP_AGENT_PID" || sup_fail "the agent died on garbage"
[[ $(sup_status agent.pid) == "$SUP_AGENT_PID" ]] || sup_fail "status is answered by another pid than the agent $SUP_AGENT_PID"
out=$(sup_rescuevm status 2>&1) || sup_fail "rescuevm status failed after the garbage: $out"
sup_wait_boots 1 || sup_fail "the guest did not boot"
sup_wait_status vm.state running 60 || sup_fail "the VM is not running after the garbage"

sup_agent_stop
[[ $SUP_AGENT_RC == 0 ]] || sup_fail "the agent exited $SUP_AGENT_RC on SIGTERM, want 0"
rv_pass "control socket (0600) refused 9 kinds of garbage, survived a hang-up mid-line, status still works"
