// SPDX-License-Identifier: GPL-2.0-or-later
// The disk guard of every QEMU start: fresh inventory, the identity rule, then O_EXCL opens handed to QEMU.
#include "rescuevm/agent/disk_guard.h"

#include "rescuevm/core/disk_identity.h"
#include "rescuevm/sys/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>
#include <set>

namespace rescuevm {
namespace {

std::string comm_of(const std::string &proc_root, const std::string &pid)
{
    std::ifstream in(proc_root + "/" + pid + "/comm");
    std::string comm;
    std::getline(in, comm);
    return comm;
}

// The fd was opened for writing (O_WRONLY or O_RDWR): "flags:" in /proc/PID/fdinfo/FD, octal.
bool open_for_writing(const std::string &fdinfo)
{
    std::ifstream in(fdinfo);
    std::string key;
    unsigned long flags = 0;
    while (in >> key)
        if (key == "flags:" && (in >> std::oct >> flags))
            return (flags & O_ACCMODE) != O_RDONLY;
    return false;
}

std::string holders(const DiskInfo &disk, const std::string &proc_root, bool writers_only, pid_t except)
{
    std::set<dev_t> devices = {::makedev(disk.major, disk.minor)};
    for (const auto &p : disk.partitions)
        devices.insert(::makedev(p.major, p.minor));
    std::set<std::string> found;
    DIR *proc = ::opendir(proc_root.c_str());
    if (!proc)
        return "";
    while (dirent *p = ::readdir(proc)) {
        std::string pid = p->d_name;
        if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos ||
            (except > 0 && pid == std::to_string(except)))
            continue;
        std::string fd_dir = proc_root + "/" + pid + "/fd";
        DIR *fds = ::opendir(fd_dir.c_str());
        if (!fds)
            continue;
        while (dirent *f = ::readdir(fds)) {
            struct stat st {};
            if (f->d_name[0] == '.' || ::stat((fd_dir + "/" + f->d_name).c_str(), &st) != 0 || !S_ISBLK(st.st_mode))
                continue;
            if (devices.count(st.st_rdev) &&
                (!writers_only || open_for_writing(proc_root + "/" + pid + "/fdinfo/" + f->d_name))) {
                found.insert(fmt::format("pid {} ({})", pid, comm_of(proc_root, pid)));
                break;
            }
        }
        ::closedir(fds);
    }
    ::closedir(proc);
    return fmt::format("{}", fmt::join(found, ", "));
}

} // namespace

std::string block_device_holders(const DiskInfo &disk, const std::string &proc_root)
{
    return holders(disk, proc_root, false, 0);
}

Result<std::vector<LockedDisk>> check_and_lock_disks(const std::vector<DiskInfo> &planned,
                                                     const std::vector<std::string> &expected_disk_ids,
                                                     const HostRoots &roots)
{
    auto now = read_disks(roots);
    if (!now)
        return fail("cannot read the disks again before the start: " + now.error().message);
    std::vector<const DiskInfo *> wanted;
    for (const auto &d : planned)
        wanted.push_back(&d);
    if (auto problems = disk_identity_problems(wanted, *now, expected_disk_ids); !problems.empty())
        return fail(fmt::format("{}", fmt::join(problems, "; ")));

    std::vector<LockedDisk> locked;
    for (const auto &d : planned) {
        // O_EXCL on a block device: refused while anything else claims it or one of its partitions.
        UniqueFd fd(::open(d.path.c_str(), O_RDWR | O_EXCL | O_CLOEXEC | O_NOCTTY));
        if (!fd) {
            int err = errno;
            if (err == EBUSY) {
                std::string who = block_device_holders(d, roots.procfs);
                return fail(fmt::format("disk {} is busy: something holds it or one of its partitions ({}); it is "
                                        "not passed to a second user",
                                        d.name, who.empty() ? "a mount, md, dm/LVM or another exclusive user" : who));
            }
            return fail(fmt::format("disk {}: cannot open {}: {}", d.name, d.path, errno_text(err)));
        }
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0 || !S_ISBLK(st.st_mode) || ::major(st.st_rdev) != d.major ||
            ::minor(st.st_rdev) != d.minor)
            return fail(fmt::format("disk {}: {} is not block device {}:{} any more", d.name, d.path, d.major,
                                    d.minor));
        // O_EXCL only keeps out other exclusive users: a QEMU (or any program) that opened the
        // disk plainly would write beside the VM. Refuse while anyone else has it open for writing.
        if (std::string writers = holders(d, roots.procfs, true, ::getpid()); !writers.empty())
            return fail(fmt::format("disk {} is open for writing in {} (another VM?); it is not passed to a second "
                                    "writer: stop that program first",
                                    d.name, writers));
        locked.push_back({d.name, d.path, std::move(fd)});
    }
    // Once more with the disks held: nothing can have been swapped in between.
    auto again = read_disks(roots);
    if (!again)
        return fail("cannot read the disks again before the start: " + again.error().message);
    if (auto problems = disk_identity_problems(wanted, *again, expected_disk_ids); !problems.empty())
        return fail(fmt::format("{}", fmt::join(problems, "; ")));
    return locked;
}

} // namespace rescuevm
