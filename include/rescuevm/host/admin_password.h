// SPDX-License-Identifier: GPL-2.0-or-later
// Reads guest.admin_password_file into a Secret, refusing files others could read or plant.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/secret.h"

#include <sys/types.h>

#include <optional>
#include <string>

namespace rescuevm {

// Reads guest.admin_password_file. A missing file means no password (nullopt).
// The file must be a regular file (a symlink is refused: O_NOFOLLOW, checked
// with fstat on the open fd, so nothing can be swapped in between) owned by
// expected_owner (root; tests pass their own uid) with no group/other bits.
// One trailing newline is stripped; the rest must be 1..256 bytes of UTF-8
// without control characters. Errors name the file and the fix, never the content.
Result<std::optional<Secret>> read_admin_password(const std::string &path, uid_t expected_owner = 0);

} // namespace rescuevm
