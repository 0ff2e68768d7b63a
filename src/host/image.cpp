// SPDX-License-Identifier: GPL-2.0-or-later
// Rescue image probing: format by magic, virtual size, and the partition-table id of the disk inside it; never writes.
#include "rescuevm/host/probes.h"

#include "rescuevm/core/signatures.h"
#include "rescuevm/sys/files.h"
#include "rescuevm/sys/process.h"
#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <linux/io_uring.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <vector>

namespace rescuevm {
namespace {

using namespace std::chrono_literals;


std::uint64_t be64(const unsigned char *p)
{
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v = v << 8 | p[i];
    return v;
}

} // namespace

std::string sibling_tool(const std::string &qemu, const std::string &tool)
{
    auto slash = qemu.rfind('/');
    return slash == std::string::npos ? tool : qemu.substr(0, slash + 1) + tool;
}

std::vector<std::uint8_t> parse_qemu_io_dump(const std::string &text, std::size_t length)
{
    // "00000200:  45 46 49 20 ...  EFI.PART........": offset, then up to 16 hex bytes.
    std::vector<std::uint8_t> bytes(length, 0);
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos)
            end = text.size();
        std::string_view line(text.data() + pos, end - pos);
        pos = end + 1;
        auto colon = line.find(":  ");
        if (colon != 8)
            continue;
        std::size_t offset = std::strtoull(std::string(line.substr(0, 8)).c_str(), nullptr, 16);
        for (std::size_t k = 0; k < 16; ++k) {
            std::size_t at = colon + 3 + k * 3;
            if (at + 2 > line.size() || !std::isxdigit(static_cast<unsigned char>(line[at])) ||
                !std::isxdigit(static_cast<unsigned char>(line[at + 1])))
                break;
            if (offset + k < length)
                bytes[offset + k] = static_cast<std::uint8_t>(std::stoul(std::string(line.substr(at, 2)), nullptr, 16));
        }
    }
    return bytes;
}

Result<std::vector<std::uint8_t>> read_image_head(const std::string &path, const std::string &format,
                                                  const std::string &qemu)
{
    if (format == "raw") {
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd)
            return fail(fmt::format("{}: {}", path, errno_text(errno)));
        std::vector<std::uint8_t> head(kImageHeadBytes, 0);
        if (::pread(fd.get(), head.data(), head.size(), 0) < 0)
            return fail(fmt::format("{}: {}", path, errno_text(errno)));
        return head;
    }
    // Through QEMU's own block layer: a qcow2's first guest sectors may be anywhere in
    // the file, compressed, or still in a backing file.
    SpawnOptions options;
    options.argv = {sibling_tool(qemu, "qemu-io"), "-r", "-f", format, "-c",
                    fmt::format("read -v 0 {}", kImageHeadBytes), path};
    options.clear_environment = true;
    options.env_set = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
    auto run = RESCUEVM_TRY(run_to_completion(options, 10s, 128 * 1024)); // ~76 bytes of dump per 16 bytes
    if (!run.ok())
        return fail(fmt::format("qemu-io could not read {} ({}): {}", path, run.status.describe(), run.output));
    return parse_qemu_io_dump(run.output, kImageHeadBytes);
}

ImageFacts probe_image(const std::string &path, const std::string &qemu)
{
    ImageFacts facts;
    facts.path = path;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) {
        facts.problem = fmt::format("rescue image {}: {}: put the Windows rescue image there or set vm.image",
                                    path, errno_text(errno));
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
    }
    if (facts.virtual_size == 0) {
        facts.problem = fmt::format("rescue image {} is empty: set vm.image to a Windows rescue image", path);
        return facts;
    }
    // Unknown is not a refusal: only the collision warning needs it.
    if (auto head = read_image_head(path, facts.format, qemu))
        facts.disk_id = disk_id_of_head(*head);
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
        struct stat st {};
        if (::stat(file.c_str(), &st) != 0 || ::access(file.c_str(), R_OK) != 0) {
            facts.problem = fmt::format("guest kernel file {}: {}: fix vm.kernel / vm.initrd", file, errno_text(errno));
            return facts;
        }
        if (!S_ISREG(st.st_mode) || st.st_size == 0) {
            facts.problem = fmt::format("guest kernel file {} is {}: vm.kernel and vm.initrd must name regular, "
                                        "non-empty files",
                                        file, S_ISREG(st.st_mode) ? "empty" : "not a regular file");
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
