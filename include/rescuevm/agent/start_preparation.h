// SPDX-License-Identifier: GPL-2.0-or-later
// Everything a QEMU start needs before the spawn, done off the event loop: disks checked and locked, signatures recorded, files made, the uplink handed over.
#pragma once

#include "rescuevm/agent/disk_guard.h"
#include "rescuevm/core/plan.h"
#include "rescuevm/core/signatures.h"
#include "rescuevm/net/uplink_claim.h"

#include <optional>
#include <string>
#include <vector>

namespace rescuevm {

struct StartInputs {
    Plan plan;                              // a copy: the job runs on a thread of its own
    std::vector<std::string> expected_disk_ids; // per passed disk: the latest partition-table id seen
    bool record_signatures = false;         // first start of the session: record before Windows runs
    bool claim_uplink = false;              // macvtap and no claim held yet
};

struct PreparedStart {
    std::vector<LockedDisk> disks;          // O_EXCL fds, in the plan's order, for QEMU
    std::vector<DiskSignature> signatures;  // when recorded by this job
    std::optional<UplinkClaim> claim;       // when claimed by this job
};

// Blocking: run it in a Worker. In order: check and lock the disks; record their
// signatures (first start); make the session files; hand the uplink over (network
// facts read afresh, the rules applied again). On failure everything this job took
// is given back (disks closed, uplink released) and the error says what and why.
Result<PreparedStart> prepare_start(const StartInputs &inputs);

// Gives back what a prepared start holds, for one that came too late to be used.
void abandon_start(PreparedStart &&prepared);

} // namespace rescuevm
