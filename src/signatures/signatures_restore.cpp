// SPDX-License-Identifier: GPL-2.0-or-later
// Writes recorded disk identities back through libfdisk, checking before and after.
#include "rescuevm/signatures/disk_signatures.h"
#include "rescuevm/sys/files.h"
#include "rescuevm/sys/log.h"
#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <libfdisk/libfdisk.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>

namespace rescuevm {

namespace {

struct ContextDeleter {
    void operator()(fdisk_context *c) const { fdisk_unref_context(c); }
};
struct PartitionDeleter {
    void operator()(fdisk_partition *p) const { fdisk_unref_partition(p); }
};

std::string lower(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// libfdisk reports through "ask" callbacks; warnings go to our log, questions are
// refused so that nothing interactive can ever decide about a customer's disk.
int on_fdisk_ask(fdisk_context *, fdisk_ask *ask, void *)
{
    auto log = log::get("signatures");
    switch (fdisk_ask_get_type(ask)) {
    case FDISK_ASKTYPE_INFO:
        log->info("libfdisk: {}", fdisk_ask_print_get_mesg(ask));
        return 0;
    case FDISK_ASKTYPE_WARNX:
        log->warn("libfdisk: {}", fdisk_ask_print_get_mesg(ask));
        return 0;
    case FDISK_ASKTYPE_WARN:
        log->warn("libfdisk: {}: {}", fdisk_ask_print_get_mesg(ask),
                  errno_text(fdisk_ask_print_get_errno(ask)));
        return 0;
    default:
        return -EINVAL;
    }
}

Result<std::vector<std::uint8_t>> read_at(int fd, std::uint64_t offset, std::size_t length,
                                          const std::string &device)
{
    std::vector<std::uint8_t> buf(length);
    ssize_t n = ::pread(fd, buf.data(), length, static_cast<off_t>(offset));
    if (n != static_cast<ssize_t>(length))
        return fail(fmt::format("{}: cannot read sector 0: {}", device,
                                n < 0 ? errno_text(errno) : "short read"));
    return buf;
}

Result<void> write_at(int fd, std::uint64_t offset, std::span<const std::uint8_t> bytes,
                      const std::string &device)
{
    ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n != static_cast<ssize_t>(bytes.size()) || ::fsync(fd) != 0)
        return fail(fmt::format("{}: cannot write sector 0: {}", device,
                                n < 0 ? errno_text(errno) : "short write"));
    return {};
}

bool is_hex(const std::string &s, std::size_t from, std::size_t count)
{
    return from + count <= s.size() &&
           std::all_of(s.begin() + static_cast<std::ptrdiff_t>(from),
                       s.begin() + static_cast<std::ptrdiff_t>(from + count),
                       [](unsigned char c) { return std::isxdigit(c); });
}

bool is_guid(const std::string &s)
{
    return s.size() == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' &&
           is_hex(s, 0, 8) && is_hex(s, 9, 4) && is_hex(s, 14, 4) && is_hex(s, 19, 4) &&
           is_hex(s, 24, 12);
}

// The record comes from a file: a damaged one must not reach libfdisk.
Result<void> check_record(const DiskSignature &r)
{
    bool ok = true;
    if (r.table == "dos")
        ok = r.disk_id.size() == 8 && is_hex(r.disk_id, 0, 8) && r.partitions.empty();
    else if (r.table == "gpt")
        ok = is_guid(r.disk_id) && std::all_of(r.partitions.begin(), r.partitions.end(),
                                               [](const PartitionGuid &p) {
                                                   return p.number >= 1 && is_guid(p.guid);
                                               });
    else
        ok = r.table == "none";
    if (!ok || r.path.empty() || (r.logical_block_size != 512 && r.logical_block_size != 4096 &&
                                  r.logical_block_size != 1024 && r.logical_block_size != 2048))
        return fail(fmt::format("the recorded identity of disk {} ({}) is damaged (table \"{}\", "
                                "identity \"{}\"); nothing was written",
                                r.name, r.path, r.table, r.disk_id));
    return {};
}

// What restore will write, decided before the disk is opened for writing.
struct RestorePlan {
    bool disk_id = false;
    std::vector<PartitionGuid> partitions; // the recorded GUIDs to write back
    std::vector<std::string> actions;
};

Result<RestorePlan> plan_restore(const DiskSignature &recorded, const DiskSignature &now)
{
    const std::string disk = fmt::format("disk {} ({})", recorded.name, recorded.path);
    if (now.table != recorded.table)
        return fail(fmt::format(
            "{}: the partition table was {} when recorded and is {} now; rescuevm only writes "
            "identities back into the same partition table and never creates or converts one: "
            "check the disk (gdisk -l {}) and restore its partition table from a backup first",
            disk, recorded.table, now.table, recorded.path));
    if (now.logical_block_size != recorded.logical_block_size)
        return fail(fmt::format("{}: logical block size was {} and is {} now; this is not the "
                                "disk that was recorded, nothing was written",
                                disk, recorded.logical_block_size, now.logical_block_size));
    if (now.table == "gpt" && now.backup_header_lba != now.last_lba)
        return fail(fmt::format(
            "{}: the backup GPT header is at sector {}, not at the last sector {}; libfdisk would "
            "move it while restoring, so rescuevm leaves this disk alone: fix it with gdisk "
            "(expert menu, 'e') and run the restore again",
            disk, now.backup_header_lba, now.last_lba));

    RestorePlan plan;
    for (const auto &c : compare(recorded, now)) {
        switch (c.kind) {
        case SignatureChange::Kind::disk_id:
            plan.disk_id = true;
            plan.actions.push_back(fmt::format("{} {} -> {}",
                                               now.table == "gpt" ? "disk GUID" : "disk signature",
                                               c.new_value, c.old_value));
            break;
        case SignatureChange::Kind::partition_guid: {
            auto it = std::find_if(recorded.partitions.begin(), recorded.partitions.end(),
                                   [&](const PartitionGuid &p) { return p.number == c.partition; });
            plan.partitions.push_back(*it);
            plan.actions.push_back(fmt::format("partition {} GUID {} -> {}", c.partition,
                                               c.new_value, c.old_value));
            break;
        }
        case SignatureChange::Kind::partition_moved:
            plan.actions.push_back(fmt::format("partition {} left alone: it was at {} and is now {}",
                                               c.partition, c.old_value, c.new_value));
            break;
        case SignatureChange::Kind::table:
        case SignatureChange::Kind::unreadable:
            return fail(describe_change(c));
        }
    }
    return plan;
}

} // namespace

Result<RestoreReport> restore_signature(const DiskSignature &recorded)
{
    auto log = log::get("signatures");
    const std::string &device = recorded.path;
    RESCUEVM_TRY(check_record(recorded));
    auto now_read = read_disk_signature(device);
    if (!now_read)
        return fail(fmt::format("{}; nothing was written", now_read.error().message));
    const DiskSignature now = std::move(*now_read);
    RestorePlan plan = RESCUEVM_TRY(plan_restore(recorded, now));

    RestoreReport report;
    report.actions = plan.actions;
    if (!plan.disk_id && plan.partitions.empty()) {
        report.actions.push_back("identity is as recorded, nothing written");
        return report;
    }

    // O_EXCL on a block device fails while a partition is mounted or another
    // program holds it exclusively: the last guard against writing under a user.
    UniqueFd fd(::open(device.c_str(), O_RDWR | O_CLOEXEC | O_EXCL));
    if (!fd)
        return fail(fmt::format("{}: cannot open for writing: {}{}", device, errno_text(errno),
                                errno == EBUSY ? " (in use: unmount its partitions and stop "
                                                 "the VM, then run the restore again)"
                                               : ""));
    // libfdisk reads through the page cache; drop it so it sees what QEMU wrote with O_DIRECT.
    if (::ioctl(fd.get(), BLKFLSBUF, 0) != 0)
        ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);

