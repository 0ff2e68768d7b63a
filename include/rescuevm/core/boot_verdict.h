// SPDX-License-Identifier: GPL-2.0-or-later
// Whether the firmware's own output says the rescue image did not boot, and the fix to say. Pure.
#pragma once

#include "rescuevm/core/config.h"

#include <string>
#include <string_view>

namespace rescuevm {

// `output` is what the firmware printed since the VM's last reset: the guest's serial
// console (OVMF) and the firmware debug port 0x402 (SeaBIOS). "" while nothing says
// the boot failed; else one line naming vm.image, what the firmware said and the fix.
// OVMF: a failed boot option followed by its built-in shell, with no later "starting
// Boot" of the image. SeaBIOS: "No bootable device".
std::string firmware_boot_failure(std::string_view output, Firmware firmware, const std::string &image);

} // namespace rescuevm
