#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Types one line on a test VM's serial console through QEMU's chardev socket.
"""Usage: vm_console.py SERIAL_SOCKET LINE

The console's output is read from the chardev's logfile, so this only writes.
QMP goes through tests/integration/qmp.py.
QEMU takes from the socket only what the guest's UART has room for and drops
the rest when the client goes away, so the line is typed a few characters at
a time and the connection is held open a moment after it."""
import socket
import sys
import time


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sys.argv[1])
        data = sys.argv[2].encode() + b'\r'
        for i in range(0, len(data), 8):
            s.sendall(data[i:i + 8])
            time.sleep(0.05)
        time.sleep(1)


main()
