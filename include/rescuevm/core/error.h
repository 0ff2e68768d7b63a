// SPDX-License-Identifier: GPL-2.0-or-later
// Error values and Result<T>: errors travel up as values, exceptions stop at main().
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace rescuevm {

// A message a person can act on: names the thing, what is wrong, what to do.
struct Error {
    std::string message;
};

template <typename T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(std::string message)
{
    return std::unexpected<Error>(Error{std::move(message)});
}

// Adds context in front of an error ("config /etc/x.toml:3: " + message).
inline Error prefixed(std::string prefix, const Error &e)
{
    return Error{std::move(prefix) + e.message};
}

} // namespace rescuevm

// Evaluates a Result expression; returns its error from the enclosing function.
#define RESCUEVM_TRY(expr)                                                     \
    __extension__({                                                            \
        auto _r = (expr);                                                      \
        if (!_r)                                                               \
            return std::unexpected(std::move(_r.error()));                     \
        *std::move(_r);                                                        \
    })
