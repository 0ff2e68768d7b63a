// SPDX-License-Identifier: GPL-2.0-or-later
// Every warning of a plan: the start is allowed, but an operator should know. Pure.
#include "checks.h"

#include "rescuevm/core/signatures.h"

#include <fmt/format.h>

namespace rescuevm::plan_detail {

std::vector<std::string> plan_warnings(const Plan &plan, const HostFacts &host)
{
    std::vector<std::string> warnings;
    std::vector<DiskInfo> selected;
    for (const DiskInfo *d : plan.passed())
        selected.push_back(*d);
    for (auto &w : signature_collisions(selected, plan.boot.direct_kernel ? "" : plan.boot.image_disk_id))
        warnings.push_back(std::move(w));
    for (auto &w : bitlocker_notices(selected))
        warnings.push_back(std::move(w));
    if (plan.boot.nbd && plan.boot.tls_dir.empty())
        warnings.push_back(fmt::format("the rescue image {} is read over NBD without TLS "
                                       "(vm.image_unauthenticated = true): nothing proves it comes from your image "
                                       "server, and anyone on the path can read or alter what the VM boots",
                                       describe(plan.boot.nbd_url)));
    if (host.cpus > 0 && plan.vm.cpus > host.cpus)
        warnings.push_back(fmt::format("vm.cpus = {} is more than the host's {} CPUs: the VM will run slower, "
                                       "not faster",
                                       plan.vm.cpus, host.cpus));
    return warnings;
}

} // namespace rescuevm::plan_detail
