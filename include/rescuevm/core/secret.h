// SPDX-License-Identifier: GPL-2.0-or-later
// Secret: bytes such as the one-time admin password, wiped from memory and never printable.
#pragma once

#include "rescuevm/core/error.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace rescuevm {

// Overwrites memory with zeros in a way the compiler may not optimise away.
void wipe_memory(void *data, std::size_t size);

// Holds its bytes in its own heap buffer (never std::string: a moved-from short
// string keeps its bytes in place), wipes them on destruction and on every
// reallocation, and cannot be copied. There is deliberately no fmt formatter
// and no operator<<: the only way to the bytes is reveal(), easy to audit.
class Secret {
public:
    Secret() = default;
    explicit Secret(std::string_view bytes);
    Secret(const Secret &) = delete;
    Secret &operator=(const Secret &) = delete;
    Secret(Secret &&other) noexcept;
    Secret &operator=(Secret &&other) noexcept;
    ~Secret();

    void append(std::string_view bytes);
    void append(char c) { append(std::string_view(&c, 1)); }
    // Wipes the bytes; the (zeroed) buffer is kept for reuse.
    void clear();

    std::string_view reveal() const { return {data_, size_}; }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    // What logs, `plan` and `status` may show: "set" or "not set".
    const char *describe() const { return empty() ? "not set" : "set"; }

private:
    void reserve(std::size_t capacity);
    void release();

    char *data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

// "set" / "not set" for an optional password, for logs and JSON output.
inline const char *describe(const std::optional<Secret> &secret)
{
    return secret && !secret->empty() ? "set" : "not set";
}

// Longest admin password accepted, in bytes (Windows allows 256 characters).
inline constexpr std::size_t kMaxAdminPasswordBytes = 256;

} // namespace rescuevm
