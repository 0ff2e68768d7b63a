#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Drives `rescuevm vm console` through pseudo-terminals for guest_console.sh and guest_agent.sh, and reads a guest's serial socket into a file.
#
# Usage (the rescuevm command line comes from RV_CONSOLE_CMD, a JSON list such as
# ["/path/rescuevm", "--config", "/tmp/x/rescuevm.toml", "--kernel-cmdline", "/tmp/x/cmdline"]):
#   console_driver.py interactive          typed commands run in the guest (rvtest.console=shell),
#                                          keyboard rules (second console read-only, --force),
#                                          Ctrl-], SIGTERM and SIGHUP detach, the terminal is restored
#   console_driver.py typed TAG            one console: `echo $((6*7))TAG` gives 42TAG; Ctrl-] detaches
#   console_driver.py agent-ends PID       a console attached while the agent (PID) gets SIGTERM: it shows
#                                          the guest powering off, ends with status 1 saying why, the
#                                          terminal restored
#   console_driver.py hold SLAVE LOG RT    a console on SLAVE, the terminal the agent logs to (its
#                                          output lands in LOG): the agent's lines wait while it
#                                          is attached, then come after one line saying so
#   console_driver.py pty-sink PATHFILE OUT   make a pty, write its slave's path to PATHFILE, copy
#                                          everything written to it into OUT (until killed)
#   console_driver.py serial-log SOCKET OUT   connect to a QEMU serial socket (retrying 30 s) and
#                                          append what comes to OUT until it closes
# Exit status 0 when every expectation held; otherwise 1 with one line on stderr saying which.
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import termios
import time

CMD = json.loads(os.environ.get("RV_CONSOLE_CMD", "[]"))


def fail(msg):
    print(f"console_driver: {msg}", file=sys.stderr)
    sys.exit(1)


