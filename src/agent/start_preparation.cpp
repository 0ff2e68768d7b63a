// SPDX-License-Identifier: GPL-2.0-or-later
// prepare_start(): the blocking steps of a QEMU start, each undone on failure, for the agent's Worker.
#include "rescuevm/agent/start_preparation.h"

#include "rescuevm/agent/session_files.h"
#include "rescuevm/core/uplink_rules.h"
#include "rescuevm/host/network_facts.h"
#include "rescuevm/signatures/disk_signatures.h"
#include "rescuevm/sys/log.h"

#include <fmt/format.h>

namespace rescuevm {

Result<PreparedStart> prepare_start(const StartInputs &in)
{
    const Plan &plan = in.plan;
    PreparedStart out;
    std::vector<DiskInfo> planned;
    for (const DiskInfo *d : plan.passed())
        planned.push_back(*d);
    out.disks = RESCUEVM_TRY(check_and_lock_disks(planned, in.expected_disk_ids));

    if (in.record_signatures) {
        // An identity recorded earlier in this rescue boot stays the reference.
        std::vector<DiskSignature> recorded;
        if (auto old = load_signatures(plan.paths.signatures()))
            recorded = std::move(*old);
        for (const auto &disk : planned) {
            auto it = std::find_if(recorded.begin(), recorded.end(), [&](const DiskSignature &d) {
                return d.path == disk.path && d.size_bytes == disk.size_bytes;
            });
            if (it != recorded.end()) {
                out.signatures.push_back(*it);
                continue;
            }
            auto sig = read_disk_signature(disk.path);
            if (!sig)
                return fail(fmt::format("cannot record the signature of disk {} before Windows runs: {}", disk.name,
                                        sig.error().message));
            sig->identity = disk;
            sig->identity.partitions.clear();
            sig->identity.in_use.clear();
            out.signatures.push_back(std::move(*sig));
        }
        RESCUEVM_TRY(save_signatures(plan.paths.signatures(), out.signatures));
    }

    RESCUEVM_TRY(prepare_session_files(plan));

    if (in.claim_uplink) {
        NetworkOptions options = NetworkOptions{};
        options.uplink = plan.network.uplink.uplink.empty() ? "auto" : plan.network.uplink.uplink;
        auto facts = RESCUEVM_TRY(read_network_facts(options));
        if (facts.ifindex != plan.network.uplink.ifindex || facts.mac != plan.network.uplink.mac)
            return fail(fmt::format("network: uplink {} is not the interface planned ({} {}, now {} {}): restart the "
                                    "agent to plan again",
                                    options.uplink, plan.network.uplink.ifindex, plan.network.uplink.mac,
                                    facts.ifindex, facts.mac));
        ClaimOptions claim_options;
        claim_options.runtime_dir = plan.paths.dir;
        auto claim = UplinkClaim::claim(facts, claim_options);
        if (!claim)
            return fail("cannot hand the uplink to the VM: " + claim.error().message);
        out.claim.emplace(std::move(*claim));
    }
    return out;
}

void abandon_start(PreparedStart &&prepared)
{
    if (prepared.claim) {
        if (auto r = prepared.claim->release(); !r)
            log::get("network")->error("{}", r.error().message);
    }
    prepared.disks.clear();
}

} // namespace rescuevm
