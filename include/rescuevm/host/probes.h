// SPDX-License-Identifier: GPL-2.0-or-later
// Probes of what QEMU will be given: UEFI firmware, the rescue image, kernel features.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/host_facts.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rescuevm {

// Picks an x86_64 q35 UEFI build from QEMU's firmware descriptors (interop JSON,
// /usr/share/qemu/firmware): without secure boot unless asked, 4M builds first.
FirmwareFacts find_uefi_firmware(const std::string &descriptor_dir, bool secure_boot);

// Format (qcow2 or raw), virtual size and the partition-table id of the disk inside
// the rescue image (a qcow2 read through `qemu-io`, found beside `qemu`).
ImageFacts probe_image(const std::string &path, const std::string &qemu = "qemu-system-x86_64");

// How many of the image's first bytes identify its disk: the MBR, and the GPT header for
// 512- and 4096-byte sectors.
constexpr std::size_t kImageHeadBytes = 8192;

// A QEMU tool (qemu-img, qemu-io) from the directory of the configured `qemu` binary, else
// from PATH.
std::string sibling_tool(const std::string &qemu, const std::string &tool);

// The first bytes of the image's virtual disk (raw: the file; else qemu-io).
Result<std::vector<std::uint8_t>> read_image_head(const std::string &path, const std::string &format,
                                                  const std::string &qemu);
// Bytes from `qemu-io -c "read -v 0 N"` output; missing lines stay zero. Pure.
std::vector<std::uint8_t> parse_qemu_io_dump(const std::string &text, std::size_t length);

// A kernel for direct kernel boot: exists, is readable, a regular non-empty file.
ImageFacts probe_kernel(const std::string &kernel, const std::string &initrd);

// Whether this kernel lets QEMU use io_uring (it may be disabled by sysctl or seccomp).
bool io_uring_supported();

} // namespace rescuevm