class Console:
    """One `rescuevm vm console` on a pty of its own."""

    def __init__(self, *args, name="console"):
        self.name = name
        self.master, self.slave = pty.openpty()
        self.slave_path = os.ttyname(self.slave)
        self.before = termios.tcgetattr(self.slave)
        self.proc = subprocess.Popen(CMD + ["vm", "console", *args], stdin=self.slave, stdout=self.slave,
                                     stderr=self.slave, close_fds=True, start_new_session=True)
        self.out = b""

    def pump(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if r:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            self.out += data
            return bool(data)
        return False

    def expect(self, pattern, timeout=60, since=0):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while not rx.search(self.out, since):
            left = deadline - time.monotonic()
            if left <= 0:
                tail = self.out[-600:].decode("utf-8", "replace")
                fail(f"{self.name}: no {pattern!r} within {timeout} s; last output: {tail!r}")
            self.pump(min(left, 0.5))
        return rx.search(self.out, since).end()

    def never(self, pattern, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump(0.2)
        if re.search(pattern, self.out):
            fail(f"{self.name}: {pattern!r} appeared: {self.out[-400:]!r}")

    def send(self, data):
        os.write(self.master, data)

    def wait_exit(self, timeout=15):
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                fail(f"{self.name}: did not exit within {timeout} s")
            self.pump(0.2)
        while self.pump(0.1):
            pass
        return self.proc.returncode

    def restored(self):
        now = termios.tcgetattr(self.slave)
        if now != self.before:
            fail(f"{self.name}: the terminal was not restored: before {self.before[:4]}, after {now[:4]}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


def typed(tag, expect_keyboard=True):
    """Attach, run one command in the guest, see its output, detach with Ctrl-]."""
    c = Console(name=f"console-{tag}")
    c.expect(rb"attached to the guest's serial console")
    if expect_keyboard:
        c.expect(rb"you have the keyboard")
    c.send(f"echo $((6*7)){tag}\r".encode())
    c.expect(f"42{tag}".encode())
    c.send(b"\x1d")
    rc = c.wait_exit()
    if rc != 0:
        fail(f"Ctrl-] detached with exit status {rc}, want 0")
    c.expect(rb"detached from the guest console")
    c.restored()
    c.close()


def interactive():
    first = Console(name="first")
    first.expect(rb"attached to the guest's serial console \(COM1\); Ctrl-\] detaches")
    first.expect(rb"you have the keyboard")
    # The guest's shell reads what is typed (CR from a raw terminal; the guest's tty maps it).
    first.send(b"echo $((6*7))rvsum\r")
    first.expect(rb"42rvsum")

    second = Console(name="second")
    second.expect(rb"READ-ONLY")
    second.expect(rb"has the keyboard: this one is READ-ONLY")
    mark = len(second.out)
    second.send(b"echo $((5*5))ro\r")
    second.expect(rb"read-only console: what you type goes nowhere", since=mark)
    first.never(rb"25ro", 3)

    first.send(b"echo $((7*8))both\r")
    first.expect(rb"56both")
    second.expect(rb"56both")  # every console sees the guest's output

    third = Console("--force", name="third")
    third.expect(rb"you have the keyboard \(taken over")
    first.expect(rb"took the keyboard over \(--force\): this console is now READ-ONLY")
    third.send(b"echo $((9*9))force\r")
    third.expect(rb"81force")
    first.send(b"echo $((2*2))old\r")
    third.never(rb"4old", 3)

    # Ctrl-] detaches (exit 0), SIGTERM and SIGHUP end it too; each time the terminal is as before.
    third.send(b"\x1d")
    if third.wait_exit() != 0:
        fail("Ctrl-] did not detach with exit status 0")
    third.expect(rb"detached from the guest console")
    third.restored()
    second.proc.send_signal(signal.SIGTERM)
    second.wait_exit()
    second.expect(rb"detached from the guest console \(signal TERM\)")
    second.restored()
    first.proc.send_signal(signal.SIGHUP)
    first.wait_exit()
    first.restored()
    for c in (first, second, third):
        c.close()

    # The guest is unaffected: a new console has the keyboard and the shell still answers.
    typed("again")
    last = subprocess.run(CMD + ["vm", "console", "--last", "20"], capture_output=True, timeout=30)
    if last.returncode != 0 or b"42again" not in last.stdout:
        fail(f"vm console --last: status {last.returncode}, output {last.stdout[-300:]!r} {last.stderr!r}")
    if re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", last.stdout):
        fail(f"vm console --last printed control bytes: {last.stdout!r}")


def agent_ends(agent_pid):
    """A console attached while the agent stops: it sees the guest power off, ends with status 1 and a reason, the terminal restored."""
    c = Console(name="console-agent-ends")
    c.expect(rb"attached to the guest's serial console")
    os.kill(int(agent_pid), signal.SIGTERM)
    c.expect(rb"RVTEST acpi-powerdown", timeout=120)  # the guest's own last words, on this terminal
    rc = c.wait_exit(timeout=120)
    if rc != 1:
        fail(f"vm console ended with status {rc} when the agent stopped, want 1")
    c.expect(rb"the agent ended the console connection")
    c.restored()
    c.close()


def wait_in_file(path, pattern, timeout, since=0):
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        with open(path, "rb") as f:
            data = f.read()
        m = rx.search(data, since)
        if m:
            return m.end()
        if time.monotonic() > deadline:
            fail(f"no {pattern!r} in {path} within {timeout} s; its end: {data[-600:]!r}")
        time.sleep(0.2)


def hold(slave_path, log, runtime_dir):
    """A console on the terminal the agent logs to: its log lines wait until the console detaches."""
    fd = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
    before = termios.tcgetattr(fd)
    start = os.path.getsize(log)
    proc = subprocess.Popen(CMD + ["vm", "console", "--read-only"], stdin=fd, stdout=fd, stderr=fd,
                            close_fds=True, start_new_session=True)
    wait_in_file(log, rb"attached to the guest's serial console", 30, start)
    wait_in_file(log, rb"the agent's log lines on this terminal wait until you detach", 10, start)
    attached = os.path.getsize(log)
    shot = os.path.join(runtime_dir, "hold-test.ppm")
    r = subprocess.run(CMD + ["vm", "screenshot", shot], capture_output=True, timeout=60)
    if r.returncode != 0:
        fail(f"vm screenshot failed: {r.stderr!r}")
    time.sleep(2)
    with open(log, "rb") as f:
        f.seek(attached)
        during = f.read()
    if b"screenshot of the VM saved" in during:
        fail(f"the agent's log line reached the attached terminal: {during[-400:]!r}")
    proc.send_signal(signal.SIGTERM)
    if proc.wait(timeout=15) != 0:
        fail("vm console did not end with status 0 on SIGTERM")
    if termios.tcgetattr(fd) != before:
        fail("the terminal was not restored after SIGTERM")
    os.close(fd)
    after = wait_in_file(log, rb"log line\(s\) held while `rescuevm vm console` had this terminal:", 15, attached)
    wait_in_file(log, rb"screenshot of the VM saved to " + re.escape(shot.encode()), 5, after)
    os.unlink(shot)


def pty_sink(pathfile, out):
    master, slave = pty.openpty()
    with open(pathfile + ".tmp", "w") as f:
        f.write(os.ttyname(slave))
    os.rename(pathfile + ".tmp", pathfile)
    with open(out, "ab", buffering=0) as f:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                time.sleep(0.1)  # no writer at the moment (EIO): wait for one
                continue
            f.write(data)


def serial_log(path, out):
    deadline = time.monotonic() + 30
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            break
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                fail(f"cannot connect to {path}")
            time.sleep(0.05)
    with open(out, "ab", buffering=0) as f:
        while True:
            data = s.recv(65536)  # read at once: a slow reader stalls the guest
            if not data:
                return
            f.write(data)


def main():
    if len(sys.argv) < 2:
        fail("usage: console_driver.py interactive|typed TAG|agent-ends PID|hold SLAVE LOG RT|pty-sink FILE OUT|serial-log SOCK OUT")
    what, args = sys.argv[1], sys.argv[2:]
    if what == "interactive":
        interactive()
    elif what == "typed":
        typed(args[0])
    elif what == "agent-ends":
        agent_ends(args[0])
    elif what == "hold":
        hold(*args)
    elif what == "pty-sink":
        pty_sink(*args)
    elif what == "serial-log":
        serial_log(*args)
    else:
        fail(f"unknown scenario {what}")


if __name__ == "__main__":
    main()
