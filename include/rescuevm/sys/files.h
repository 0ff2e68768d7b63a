// SPDX-License-Identifier: GPL-2.0-or-later
// File primitives: bounded reads of small regular files, atomic writes, errno in words.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/sys/unique_fd.h"

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace rescuevm {

// strerror(err) without the thread-safety trap of strerror().
std::string errno_text(int err);

// The whole of a small regular file, or nullopt when it does not exist. Refuses,
// without blocking, anything that is not a regular file (a FIFO, a device, a
// directory) and anything larger than `limit`. `what` names the file in errors
// ("config /etc/rescuevm/rescuevm.toml").
Result<std::optional<std::string>> read_small_file(const std::string &path, const std::string &what,
                                                   std::size_t limit = 1 << 20);

// Replaces `path` atomically: writes a temp file in the same directory (created
// with `mode`, O_EXCL|O_NOFOLLOW), fsyncs it, renames it over `path` and fsyncs
// the directory. On any failure the old file stays as it was and the temp file
// is removed: a full file system never leaves a truncated record.
Result<void> write_file_atomic(const std::string &path, std::string_view content, mode_t mode = 0600);

// Takes an exclusive flock on `path` (created 0600, O_NOFOLLOW) for as long as the
// returned fd lives, and writes our pid into it. When another process holds it,
// fails naming that pid (as written in the file) and `what`.
Result<UniqueFd> lock_instance(const std::string &path, const std::string &what);

} // namespace rescuevm