    const std::size_t block = recorded.logical_block_size;
    auto sector0 = RESCUEVM_TRY(read_at(fd.get(), 0, block, device));

    std::unique_ptr<fdisk_context, ContextDeleter> cxt(fdisk_new_context());
    if (!cxt)
        return fail("libfdisk: out of memory");
    fdisk_set_ask(cxt.get(), on_fdisk_ask, nullptr);
    if (int rc = fdisk_assign_device_by_fd(cxt.get(), fd.get(), device.c_str(), 0); rc != 0)
        return fail(fmt::format("{}: libfdisk cannot read the disk: {}; nothing was written", device,
                                errno_text(-rc)));
    fdisk_enable_wipe(cxt.get(), 0);

    const bool gpt = recorded.table == "gpt";
    if (!fdisk_has_label(cxt.get()) ||
        !(gpt ? fdisk_is_label(cxt.get(), GPT) : fdisk_is_label(cxt.get(), DOS)))
        return fail(fmt::format("{}: libfdisk does not see a {} partition table here; nothing was "
                                "written", device, recorded.table));
    if (fdisk_get_sector_size(cxt.get()) != block)
        return fail(fmt::format("{}: libfdisk uses {}-byte sectors, the disk has {}; nothing was "
                                "written", device, fdisk_get_sector_size(cxt.get()), block));
    if (fdisk_label_is_changed(fdisk_get_label(cxt.get(), nullptr)))
        return fail(fmt::format("{}: libfdisk wants to repair this partition table (see the "
                                "messages above); rescuevm only restores identities: check the "
                                "disk with gdisk -l {}; nothing was written", device, device));
    // libfdisk and our O_DIRECT read must agree on what is there before anything is changed.
    char *seen_raw = nullptr;
    fdisk_get_disklabel_id(cxt.get(), &seen_raw);
    std::string seen = seen_raw ? seen_raw : "";
    std::free(seen_raw);
    if (lower(seen) != (gpt ? now.disk_id : "0x" + now.disk_id))
        return fail(fmt::format("{}: libfdisk reads identity {} but the disk's sectors say {}; "
                                "nothing was written", device, seen, now.disk_id));

