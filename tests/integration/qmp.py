#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
# A small QMP client for integration tests: run commands, print replies and events, wait for events.
"""Usage: qmp.py [options] SOCKET [COMMAND ...]

Connects to QEMU's QMP unix socket SOCKET (retrying until it exists, within --timeout),
negotiates (qmp_capabilities), runs each COMMAND in order and prints every reply and every
event as one compact JSON line on stdout (json.dumps with separators (",", ":"), so tests can
grep '"event":"RESET"' or '"status":"running"'). The greeting and the qmp_capabilities reply
are not printed.

COMMAND is a bare command name ("cont", "system_powerdown", "query-status") or a JSON object
('{"execute":"human-monitor-command","arguments":{"command-line":"info block"}}').

Options:
  --timeout SEC        overall deadline for connecting, replies and waits (default 60)
  --wait-event SPEC    after the commands, wait until an event matching SPEC has arrived
                       (counting events that came in while the commands ran). SPEC is
                       NAME or NAME:key=value[,key=value...] matched against the event's
                       "data" (values compared as strings; true/false in lower case), e.g.
                       SHUTDOWN:guest=true,reason=guest-shutdown. Repeat the option to wait
                       for several events; repeating one SPEC waits for that many.
  --follow             after the commands and waits, keep printing events until QEMU closes
                       the connection (exit 0) or --timeout passes (exit 2)
  --no-negotiate       do not send qmp_capabilities (to test QEMU's refusal)

Exit status: 0 success; 1 a command returned an error; 2 timeout; 3 cannot connect or the
connection closed before the commands/waits finished; 64 bad usage.
Only one client can use a QMP socket at a time: give QEMU a second -qmp socket for a
long-running --follow client.
"""

import argparse
import json
import os
import socket
import sys
import time


class Closed(Exception):
    pass


class Timeout(Exception):
    pass


class Qmp:
    def __init__(self, path, deadline):
        self.deadline = deadline
        self.buf = b""
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() >= deadline:
                    raise Closed(f"cannot connect to {path}")
                time.sleep(0.05)   # QEMU is still starting; a test helper may retry briefly

    def read(self):
        """Next JSON message from QEMU; raises Timeout or Closed."""
        while b"\n" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Timeout() from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("QEMU closed the QMP connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.strip()
        return json.loads(line) if line else self.read()

    def send(self, obj):
        self.sock.sendall(json.dumps(obj).encode() + b"\r\n")


def parse_spec(spec):
    name, _, rest = spec.partition(":")
    want = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"bad --wait-event {spec!r}: want NAME[:key=value,...]")
        want[key] = value
    return name, want


def as_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def matches(event, spec):
    name, want = spec
    if event.get("event") != name:
        return False
    data = event.get("data", {})
    return all(k in data and as_text(data[k]) == v for k, v in want.items())


def parse_command(text, number):
    if text.lstrip().startswith("{"):
        cmd = json.loads(text)
        if "execute" not in cmd:
            raise ValueError(f"command {text!r} has no \"execute\"")
    else:
        cmd = {"execute": text}
    cmd["id"] = f"qmp.py-{number}"
    return cmd


def main():
    ap = argparse.ArgumentParser(usage=__doc__.splitlines()[0][7:], add_help=True)
    ap.add_argument("socket")
    ap.add_argument("commands", nargs="*")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--wait-event", action="append", default=[])
    ap.add_argument("--follow", action="store_true")
    ap.add_argument("--no-negotiate", action="store_true")
    args = ap.parse_args()
    try:
        commands = [parse_command(c, i) for i, c in enumerate(args.commands, 1)]
        waits = [parse_spec(s) for s in args.wait_event]
    except ValueError as e:   # json.JSONDecodeError is a ValueError
        print(f"qmp.py: {e}", file=sys.stderr)
        return 64

    def emit(msg):
        sys.stdout.write(json.dumps(msg, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def note_event(msg):
        emit(msg)
        for i, spec in enumerate(waits):
            if matches(msg, spec):
                del waits[i]
                break

    status = 0
    following = False
    try:
        qmp = Qmp(args.socket, time.monotonic() + args.timeout)
        greeting = qmp.read()
        if "QMP" not in greeting:
            print(f"qmp.py: unexpected greeting {greeting}", file=sys.stderr)
            return 3
        if not args.no_negotiate:
            qmp.send({"execute": "qmp_capabilities", "id": "qmp.py-0"})
            while True:
                msg = qmp.read()
                if msg.get("id") == "qmp.py-0":
                    if "error" in msg:
                        emit(msg)
                        return 1
                    break
                if "event" in msg:
                    note_event(msg)
        for cmd in commands:
            qmp.send(cmd)
            while True:   # events may arrive before the reply: match the reply by id
                msg = qmp.read()
                if "event" in msg:
                    note_event(msg)
                    continue
                emit(msg)
                if msg.get("id") == cmd["id"]:
                    if "error" in msg:
                        status = 1
                    break
        while waits:
            msg = qmp.read()
            if "event" in msg:
                note_event(msg)
        if args.follow:
            following = True
            while True:
                msg = qmp.read()
                if "event" in msg:
                    note_event(msg)
                else:
                    emit(msg)
    except Timeout:
        missing = ", ".join(n + (":" + ",".join(f"{k}={v}" for k, v in w.items()) if w else "")
                            for n, w in waits)
        print(f"qmp.py: timeout after {args.timeout:g}s" + (f" waiting for {missing}" if missing else ""),
              file=sys.stderr)
        return 2
    except Closed as e:
        if following:
            return 0
        print(f"qmp.py: {e}", file=sys.stderr)
        return 3
    return status


if __name__ == "__main__":
    sys.exit(main())
