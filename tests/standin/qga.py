#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs commands inside the stand-in server through its QEMU guest agent (qemu-ga on a virtio-serial port) and reports their output and exit status.
"""Usage:
  qga.py SOCKET wait [--timeout SEC]
      until the guest agent answers (guest-sync-delimited); exit 0, or 1 on timeout
  qga.py SOCKET exec [--timeout SEC] [--stdin FILE] -- PROGRAM [ARG...]
      run PROGRAM in the stand-in (guest-exec, output captured); its stdout and stderr are
      written to ours, its exit status is ours (128+N if killed by signal N). Exit 124 when it
      has not finished after SEC seconds (default 120; it goes on running in the stand-in).
  qga.py SOCKET cmd JSON
      one raw command, e.g. '{"execute":"guest-get-osinfo"}'; prints the "return" value as JSON

The socket is QEMU's end of the port: -chardev socket,id=qga0,path=SOCKET,server=on,wait=off
-device virtio-serial-pci -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0.
QEMU accepts one client at a time: callers serialise (standin.sh takes a lock). A client that
went away may leave a reply behind; guest-sync-delimited (0xFF, then a reply with our random
id) skips such leftovers before each session.
"""
import base64
import json
import os
import random
import socket
import sys
import time

EXIT_TIMEOUT = 124


class AgentError(Exception):
    pass


class Agent:
    def __init__(self, path, deadline):
        self.deadline = deadline
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(max(0.1, deadline - time.monotonic()))
        self.sock.connect(path)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _recv(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer from the guest agent in time")
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            raise AgentError("QEMU closed the guest agent socket")
        self.buf += data

    def _line(self):
        while b"\n" not in self.buf:
            self._recv()
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def sync(self):
        ident = random.randrange(1, 2**31)
        self.sock.sendall(b"\xff" + json.dumps({"execute": "guest-sync-delimited",
                                                "arguments": {"id": ident}}).encode() + b"\n")
        while True:                       # skip to our delimiter, then to our id
            while b"\xff" not in self.buf:
                self.buf = b""
                self._recv()
            self.buf = self.buf.split(b"\xff", 1)[1]
            while True:
                line = self._line().strip()
                if not line:
                    continue
                try:
                    reply = json.loads(line)
                except ValueError:
                    break
                if reply.get("return") == ident:
                    return
                if b"\xff" in self.buf:
                    break

    def call(self, execute, arguments=None):
        msg = {"execute": execute}
        if arguments is not None:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            line = self._line().strip()
            if not line:
                continue
            reply = json.loads(line)
            if "error" in reply:
                raise AgentError(f"{execute}: {reply['error'].get('desc', reply['error'])}")
            if "return" in reply:
                return reply["return"]


def connect(path, deadline):
    agent = Agent(path, deadline)
    agent.sync()
    return agent


def cmd_wait(path, timeout):
    deadline = time.monotonic() + timeout
    last = "not tried"
    while time.monotonic() < deadline:
        try:
            agent = connect(path, min(deadline, time.monotonic() + 5))
            agent.close()
            return 0
        except (OSError, TimeoutError, AgentError) as e:
            last = str(e)
        time.sleep(0.5)   # bounded retry while the stand-in boots
    print(f"qga.py: the guest agent on {path} did not answer within {timeout:g} s ({last})", file=sys.stderr)
    return 1


def cmd_exec(path, timeout, argv, stdin_file):
    deadline = time.monotonic() + timeout
    agent = connect(path, deadline)
    args = {"path": argv[0], "arg": argv[1:], "capture-output": True}
    if stdin_file:
        with open(stdin_file, "rb") as f:
            args["input-data"] = base64.b64encode(f.read()).decode()
    pid = agent.call("guest-exec", args)["pid"]
    delay = 0.02
    while True:
        st = agent.call("guest-exec-status", {"pid": pid})
        if st.get("exited"):
            break
        if time.monotonic() + delay > deadline:
            print(f"qga.py: {argv[0]} (pid {pid} in the stand-in) still running after {timeout:g} s", file=sys.stderr)
            return EXIT_TIMEOUT
        time.sleep(delay)   # guest-exec-status is a poll by design (there is no completion event)
        delay = min(delay * 2, 0.5)
    agent.close()
    sys.stdout.buffer.write(base64.b64decode(st.get("out-data", "")))
    sys.stdout.flush()
    sys.stderr.buffer.write(base64.b64decode(st.get("err-data", "")))
    sys.stderr.flush()
    if st.get("out-truncated") or st.get("err-truncated"):
        print("qga.py: output truncated by the guest agent (16 MiB per stream)", file=sys.stderr)
    if "signal" in st:
        return 128 + st["signal"]
    return st.get("exitcode", 255)


def main(argv):
    if len(argv) < 3 or argv[2] not in ("wait", "exec", "cmd"):
        print(__doc__, file=sys.stderr)
        return 2
    path, verb, rest = argv[1], argv[2], argv[3:]
    timeout = 120.0
    stdin_file = None
    while rest and rest[0].startswith("--") and rest[0] != "--":
        if rest[0] == "--timeout" and len(rest) > 1:
            timeout = float(rest[1])
            rest = rest[2:]
        elif rest[0] == "--stdin" and len(rest) > 1:
            stdin_file = rest[1]
            rest = rest[2:]
        else:
            print(f"qga.py: unknown option {rest[0]}", file=sys.stderr)
            return 2
    if rest and rest[0] == "--":
        rest = rest[1:]
    try:
        if verb == "wait":
            return cmd_wait(path, timeout)
        if verb == "exec":
            if not rest:
                print("qga.py: exec needs a PROGRAM", file=sys.stderr)
                return 2
            return cmd_exec(path, timeout, rest, stdin_file)
        msg = json.loads(rest[0])
        agent = connect(path, time.monotonic() + timeout)
        print(json.dumps(agent.call(msg["execute"], msg.get("arguments"))))
        return 0
    except TimeoutError as e:
        print(f"qga.py: {path}: {e}", file=sys.stderr)
        return EXIT_TIMEOUT
    except (OSError, AgentError, ValueError) as e:
        print(f"qga.py: {path}: {e}", file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(main(sys.argv))
