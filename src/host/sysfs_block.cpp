// SPDX-License-Identifier: GPL-2.0-or-later
// Block device attributes read from sysfs: the fallback when udev has no entry.
#include "sysfs_block.h"
#include "rescuevm/sys/files.h"

#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

namespace rescuevm::host {
namespace {

std::string trim(std::string s)
{
    const char *ws = " \t\n\r";
    s.erase(s.find_last_not_of(ws) + 1); // npos + 1 == 0: all blank -> empty
    s.erase(0, s.find_first_not_of(ws));
    return s;
}

template <typename T>
std::optional<T> read_number(const std::string &path)
{
    auto text = read_attribute(path);
    if (!text)
        return std::nullopt;
    T value{};
    auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || p != text->data() + text->size())
        return std::nullopt;
    return value;
}

bool read_flag(const std::string &path)
{
    return read_number<unsigned>(path).value_or(0) != 0;
}

// "8:0" -> 8, 0.
bool parse_dev(const std::string &text, unsigned &major, unsigned &minor)
{
    auto colon = text.find(':');
    if (colon == std::string::npos)
        return false;
    auto [p1, e1] = std::from_chars(text.data(), text.data() + colon, major);
    auto [p2, e2] = std::from_chars(text.data() + colon + 1, text.data() + text.size(), minor);
    return e1 == std::errc() && e2 == std::errc() && p1 == text.data() + colon &&
           p2 == text.data() + text.size();
}

// SCSI/SATA disks have no "serial" attribute: the serial is in VPD page 0x80
// (unit serial number), which sysfs exposes raw.
std::string serial_from_vpd_pg80(const std::string &path)
{
    auto raw = read_text_file(path);
    if (!raw || raw->size() < 4 || static_cast<unsigned char>((*raw)[1]) != 0x80)
        return "";
    std::size_t len = (static_cast<unsigned char>((*raw)[2]) << 8) | static_cast<unsigned char>((*raw)[3]);
    std::string serial = raw->substr(4, std::min(len, raw->size() - 4));
    serial.erase(std::remove_if(serial.begin(), serial.end(),
                                [](char c) { return c == '\0'; }),
                 serial.end());
    return trim(serial);
}

std::string first_attribute(const std::vector<std::string> &paths)
{
    for (const auto &p : paths)
        if (auto v = read_attribute(p); v && !v->empty())
            return *v;
    return "";
}

} // namespace

Result<std::string> read_text_file(const std::string &path)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        return fail(path + ": cannot open: " + errno_text(errno));
    std::string text;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(path + ": cannot read: " + errno_text(errno));
        }
        if (n == 0)
            break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > (16u << 20)) // procfs files on a huge host stay far below this
            return fail(path + ": larger than 16 MiB, refusing to read it");
    }
    return text;
}

std::optional<std::string> read_attribute(const std::string &path)
{
    auto text = read_text_file(path);
    if (!text)
        return std::nullopt;
    return trim(*text);
}

std::vector<std::string> list_directory(const std::string &path)
{
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto &entry : std::filesystem::directory_iterator(path, ec))
        names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<std::string> list_block_disks(const std::string &sysfs)
{
    std::vector<std::string> disks;
    for (const auto &name : list_directory(sysfs + "/block")) {
        const std::string dir = sysfs + "/block/" + name;
        if (::access((dir + "/partition").c_str(), F_OK) == 0)
            continue;
        if (read_flag(dir + "/hidden")) // NVMe multipath path devices cannot be opened
            continue;
        if (!read_attribute(dir + "/dev"))
            continue;
        disks.push_back(name);
    }
    return disks;
}

std::string normalise_wwn(const std::string &wwid)
{
    if (wwid.starts_with("naa."))
        return "0x" + wwid.substr(4);
    return wwid;
}

DiskInfo read_sysfs_disk(const std::string &sysfs, const std::string &devfs, const std::string &name)
{
    const std::string dir = sysfs + "/block/" + name;
    DiskInfo d;
    d.name = name;
    std::string dev_name = name;
    std::replace(dev_name.begin(), dev_name.end(), '!', '/'); // "cciss!c0d0" is /dev/cciss/c0d0
    d.path = devfs + "/" + dev_name;
    d.source = "sysfs";
    parse_dev(read_attribute(dir + "/dev").value_or(""), d.major, d.minor);
    d.size_bytes = read_number<std::uint64_t>(dir + "/size").value_or(0) * 512; // always 512-byte units
    if (d.size_bytes == 0) // unbound loop devices, empty drives: the caller leaves them out
        return d;
    d.logical_block_size = read_number<std::uint32_t>(dir + "/queue/logical_block_size").value_or(512);
    d.physical_block_size = read_number<std::uint32_t>(dir + "/queue/physical_block_size").value_or(d.logical_block_size);
    d.rotational = read_flag(dir + "/queue/rotational");
    d.removable = read_flag(dir + "/removable");
    d.read_only = read_flag(dir + "/ro");
    d.model = first_attribute({dir + "/device/model"});
    // NVMe and virtio have a serial attribute; SCSI/SATA only VPD page 0x80.
    d.serial = first_attribute({dir + "/device/serial", dir + "/serial"});
    if (d.serial.empty())
        d.serial = serial_from_vpd_pg80(dir + "/device/vpd_pg80");
    d.wwn = normalise_wwn(first_attribute({dir + "/wwid", dir + "/device/wwid"}));
    if (name.starts_with("loop"))
        d.backing_file = first_attribute({dir + "/loop/backing_file"});

    // Partitions are the subdirectories named after the disk ("sda1", "nvme0n1p2")
    // that have a "partition" attribute.
    for (const auto &entry : list_directory(dir)) {
        if (!entry.starts_with(name) || entry.size() == name.size())
            continue;
        const std::string pdir = dir + "/" + entry;
        auto number = read_number<unsigned>(pdir + "/partition");
        if (!number)
            continue;
        PartitionInfo p;
        p.name = entry;
        p.number = *number;
        parse_dev(read_attribute(pdir + "/dev").value_or(""), p.major, p.minor);
        p.size_bytes = read_number<std::uint64_t>(pdir + "/size").value_or(0) * 512;
        d.partitions.push_back(std::move(p));
    }
    std::sort(d.partitions.begin(), d.partitions.end(),
              [](const PartitionInfo &a, const PartitionInfo &b) { return a.number < b.number; });
    return d;
}

} // namespace rescuevm::host
