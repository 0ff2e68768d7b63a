// SPDX-License-Identifier: GPL-2.0-or-later
// Rescue image probing: format by magic, virtual size, partition-table id; never writes.
#include "rescuevm/host/probes.h"

#include "rescuevm/sys/unique_fd.h"

#include <blkid.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace rescuevm {
namespace {

std::uint64_t be64(const unsigned char *p)
{
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v = v << 8 | p[i];
    return v;
}

std::string raw_ptuuid(const std::string &path)
{
    blkid_probe pr = blkid_new_probe_from_filename(path.c_str());
    if (!pr)
        return "";
    blkid_probe_enable_partitions(pr, 1);
    blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
    blkid_probe_enable_superblocks(pr, 0);
    std::string id;
    const char *value = nullptr;
    if (blkid_do_safeprobe(pr) == 0 && blkid_probe_lookup_value(pr, "PTUUID", &value, nullptr) == 0)
        id = value;
    blkid_free_probe(pr);
    return id;
}

} // namespace

ImageFacts probe_image(const std::string &path)
{
    ImageFacts facts;
    facts.path = path;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) {
        facts.problem = fmt::format("rescue image {}: {}: put the Windows rescue image there or set vm.image",
                                    path, std::strerror(errno));
        return facts;
    }
    if (!S_ISREG(st.st_mode)) {
        facts.problem = fmt::format("rescue image {} is not a regular file: set vm.image to a qcow2 or raw file", path);
        return facts;
    }
    unsigned char header[32] = {};
    ssize_t n = ::pread(fd.get(), header, sizeof header, 0);
    if (n == static_cast<ssize_t>(sizeof header) && std::memcmp(header, "QFI\xfb", 4) == 0) {
        facts.format = "qcow2";
        facts.virtual_size = be64(header + 24);
    } else {
        facts.format = "raw";
        facts.virtual_size = static_cast<std::uint64_t>(st.st_size);
        facts.disk_id = raw_ptuuid(path);
    }
    if (facts.virtual_size == 0) {
        facts.problem = fmt::format("rescue image {} is empty: set vm.image to a Windows rescue image", path);
        return facts;
    }
    facts.found = true;
    return facts;
}

ImageFacts probe_kernel(const std::string &kernel, const std::string &initrd)
{
    ImageFacts facts;
    facts.path = kernel;
    facts.format = "kernel";
    for (const std::string &file : {kernel, initrd}) {
        if (file.empty())
            continue;
        if (::access(file.c_str(), R_OK) != 0) {
            facts.problem = fmt::format("guest kernel file {}: {}: fix vm.kernel / vm.initrd", file,
                                        std::strerror(errno));
            return facts;
        }
    }
    facts.found = true;
    return facts;
}

bool io_uring_supported()
{
    io_uring_params params{};
    long fd = ::syscall(__NR_io_uring_setup, 1, &params);
    if (fd < 0)
        return false;
    ::close(static_cast<int>(fd));
    return true;
}

} // namespace rescuevm
