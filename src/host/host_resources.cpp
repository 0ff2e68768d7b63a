// SPDX-License-Identifier: GPL-2.0-or-later
// Memory, CPUs and KVM: the host resources the VM is sized and accelerated with.
#include "rescuevm/host/disks.h"
#include "rescuevm/sys/files.h"

#include "rescuevm/sys/unique_fd.h"
#include "sysfs_block.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rescuevm {

Result<std::uint64_t> read_memtotal(const HostRoots &roots)
{
    const std::string path = roots.procfs + "/meminfo";
    auto text = host::read_text_file(path);
    if (!text)
        return std::unexpected(text.error());
    auto total = parse_meminfo_total(*text);
    if (!total)
        return std::unexpected(prefixed(path + ": ", total.error()));
    return total;
}

unsigned read_cpu_count()
{
    long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<unsigned>(n) : 1;
}

std::string kvm_problem(const HostRoots &roots)
{
    const std::string path = roots.devfs + "/kvm";
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) {
        const int err = errno;
        std::string fix = err == EACCES || err == EPERM
            ? "run rescuevm as root (or in group kvm)"
            : "load kvm_intel or kvm_amd, enable virtualisation in the BIOS";
        return path + ": " + errno_text(err) + ": " + fix + ", or set vm.accel = \"tcg\" (slow, for tests)";
    }
    // A node that opens but is not KVM (a stale or wrong node) would make QEMU fail later.
    int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        return path + ": not a KVM device (KVM_GET_API_VERSION gave " +
               (version < 0 ? std::string(errno_text(errno)) : std::to_string(version)) +
               "): check the device node, or set vm.accel = \"tcg\" (slow, for tests)";
    return "";
}

} // namespace rescuevm
