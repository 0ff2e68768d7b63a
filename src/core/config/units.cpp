// SPDX-License-Identifier: GPL-2.0-or-later
// Sizes ("16GiB") and durations ("120s") as operators write them in the config.
#include "rescuevm/core/config.h"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <limits>
#include <string_view>
#include <utility>

namespace rescuevm {
namespace {

struct Unit {
    std::string_view name;
    std::uint64_t factor;
};

// Binary units only: "16GB" next to a 16 GiB RAM rule would be off by 7%, so
// decimal SI units are refused with a hint rather than guessed at.
constexpr std::array size_units{
    Unit{"", 1},          Unit{"b", 1},
    Unit{"k", 1ULL << 10}, Unit{"kib", 1ULL << 10},
    Unit{"m", 1ULL << 20}, Unit{"mib", 1ULL << 20},
    Unit{"g", 1ULL << 30}, Unit{"gib", 1ULL << 30},
    Unit{"t", 1ULL << 40}, Unit{"tib", 1ULL << 40},
};

constexpr std::array duration_units{
    Unit{"", 1}, Unit{"s", 1}, Unit{"m", 60}, Unit{"h", 3600}, Unit{"d", 86400},
};

std::string lower(std::string_view s)
{
    std::string out(s);
    for (char &c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// A number split into its digits: "1.5GiB" -> whole "1", fraction "5", unit "GiB".
struct Number {
    std::string_view whole, fraction, unit;
};

Result<Number> split_number(std::string_view text, std::string_view what)
{
    if (text.empty())
        return fail(fmt::format("empty {}", what));
    if (text.front() == '-')
        return fail(fmt::format("\"{}\": a {} cannot be negative", text, what));
    std::size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
        ++i;
    Number n{text.substr(0, i), {}, {}};
    if (i < text.size() && text[i] == '.') {
        std::size_t start = ++i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
            ++i;
        n.fraction = text.substr(start, i - start);
        if (n.fraction.empty())
            return fail(fmt::format("\"{}\" is not a {}", text, what));
    }
    while (i < text.size() && text[i] == ' ')
        ++i;
    n.unit = text.substr(i);
    if (n.whole.empty())
        return fail(fmt::format("\"{}\" is not a {}", text, what));
    return n;
}

// Decimal digits to an integer, refusing overflow.
Result<std::uint64_t> digits_value(std::string_view digits, std::string_view text)
{
    std::uint64_t value = 0;
    for (char c : digits)
        if (__builtin_mul_overflow(value, 10u, &value) ||
            __builtin_add_overflow(value, static_cast<unsigned>(c - '0'), &value))
            return fail(fmt::format("\"{}\" is too large", text));
    return value;
}

template <std::size_t N>
const Unit *find_unit(const std::array<Unit, N> &units, std::string_view name)
{
    std::string key = lower(name);
    for (const Unit &u : units)
        if (u.name == key)
            return &u;
    return nullptr;
}

} // namespace

Result<std::uint64_t> parse_size(const std::string &text)
{
    Number n = RESCUEVM_TRY(split_number(text, "size"));
    const Unit *unit = find_unit(size_units, n.unit);
    if (!unit) {
        std::string u = lower(n.unit);
        if (u == "kb" || u == "mb" || u == "gb" || u == "tb")
            return fail(fmt::format("\"{}\": decimal units are not accepted; write \"{}{}{}{}iB\" "
                                    "(binary: 1 GiB = 1024^3 bytes)",
                                    text, n.whole, n.fraction.empty() ? "" : ".", n.fraction,
                                    static_cast<char>(std::toupper(u[0]))));
        return fail(fmt::format("\"{}\" is not a size; use a number of bytes or a unit "
                                "K/KiB, M/MiB, G/GiB, T/TiB (e.g. \"16GiB\")",
                                text));
    }
    std::uint64_t whole = RESCUEVM_TRY(digits_value(n.whole, text));
    std::uint64_t bytes = 0;
    if (__builtin_mul_overflow(whole, unit->factor, &bytes))
        return fail(fmt::format("\"{}\" is too large", text));
    if (!n.fraction.empty()) {
        if (n.fraction.size() > 9)
            return fail(fmt::format("\"{}\": at most 9 decimals", text));
        std::uint64_t frac = RESCUEVM_TRY(digits_value(n.fraction, text));
        std::uint64_t scale = 1;
        for (std::size_t i = 0; i < n.fraction.size(); ++i)
            scale *= 10;
        // factor <= 2^40 and frac < 10^9 fit together in 128 bits, not always in 64.
        __extension__ typedef unsigned __int128 u128;
        u128 part = static_cast<u128>(frac) * unit->factor;
        if (part % scale != 0)
            return fail(fmt::format("\"{}\" is not a whole number of bytes", text));
        if (__builtin_add_overflow(bytes, static_cast<std::uint64_t>(part / scale), &bytes))
            return fail(fmt::format("\"{}\" is too large", text));
    }
    return bytes;
}

Result<std::chrono::seconds> parse_duration(const std::string &text)
{
    Number n = RESCUEVM_TRY(split_number(text, "duration"));
    if (!n.fraction.empty())
        return fail(fmt::format("\"{}\": use whole numbers (e.g. \"90m\" instead of \"1.5h\")",
                                text));
    const Unit *unit = find_unit(duration_units, n.unit);
    if (!unit)
        return fail(fmt::format("\"{}\" is not a duration; use a number of seconds or a unit "
                                "s, m, h, d (e.g. \"120s\", \"24h\")",
                                text));
    std::uint64_t value = RESCUEVM_TRY(digits_value(n.whole, text));
    std::uint64_t seconds = 0;
    // Bounded so that any later arithmetic in nanoseconds (timerfd) cannot overflow.
    constexpr std::uint64_t max_seconds = 100ULL * 365 * 86400;
    if (__builtin_mul_overflow(value, unit->factor, &seconds) || seconds > max_seconds)
        return fail(fmt::format("\"{}\" is too long (at most 100 years)", text));
    return std::chrono::seconds(static_cast<std::chrono::seconds::rep>(seconds));
}

std::string format_gib(std::uint64_t bytes)
{
    return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / static_cast<double>(1ULL << 30));
}

std::string format_size(std::uint64_t bytes)
{
    if (bytes >= (1ULL << 30))
        return format_gib(bytes);
    return fmt::format("{} MiB", bytes >> 20);
}

} // namespace rescuevm
