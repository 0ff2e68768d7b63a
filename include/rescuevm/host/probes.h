// SPDX-License-Identifier: GPL-2.0-or-later
// Probes of what QEMU will be given: UEFI firmware, the rescue image, kernel features.
#pragma once

#include "rescuevm/core/host_facts.h"

#include <string>

namespace rescuevm {

// Picks an x86_64 q35 UEFI build from QEMU's firmware descriptors (interop JSON,
// /usr/share/qemu/firmware): without secure boot unless asked, 4M builds first.
FirmwareFacts find_uefi_firmware(const std::string &descriptor_dir, bool secure_boot);

// Format (qcow2 or raw), virtual size and partition-table id of the rescue image.
ImageFacts probe_image(const std::string &path);

// A kernel for direct kernel boot: exists and is readable.
ImageFacts probe_kernel(const std::string &kernel, const std::string &initrd);

// Whether this kernel lets QEMU use io_uring (it may be disabled by sysctl or seccomp).
bool io_uring_supported();

} // namespace rescuevm
