// SPDX-License-Identifier: GPL-2.0-or-later
// gather_host_facts(): runs every reader and probe; failures become facts, not exits.
#include "rescuevm/host/admin_password.h"
#include "rescuevm/host/gather.h"

#include "rescuevm/core/signatures.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/host/network_facts.h"
#include "rescuevm/host/probes.h"
#include "rescuevm/core/secret.h"

#include <fmt/format.h>

#include <unistd.h>


namespace rescuevm {

HostFacts gather_host_facts(const Config &config, const HostRoots &roots)
{
    auto log = log::get("host");
    HostFacts facts;
    if (auto mem = read_memtotal(roots))
        facts.memory_bytes = *mem;
    else
        log->error("{}", mem.error().message);
    facts.cpus = read_cpu_count();
    facts.kvm_problem = kvm_problem(roots);
    facts.kvm_usable = facts.kvm_problem.empty();
    facts.io_uring = io_uring_supported();
    facts.vhost_net = ::access((roots.devfs + "/vhost-net").c_str(), R_OK | W_OK) == 0;

    if (auto disks = read_disks(roots))
        facts.disks = std::move(*disks);
    else
        log->error("{}", disks.error().message);

    if (config.vm.firmware == Firmware::uefi)
        facts.firmware = find_uefi_firmware(config.paths.firmware_descriptors, config.vm.secure_boot);
    facts.image = config.vm.kernel.empty() ? probe_image(config.vm.image)
                                           : probe_kernel(config.vm.kernel, config.vm.initrd);

    if (config.network.mode == NetworkMode::macvtap) {
        if (auto net = read_network_facts(network_options(config)))
            facts.network = std::move(*net);
        else
            facts.network.problem = net.error().message;
    }
    return facts;
}

} // namespace rescuevm

namespace rescuevm {

Plan make_plan(const Config &config)
{
    Plan plan = plan_vm(gather_host_facts(config, HostRoots{}), config);

    auto password = read_admin_password(config.guest.admin_password_file);
    if (password)
        plan.checks.push_back({"password", true,
                               fmt::format("Administrator password {} ({})", describe(*password),
                                           config.guest.admin_password_file)});
    else
        plan.checks.push_back({"password", false, password.error().message});

    std::vector<DiskInfo> selected;
    for (const DiskInfo *d : plan.passed())
        selected.push_back(*d);
    for (auto &w : signature_collisions(selected, plan.host.image.disk_id))
        plan.warnings.push_back(std::move(w));
    for (auto &w : bitlocker_notices(selected))
        plan.warnings.push_back(std::move(w));
    return plan;
}

} // namespace rescuevm
