// SPDX-License-Identifier: GPL-2.0-or-later
// rescuevm.<section>.<key>=<value> overrides and boot switches from the kernel command line.
#include "config_keys.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <optional>

namespace rescuevm::config_detail {
namespace {

struct Param {
    std::string name;
    std::optional<std::string> value; // nullopt: written without '='
};

bool is_space(char c)
{
    return std::isspace(static_cast<unsigned char>(c)) != 0;
}

// Splits like the kernel's next_arg(): blanks separate parameters except
// inside double quotes; quotes around a value (or a whole parameter) are dropped.
// Everything after a lone "--" belongs to init, not to the kernel or to us.
std::vector<Param> split_kernel_cmdline(std::string_view s)
{
    std::vector<Param> params;
    std::size_t i = 0;
    for (;;) {
        while (i < s.size() && is_space(s[i]))
            ++i;
        if (i == s.size())
            return params;
        bool quoted = s[i] == '"';
        i += quoted ? 1 : 0;
        std::size_t start = i;
        std::optional<std::size_t> equals;
        bool in_quote = quoted;
        for (; i < s.size() && (in_quote || !is_space(s[i])); ++i) {
            if (!equals && s[i] == '=')
                equals = i - start;
            if (s[i] == '"')
                in_quote = !in_quote;
        }
        std::string_view token = s.substr(start, i - start);
        bool strip_end = token.ends_with('"');
        if (!equals) {
            if (quoted && strip_end)
                token.remove_suffix(1);
            if (token == "--" && !quoted)
                return params;
            params.push_back({std::string(token), std::nullopt});
            continue;
        }
        std::string_view value = token.substr(*equals + 1);
        if (value.starts_with('"')) {
            value.remove_prefix(1);
            if (strip_end && !value.empty())
                value.remove_suffix(1);
        } else if (quoted && strip_end) {
            value.remove_suffix(1);
        }
        params.push_back({std::string(token.substr(0, *equals)), std::string(value)});
    }
}

Result<void> apply_boot_switch(Config &config, std::string_view name, const std::string &value)
{
    if (name == "enable") {
        // Only "1" and "0": the unit's ConditionKernelCommandLine=rescuevm.enable=1
        // matches "1" alone, and the agent must agree with systemd about it.
        if (value != "1" && value != "0")
            return fail(fmt::format("\"{}\" is not 1 or 0", value));
        config.boot.enable = value == "1";
        return {};
    }
    bool word = !value.empty() && std::ranges::all_of(value, [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    });
    if (!word)
        return fail(fmt::format("\"{}\" is not a stage name (letters, digits, '-', '_')", value));
    config.boot.stage = value;
    return {};
}

Result<void> apply_param(Config &config, std::string name, const std::optional<std::string> &value,
                         const std::string &origin)
{
    // The kernel treats '-' and '_' in parameter names alike; so do we.
    std::ranges::replace(name, '-', '_');
    std::string rest = name.substr(std::string_view("rescuevm.").size());
    if (rest == "enable" || rest == "stage") {
        if (!value)
            return fail(fmt::format("needs a value, e.g. rescuevm.{}=VALUE", rest));
        return apply_boot_switch(config, rest, *value);
    }
    std::size_t dot = rest.find('.');
    if (dot == std::string::npos)
        return fail("unknown parameter; expected rescuevm.enable, rescuevm.stage or "
                    "rescuevm.<section>.<key>");
    std::string section = rest.substr(0, dot), key = rest.substr(dot + 1);
    if (!is_section(section))
        return fail(fmt::format("unknown key: there is no section [{}]; sections are {}", section,
                                section_names()));
    if (is_key(section, key) && !value)
        return fail(fmt::format("needs a value, e.g. rescuevm.{}=VALUE", rest));
    RESCUEVM_TRY(set_key(config, section, key, RawValue::from_text(value.value_or(""))));
    config.set_by[section + "." + key] = origin;
    return {};
}

} // namespace

std::string cmdline_origin(const std::string &path)
{
    return fmt::format("kernel command line ({})", path);
}

Result<void> apply_cmdline(Config &config, const std::string &cmdline, const std::string &path)
{
    std::string origin = cmdline_origin(path);
    for (const Param &p : split_kernel_cmdline(cmdline)) {
        if (!p.name.starts_with("rescuevm."))
            continue; // the kernel's own parameters, or another program's
        if (auto r = apply_param(config, p.name, p.value, origin); !r)
            return fail(fmt::format("{}: {}: {}", origin, p.name, r.error().message));
    }
    return {};
}

} // namespace rescuevm::config_detail
