// SPDX-License-Identifier: GPL-2.0-or-later
// Reads the one-time Administrator password file: root-owned, 0600, a regular file, 1..256 bytes of UTF-8.
#include "rescuevm/host/admin_password.h"
#include "rescuevm/sys/files.h"

#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace rescuevm {

namespace {

// Length of the UTF-8 sequence starting at text[i], or 0 when it is malformed
// (overlong forms, surrogates and code points above U+10FFFF included).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i)
{
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    unsigned char lead = byte(i);
    std::size_t length;
    unsigned min_second = 0x80, max_second = 0xbf;
    if (lead < 0x80)
        return 1;
    if (lead >= 0xc2 && lead <= 0xdf)
        length = 2;
    else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        if (lead == 0xe0)
            min_second = 0xa0;
        if (lead == 0xed)
            max_second = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        if (lead == 0xf0)
            min_second = 0x90;
        if (lead == 0xf4)
            max_second = 0x8f;
    } else
        return 0;
    if (i + length > text.size())
        return 0;
    if (byte(i + 1) < min_second || byte(i + 1) > max_second)
        return 0;
    for (std::size_t k = 2; k < length; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xbf)
            return 0;
    return length;
}

// Why the password cannot be used, or "" when it can. Never quotes the content.
std::string password_problem(std::string_view text)
{
    if (text.empty())
        return "is empty: write the password into it, or remove the file to start the VM without one";
    if (text.size() > kMaxAdminPasswordBytes)
        return fmt::format("is longer than the {} bytes a Windows password may have", kMaxAdminPasswordBytes);
    for (std::size_t i = 0; i < text.size();) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c == 0)
            return fmt::format("has a NUL byte at offset {}: the password must be text", i);
        if (c == '\n')
            return fmt::format("has a line break at offset {}: put the password alone on one line", i);
        if (c < 0x20 || c == 0x7f)
            return fmt::format("has a control character (0x{:02x}) at offset {}: nobody can type it at a "
                               "Windows logon; use printable characters",
                               c, i);
        std::size_t length = utf8_sequence_length(text, i);
        if (length == 0)
            return fmt::format("is not valid UTF-8 at offset {}: save it as UTF-8", i);
        i += length;
    }
    return "";
}

std::string mode_text(mode_t mode)
{
    return fmt::format("{:04o}", static_cast<unsigned>(mode & 07777));
}

} // namespace

Result<std::optional<Secret>> read_admin_password(const std::string &path, uid_t expected_owner)
{
    const std::string what = "guest.admin_password_file " + path;
    const std::string fix = fmt::format("chown {}:{} {} && chmod 600 {}", expected_owner == 0 ? "root" : std::to_string(expected_owner),
                                        expected_owner == 0 ? "root" : std::to_string(expected_owner), path, path);

    // O_NOFOLLOW: a symlink could point the agent at any file; O_NONBLOCK: a FIFO
    // must not hang the start (it is refused below as not a regular file).
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd) {
        int err = errno;
        if (err == ENOENT)
            return std::optional<Secret>{};
        if (err == ELOOP)
            return fail(what + ": is a symbolic link, which is refused: put the password in a regular file "
                               "there and run `" + fix + "`");
        return fail(fmt::format("{}: cannot open: {}", what, errno_text(err)));
    }

    struct stat st {};
    if (::fstat(fd.get(), &st) < 0)
        return fail(fmt::format("{}: cannot stat: {}", what, errno_text(errno)));
    if (!S_ISREG(st.st_mode))
        return fail(what + ": is not a regular file: put the password in a regular file and run `" + fix + "`");
    if (st.st_uid != expected_owner || (st.st_mode & 077) != 0)
        return fail(fmt::format("{}: is owned by uid {} with mode {}; the password file must be owned by {} "
                                "and readable by nobody else: run `{}`",
                                what, st.st_uid, mode_text(st.st_mode),
                                expected_owner == 0 ? "root" : "uid " + std::to_string(expected_owner), fix));

    // Room for the longest password plus its newline and one byte more, which
    // tells "too long" apart without reading an arbitrarily big file.
    std::array<char, kMaxAdminPasswordBytes + 2> buffer{};
    std::size_t filled = 0;
    while (filled < buffer.size()) {
        ssize_t n = ::read(fd.get(), buffer.data() + filled, buffer.size() - filled);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            wipe_memory(buffer.data(), buffer.size());
            return fail(fmt::format("{}: cannot read: {}", what, errno_text(err)));
        }
        if (n == 0)
            break;
        filled += static_cast<std::size_t>(n);
    }
    std::size_t length = filled;
    if (length > 0 && buffer[length - 1] == '\n')
        --length;
    std::string problem = filled == buffer.size()
        ? fmt::format("is longer than the {} bytes a Windows password may have", kMaxAdminPasswordBytes)
        : password_problem(std::string_view(buffer.data(), length));
    Secret secret;
    if (problem.empty())
        secret.append(std::string_view(buffer.data(), length));
    wipe_memory(buffer.data(), buffer.size());
    if (!problem.empty())
        return fail(what + ": " + problem);
    return std::optional<Secret>(std::move(secret));
}

} // namespace rescuevm
