// SPDX-License-Identifier: GPL-2.0-or-later
// Reader of the display devices the server's console can be drawn on: DRM cards and their connectors, fbdev framebuffers.
#pragma once

#include "rescuevm/core/host_facts.h"
#include "rescuevm/host/disks.h"

namespace rescuevm {

// /sys/class/drm/cardN (driver, boot_vga, connectors with their status) and
// /sys/class/graphics/fbN (fix.id), in natural order. Cards without a connector
// (render-only GPUs) are left out. Changes nothing.
DisplayFacts read_display_facts(const HostRoots &roots = {});

} // namespace rescuevm
