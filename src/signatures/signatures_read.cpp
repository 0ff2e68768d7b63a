// SPDX-License-Identifier: GPL-2.0-or-later
// Reads a disk's identity from its first sectors, read-only and with O_DIRECT.
#include "rescuevm/signatures/disk_signatures.h"
#include "rescuevm/sys/files.h"
#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

namespace rescuevm {

namespace {

struct FreeDeleter {
    void operator()(void *p) const { std::free(p); }
};

// An open disk that reads whole logical blocks into suitably aligned memory.
class BlockReader {
public:
    static Result<BlockReader> open(const std::string &device)
    {
        struct stat st {};
        if (::stat(device.c_str(), &st) != 0)
            return fail(fmt::format("{}: {}", device, errno_text(errno)));
        BlockReader r;
        r.device_ = device;
        // O_DIRECT bypasses the page cache: QEMU writes with cache.direct=on, so
        // cached pages from an earlier read could be stale. Image files need no such care.
        int flags = O_RDONLY | O_CLOEXEC | (S_ISBLK(st.st_mode) ? O_DIRECT : 0);
        r.fd_ = UniqueFd(::open(device.c_str(), flags));
        if (!r.fd_)
            return fail(fmt::format("{}: cannot open read-only: {}", device, errno_text(errno)));
        if (S_ISBLK(st.st_mode)) {
            int lbs = 0;
            if (::ioctl(r.fd_.get(), BLKSSZGET, &lbs) != 0 || lbs < 512)
                return fail(fmt::format("{}: cannot get the logical block size: {}", device,
                                        errno_text(errno)));
            r.block_size_ = static_cast<unsigned>(lbs);
            if (::ioctl(r.fd_.get(), BLKGETSIZE64, &r.size_) != 0)
                return fail(fmt::format("{}: cannot get the size: {}", device, errno_text(errno)));
        } else if (S_ISREG(st.st_mode)) {
            r.size_ = static_cast<std::uint64_t>(st.st_size);
        } else {
            return fail(fmt::format("{}: not a block device or image file", device));
        }
        if (r.size_ < 2ull * r.block_size_)
            return fail(fmt::format("{}: too small to hold a partition table ({} bytes)", device,
                                    r.size_));
        return r;
    }

    unsigned block_size() const { return block_size_; }
    std::uint64_t size() const { return size_; }
    std::uint64_t last_lba() const { return size_ / block_size_ - 1; }

    Result<std::vector<std::uint8_t>> read(std::uint64_t lba, std::uint64_t bytes) const
    {
        std::uint64_t blocks = (bytes + block_size_ - 1) / block_size_;
        if (lba > last_lba() || blocks > last_lba() - lba + 1)
            return fail(fmt::format("{}: sectors {}..{} lie beyond the end of the disk", device_,
                                    lba, lba + blocks - 1));
        std::size_t length = static_cast<std::size_t>(blocks * block_size_);
        void *raw = nullptr;
        // O_DIRECT wants memory aligned at least to the logical block size; a page covers 4Kn.
        std::size_t align = std::max<std::size_t>(block_size_, 4096);
        if (::posix_memalign(&raw, align, length) != 0)
            return fail(fmt::format("{}: out of memory reading {} bytes", device_, length));
        std::unique_ptr<std::uint8_t, FreeDeleter> buffer(static_cast<std::uint8_t *>(raw));
        std::size_t done = 0;
        while (done < length) {
            ssize_t n = ::pread(fd_.get(), buffer.get() + done, length - done,
                                static_cast<off_t>(lba * block_size_ + done));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return fail(fmt::format("{}: cannot read sector {}: {}", device_, lba,
                                        n < 0 ? errno_text(errno) : "unexpected end"));
            done += static_cast<std::size_t>(n);
        }
        return std::vector<std::uint8_t>(buffer.get(), buffer.get() + bytes);
    }

private:
    std::string device_;
    UniqueFd fd_;
    unsigned block_size_ = 512;
    std::uint64_t size_ = 0;
};

Result<std::vector<PartitionGuid>> read_entries(const BlockReader &disk, const GptHeader &h)
{
    auto bytes = RESCUEVM_TRY(
        disk.read(h.entries_lba, static_cast<std::uint64_t>(h.entry_count) * h.entry_size));
    return parse_gpt_entries(bytes, h);
}

} // namespace

Result<DiskSignature> read_disk_signature(const std::string &device)
{
    auto disk = RESCUEVM_TRY(BlockReader::open(device));
    DiskSignature id;
    id.path = device;
    std::error_code ec;
    auto real = std::filesystem::canonical(device, ec);
    id.name = (ec ? std::filesystem::path(device) : real).filename().string();
    id.logical_block_size = disk.block_size();
    id.size_bytes = disk.size();
    id.last_lba = disk.last_lba();

    auto head = RESCUEVM_TRY(disk.read(0, 2ull * disk.block_size()));
    auto lba0 = std::span<const std::uint8_t>(head).first(disk.block_size());
    auto lba1 = std::span<const std::uint8_t>(head).subspan(disk.block_size());
    MbrSector mbr = parse_mbr(lba0);

    if (!mbr.boot_signature || mbr.volume_boot_record || (!mbr.protective && !mbr.valid_records)) {
        id.table = "none";
        return id;
    }
    if (!mbr.protective) {
        id.table = "dos";
        id.disk_id = mbr.disk_id;
        return id;
    }

    // Only the primary header counts: Windows updates both, and a primary that
    // no longer parses is itself a change the operator must hear about.
    auto header = parse_gpt_header(lba1, 1);
    if (!header)
        return fail(fmt::format("{}: protective MBR found but {}", device, header.error().message));
    auto parts = read_entries(disk, *header);
    if (!parts)
        return fail(fmt::format("{}: {}", device, parts.error().message));
    id.table = "gpt";
    id.disk_id = header->disk_guid;
    id.partitions = std::move(*parts);
    id.backup_header_lba = header->alternate_lba;
    return id;
}

std::vector<SignatureChange> check_signatures(const std::vector<DiskSignature> &recorded)
{
    std::vector<SignatureChange> changes;
    for (const auto &before : recorded) {
        auto now = read_disk_signature(before.path);
        if (!now) {
            SignatureChange c;
            c.kind = SignatureChange::Kind::unreadable;
            c.name = before.name;
            c.path = before.path;
            c.table = before.table;
            c.old_value = before.disk_id;
            c.new_value = now.error().message;
            changes.push_back(std::move(c));
            continue;
        }
        auto found = compare(before, *now);
        changes.insert(changes.end(), found.begin(), found.end());
    }
    return changes;
}

} // namespace rescuevm
