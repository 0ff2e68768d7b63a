#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Writes the signature blkid reports as an md RAID member (md 1.2 superblock) or an LVM physical volume onto a test disk image.
"""Usage: raid_signatures.py md|lvm IMAGE

Only what libblkid checks is written (magic, offsets, checksum), so a test can
make disks that udev's rules see as linux_raid_member or LVM2_member without
mdadm, lvm2 or the md driver."""
import struct
import sys


def write_md_member(f, size):
    sectors = size // 512
    sb = bytearray(256 + 2 * 2)  # struct mdp_superblock_1 with max_dev = 2
    struct.pack_into('<III', sb, 0, 0xa92b4efc, 1, 0)  # magic, major_version, feature_map
    sb[16:32] = b'rescuevm-test-md'                       # set_uuid
    sb[32:45] = b'rescuevm:test'                          # set_name
    struct.pack_into('<I', sb, 72, 1)                     # level: raid1
    struct.pack_into('<Q', sb, 80, sectors - 2048)        # size
    struct.pack_into('<I', sb, 92, 2)                     # raid_disks
    struct.pack_into('<QQQ', sb, 128, 2048, sectors - 2048, 8)  # data_offset, data_size, super_offset
    sb[168:184] = b'rescuevm-test-d0'                     # device_uuid
    struct.pack_into('<I', sb, 220, 2)                    # max_dev
    struct.pack_into('<HH', sb, 256, 0, 1)                # dev_roles
    total = sum(struct.unpack('<%dI' % (len(sb) // 4), bytes(sb)))
    struct.pack_into('<I', sb, 216, ((total & 0xffffffff) + (total >> 32)) & 0xffffffff)  # sb_csum
    f.seek(4096)  # version 1.2: 4 KiB from the start
    f.write(sb)


def lvm_crc(data, crc=0xf597a6cf):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xedb88320 if crc & 1 else 0)
    return crc


def write_lvm_pv(f, size):
    sector = bytearray(512)
    sector[0:8] = b'LABELONE'
    struct.pack_into('<Q', sector, 8, 1)                  # sector_xl
    struct.pack_into('<I8s', sector, 20, 32, b'LVM2 001')  # offset_xl, type
    pv = b'RescueVMTestPhysicalVolumeLabel0' + struct.pack('<Q', size)
    pv += struct.pack('<QQQQ', 1 << 20, 0, 0, 0)          # data area list
    pv += struct.pack('<QQQQ', 4096, (1 << 20) - 4096, 0, 0)  # metadata area list
    sector[32:32 + len(pv)] = pv
    struct.pack_into('<I', sector, 16, lvm_crc(bytes(sector[20:])))  # crc_xl
    f.seek(512)  # the label is in sector 1
    f.write(sector)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ('md', 'lvm'):
        sys.exit(__doc__)
    with open(sys.argv[2], 'r+b') as f:
        f.seek(0, 2)
        size = f.tell()
        (write_md_member if sys.argv[1] == 'md' else write_lvm_pv)(f, size)


main()
