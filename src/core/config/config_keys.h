// SPDX-License-Identifier: GPL-2.0-or-later
// Internal to the config module: one raw setting value and the table of known keys.
#pragma once

#include "rescuevm/core/config.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rescuevm::config_detail {

// A value before it is checked: typed when it comes from TOML, plain text when
// it comes from the kernel command line (then each key parses it by its type).
struct RawValue {
    enum class Kind { text, string, integer, boolean, array, other };
    Kind kind = Kind::text;
    std::string text;             // text, string
    std::int64_t integer = 0;     // integer
    bool boolean = false;         // boolean
    std::vector<RawValue> items;  // array
    std::string type_name;        // TOML type, for "got a float" messages

    static RawValue from_text(std::string text)
    {
        RawValue v;
        v.text = std::move(text);
        return v;
    }
};

// Sets section.key from value. Errors say what is wrong with the value; the
// caller puts "where: section.key: " in front.
Result<void> set_key(Config &config, std::string_view section, std::string_view key,
                     const RawValue &value);

bool is_section(std::string_view section);
bool is_key(std::string_view section, std::string_view key);
// "image, kernel, initrd, ..." or the section names, for "unknown key" messages.
std::string keys_of(std::string_view section);
std::string section_names();

// Checks that hold between keys (secure boot needs UEFI, ...), once all sources are read.
Result<void> validate_combination(const Config &config);

// "kernel command line (/proc/cmdline)": where overrides came from, in messages.
std::string cmdline_origin(const std::string &path);

// The TOML file and the kernel command line, applied without the combination check.
Result<void> apply_toml(Config &config, const std::string &text, const std::string &path);
Result<void> apply_cmdline(Config &config, const std::string &cmdline, const std::string &path);

} // namespace rescuevm::config_detail