    if (plan.disk_id) {
        std::string id = gpt ? recorded.disk_id : "0x" + recorded.disk_id;
        if (int rc = fdisk_set_disklabel_id_from_string(cxt.get(), id.c_str()); rc != 0)
            return fail(fmt::format("{}: libfdisk refuses identity {}: {}; nothing was written",
                                    device, recorded.disk_id, errno_text(-rc)));
    }
    for (const auto &p : plan.partitions) {
        std::unique_ptr<fdisk_partition, PartitionDeleter> pa(fdisk_new_partition());
        if (!pa || fdisk_partition_set_uuid(pa.get(), p.guid.c_str()) != 0)
            return fail("libfdisk: out of memory");
        if (int rc = fdisk_set_partition(cxt.get(), p.number - 1, pa.get()); rc != 0)
            return fail(fmt::format("{}: libfdisk cannot set partition {} GUID {}: {}; nothing "
                                    "was written", device, p.number, p.guid, errno_text(-rc)));
    }

    log->warn("{}: writing recorded identity back: {}", device, fmt::join(plan.actions, "; "));
    if (int rc = fdisk_write_disklabel(cxt.get()); rc != 0)
        return fail(fmt::format("{}: libfdisk failed to write the partition table: {}; check the "
                                "disk with gdisk -v {} before rebooting the server",
                                device, errno_text(-rc), device));
    report.written = true;

    // libfdisk rewrites sector 0 (for GPT it normalises the protective MBR's CHS
    // fields); the customer's sector 0 must stay as it was but for the signature.
    auto expected0 = sector0;
    if (!gpt && plan.disk_id)
        for (std::size_t i = 0; i < 4; ++i)
            expected0[0x1B8 + i] =
                static_cast<std::uint8_t>(std::stoul(recorded.disk_id, nullptr, 16) >> (8 * i));
    auto written0 = RESCUEVM_TRY(read_at(fd.get(), 0, block, device));
    if (written0 != expected0) {
        log->info("{}: libfdisk changed other bytes of sector 0; putting them back as they were",
                  device);
        RESCUEVM_TRY(write_at(fd.get(), 0, expected0, device));
    }

    fdisk_deassign_device(cxt.get(), 1); // nosync: no global sync(), we fsync our own fd
    if (::fsync(fd.get()) != 0)
        return fail(fmt::format("{}: cannot flush the restored identity: {}", device,
                                errno_text(errno)));
    // The kernel's idea of partition UUIDs follows a re-read; nothing depends on it here.
    struct stat st {};
    if (::fstat(fd.get(), &st) == 0 && S_ISBLK(st.st_mode) && ::ioctl(fd.get(), BLKRRPART, 0) != 0)
        log->info("{}: partition table re-read failed: {}, ignoring", device, errno_text(errno));
    fd.reset();

    auto after = read_disk_signature(device);
    if (!after)
        return fail(fmt::format("{}: restored, but reading it back failed: {}", device,
                                after.error().message));
    for (const auto &c : compare(recorded, *after))
        if (c.restorable)
            return fail(fmt::format("{}: restored, but reading it back still shows: {}", device,
                                    describe_change(c)));
    return report;
}

} // namespace rescuevm
