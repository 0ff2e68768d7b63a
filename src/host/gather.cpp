// SPDX-License-Identifier: GPL-2.0-or-later
// gather_host_facts(): runs every reader of the machine into HostFacts; failures become facts, not exits.
#include "rescuevm/host/gather.h"

#include "rescuevm/host/admin_password.h"
#include "rescuevm/host/nbd_image.h"
#include "rescuevm/host/network_facts.h"
#include "rescuevm/host/probes.h"
#include "rescuevm/sys/log.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace rescuevm {
namespace {

SecretFileFacts read_password_facts(const Config &config)
{
    SecretFileFacts facts;
    facts.path = config.guest.admin_password_file;
    auto password = read_admin_password(facts.path);
    if (!password)
        facts.problem = password.error().message;
    else
        facts.present = password->has_value(); // the Secret is wiped here; each start reads it again
    return facts;
}

} // namespace

RuntimeDirFacts read_runtime_dir_facts(const std::string &dir)
{
    RuntimeDirFacts facts;
    std::string path;
    std::vector<std::string> prefixes = {"/"};
    for (std::size_t i = 1; i <= dir.size(); ++i)
        if (i == dir.size() || dir[i] == '/')
            if (std::string p = dir.substr(0, i); p != "/" && p != prefixes.back())
                prefixes.push_back(p);
    for (const std::string &p : prefixes) {
        PathComponent c;
        c.path = p;
        struct stat st {};
        if (::lstat(p.c_str(), &st) == 0) {
            c.exists = true;
            c.symlink = S_ISLNK(st.st_mode);
            c.directory = S_ISDIR(st.st_mode);
            c.uid = st.st_uid;
            c.mode = st.st_mode & 07777;
            // A symlinked parent (/var/run -> /run) is judged by where it leads.
            if (c.symlink && p != dir && ::stat(p.c_str(), &st) == 0) {
                c.directory = S_ISDIR(st.st_mode);
                c.uid = st.st_uid;
                c.mode = st.st_mode & 07777;
            }
            struct statvfs vfs {};
            if (::statvfs(p.c_str(), &vfs) == 0)
                facts.free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
        }
        facts.components.push_back(c);
        if (!c.exists)
            break;
    }
    return facts;
}

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
    if (!config.vm.kernel.empty()) {
        facts.image = probe_kernel(config.vm.kernel, config.vm.initrd);
    } else if (auto url = parse_nbd_url(config.vm.image); is_nbd_url(config.vm.image) && url) {
        NbdImageQuery query;
        query.image = config.vm.image;
        query.url = *url;
        query.tls_dir = config.vm.image_tls;
        query.tls_hostname = config.vm.image_tls_hostname.empty() ? url->host : config.vm.image_tls_hostname;
        query.qemu = config.paths.qemu;
        facts.image = probe_nbd_image(query);
    } else {
        facts.image = probe_image(config.vm.image, config.paths.qemu);
    }

    if (config.network.mode == NetworkMode::macvtap) {
        if (auto net = read_network_facts(network_options(config)))
            facts.network = std::move(*net);
        else
            facts.network.read_error = net.error().message;
    }
    facts.admin_password = read_password_facts(config);
    facts.runtime_dir = read_runtime_dir_facts(config.paths.runtime_dir);
    return facts;
}

} // namespace rescuevm
