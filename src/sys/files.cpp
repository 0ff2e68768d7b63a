// SPDX-License-Identifier: GPL-2.0-or-later
// File primitives: bounded reads of small regular files, atomic writes, errno in words.
#include "rescuevm/sys/files.h"

#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace rescuevm {

std::string errno_text(int err)
{
    char buf[256];
    return ::strerror_r(err, buf, sizeof buf); // GNU variant: returns the message
}

Result<std::optional<std::string>> read_small_file(const std::string &path, const std::string &what,
                                                   std::size_t limit)
{
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd && errno == ENOENT)
        return std::nullopt;
    if (!fd)
        return fail(fmt::format("{}: cannot open: {}", what, errno_text(errno)));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return fail(fmt::format("{}: cannot stat: {}", what, errno_text(errno)));
    if (!S_ISREG(st.st_mode))
        return fail(fmt::format("{}: is not a regular file: give the path of a file", what));
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(fmt::format("{}: cannot read: {}", what, errno_text(errno)));
        if (n == 0)
            return text;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > limit)
            return fail(fmt::format("{}: larger than {} KiB; is this the right file?", what, limit >> 10));
    }
}

Result<void> write_file_atomic(const std::string &path, std::string_view content, mode_t mode)
{
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
    ::unlink(tmp.c_str()); // a leftover of an earlier crash of this pid; O_EXCL below
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!fd)
        return fail(fmt::format("cannot write {}: {}", path, errno_text(errno)));
    auto undo = [&](int err) {
        ::unlink(tmp.c_str());
        return fail(fmt::format("cannot write {}: {}; the previous version is kept", path, errno_text(err)));
    };
    if (::fchmod(fd.get(), mode) != 0) // the umask must not loosen or tighten it
        return undo(errno);
    for (std::size_t done = 0; done < content.size();) {
        ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return undo(n < 0 ? errno : ENOSPC);
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0)
        return undo(errno);
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        return undo(errno);
    if (UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); d)
        (void)::fsync(d.get());
    return {};
}

Result<UniqueFd> lock_instance(const std::string &path, const std::string &what)
{
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd)
        return fail(fmt::format("{}: cannot open the lock {}: {}", what, path, errno_text(errno)));
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err != EWOULDBLOCK)
            return fail(fmt::format("{}: cannot lock {}: {}", what, path, errno_text(err)));
        char buf[32] = {};
        ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
        std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' '))
            holder.pop_back();
        return fail(fmt::format("{} is already held{} ({})", what,
                                holder.empty() ? "" : " by pid " + holder, path));
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0)
        return fail(fmt::format("{}: cannot write {}: {}", what, path, errno_text(errno)));
    return fd;
}

} // namespace rescuevm
