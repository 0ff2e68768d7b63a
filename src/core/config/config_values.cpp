// SPDX-License-Identifier: GPL-2.0-or-later
// Turns raw TOML or command-line values into typed settings; enum names.
#include "config_values.h"

#include <charconv>

namespace rescuevm {
namespace config_detail {
namespace {

// Messages go to a serial console: show control characters, never send them.
std::string escaped(const std::string &text)
{
    std::string out;
    for (char c : text) {
        if (c == '\n')
            out += "\\n";
        else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        else
            out += c;
    }
    return out;
}

bool is_textual(const RawValue &v)
{
    return v.kind == RawValue::Kind::text || v.kind == RawValue::Kind::string;
}

template <typename Name>
std::string_view name_of(const Name &choices, auto value)
{
    for (const auto &c : choices)
        if (c.value == value)
            return c.name;
    return "?";
}

} // namespace

std::string describe(const RawValue &v)
{
    switch (v.kind) {
    case RawValue::Kind::text:
    case RawValue::Kind::string:
        return fmt::format("string \"{}\"", escaped(v.text));
    case RawValue::Kind::integer:
        return fmt::format("integer {}", v.integer);
    case RawValue::Kind::boolean:
        return v.boolean ? "boolean true" : "boolean false";
    case RawValue::Kind::array:
        return "an array";
    case RawValue::Kind::other:
        break;
    }
    return "a " + v.type_name;
}

Result<std::string> want_string(const RawValue &v)
{
    if (!is_textual(v))
        return fail("expected a string, got " + describe(v));
    // Values end up in log lines, QEMU options and JSON: control characters
    // (newline, NUL, escape) would forge or cut them.
    for (char c : v.text)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return fail(fmt::format("{}: control characters (newline, NUL, ...) are not allowed",
                                    describe(v)));
    return v.text;
}

Result<std::int64_t> want_integer(const RawValue &v)
{
    if (v.kind == RawValue::Kind::integer)
        return v.integer;
    if (v.kind == RawValue::Kind::text) {
        std::int64_t n = 0;
        auto [end, ec] = std::from_chars(v.text.data(), v.text.data() + v.text.size(), n);
        if (ec == std::errc() && end == v.text.data() + v.text.size() && !v.text.empty())
            return n;
    }
    return fail("expected an integer, got " + describe(v));
}

Result<bool> want_bool(const RawValue &v)
{
    if (v.kind == RawValue::Kind::boolean)
        return v.boolean;
    if (v.kind == RawValue::Kind::text) {
        for (std::string_view yes : {"1", "true", "yes", "on"})
            if (v.text == yes)
                return true;
        for (std::string_view no : {"0", "false", "no", "off"})
            if (v.text == no)
                return false;
    }
    return fail("expected true or false, got " + describe(v));
}

Result<std::vector<std::string>> want_strings(const RawValue &v)
{
    std::vector<RawValue> items = v.items;
    if (v.kind == RawValue::Kind::text) {
        // On the kernel command line an array is written "sd*,nvme*n*".
        items.clear();
        std::size_t start = 0;
        for (;;) {
            std::size_t comma = v.text.find(',', start);
            items.push_back(RawValue::from_text(v.text.substr(start, comma - start)));
            if (comma == std::string::npos)
                break;
            start = comma + 1;
        }
        if (v.text.empty())
            items.clear();
    } else if (v.kind != RawValue::Kind::array) {
        return fail("expected an array of strings, got " + describe(v));
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < items.size(); ++i) {
        auto s = want_string(items[i]);
        if (!s)
            return fail(fmt::format("item {}: {}", i + 1, s.error().message));
        out.push_back(std::move(*s));
    }
    return out;
}

Result<std::uint64_t> want_size(const RawValue &v)
{
    if (v.kind == RawValue::Kind::integer) {
        if (v.integer < 0)
            return fail(fmt::format("{}: a size cannot be negative", v.integer));
        return static_cast<std::uint64_t>(v.integer);
    }
    if (!is_textual(v))
        return fail("expected a size like \"16GiB\" or a number of bytes, got " + describe(v));
    return parse_size(RESCUEVM_TRY(want_string(v)));
}

Result<std::chrono::seconds> want_duration(const RawValue &v)
{
    if (v.kind == RawValue::Kind::integer)
        return parse_duration(std::to_string(v.integer));
    if (!is_textual(v))
        return fail("expected a duration like \"120s\" or a number of seconds, got " +
                    describe(v));
    return parse_duration(RESCUEVM_TRY(want_string(v)));
}

Result<std::string> want_one_of(const RawValue &v, std::initializer_list<std::string_view> names)
{
    std::string text = RESCUEVM_TRY(want_string(v));
    std::string list;
    for (std::string_view n : names) {
        if (n == text)
            return text;
        list += list.empty() ? "" : ", ";
        list += n;
    }
    return fail(fmt::format("\"{}\" is not one of {}", text, list));
}

bool is_word(const RawValue &v, std::string_view word)
{
    return is_textual(v) && v.text == word;
}

} // namespace config_detail

using namespace config_detail;

const char *to_string(Accel v) { return name_of(accel_choices, v).data(); }
const char *to_string(Firmware v) { return name_of(firmware_choices, v).data(); }
const char *to_string(DiskBus v) { return name_of(disk_bus_choices, v).data(); }
const char *to_string(Display v) { return name_of(display_choices, v).data(); }
const char *to_string(NetworkMode v) { return name_of(network_mode_choices, v).data(); }
const char *to_string(Addressing v) { return name_of(addressing_choices, v).data(); }
const char *to_string(NicModel v) { return name_of(nic_model_choices, v).data(); }
const char *to_string(OnGuestPoweroff v) { return name_of(poweroff_choices, v).data(); }
const char *to_string(RestoreSignatures v) { return name_of(restore_choices, v).data(); }
const char *to_string(ScreenMode v) { return name_of(screen_mode_choices, v).data(); }

} // namespace rescuevm
