// SPDX-License-Identifier: GPL-2.0-or-later
// Builds the config from texts: TOML (or built-in defaults), then kernel command line overrides. Pure.
#include "config_keys.h"

#include <fmt/format.h>
#include <toml++/toml.h>

namespace rescuevm {
namespace config_detail {
namespace {

std::string type_name(toml::node_type type)
{
    switch (type) {
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
    case toml::node_type::none: break;
    }
    return "value";
}

RawValue raw_value(const toml::node &node)
{
    RawValue raw;
    raw.kind = RawValue::Kind::other;
    raw.type_name = type_name(node.type());
    if (const auto *s = node.as_string()) {
        raw.kind = RawValue::Kind::string;
        raw.text = s->get();
    } else if (const auto *i = node.as_integer()) {
        raw.kind = RawValue::Kind::integer;
        raw.integer = i->get();
    } else if (const auto *b = node.as_boolean()) {
        raw.kind = RawValue::Kind::boolean;
        raw.boolean = b->get();
    } else if (const auto *a = node.as_array()) {
        raw.kind = RawValue::Kind::array;
        for (const toml::node &item : *a)
            raw.items.push_back(raw_value(item));
    }
    return raw;
}

std::string at(const std::string &path, const toml::node &node)
{
    return fmt::format("config {}:{}", path, node.source().begin.line);
}

} // namespace

Result<void> apply_toml(Config &config, const std::string &text, const std::string &path)
{
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error &e) {
        return fail(fmt::format("config {}:{}: TOML syntax error: {} (column {})", path,
                                e.source().begin.line, e.description(), e.source().begin.column));
    }
    config.source = path;
    for (const auto &[section_key, section_node] : root) {
        std::string section(section_key.str());
        const toml::table *table = section_node.as_table();
        if (!table)
            return fail(fmt::format("{}: {}: a setting outside any section; keys go under a "
                                    "section: {}",
                                    at(path, section_node), section, section_names()));
        if (!is_section(section))
            return fail(fmt::format("{}: {}: unknown section; sections are {}",
                                    at(path, section_node), section, section_names()));
        for (const auto &[key, node] : *table) {
            std::string name = section + "." + std::string(key.str());
            if (auto r = set_key(config, section, key.str(), raw_value(node)); !r)
                return fail(fmt::format("{}: {}: {}", at(path, node), name, r.error().message));
            config.set_by[name] = at(path, node);
        }
    }
    return {};
}

} // namespace config_detail

using namespace config_detail;

Result<Config> parse_config_toml(const std::string &text, const std::string &origin)
{
    Config config;
    RESCUEVM_TRY(apply_toml(config, text, origin));
    RESCUEVM_TRY(validate_combination(config));
    return config;
}

Result<void> apply_kernel_cmdline(Config &config, const std::string &cmdline,
                                  const std::string &origin)
{
    RESCUEVM_TRY(apply_cmdline(config, cmdline, origin));
    return validate_combination(config);
}

Result<Config> build_config(const ConfigTexts &texts)
{
    Config config;
    if (texts.toml)
        RESCUEVM_TRY(apply_toml(config, *texts.toml, texts.toml_origin));
    if (texts.cmdline)
        RESCUEVM_TRY(apply_cmdline(config, *texts.cmdline, texts.cmdline_path));
    RESCUEVM_TRY(validate_combination(config));
    return config;
}

} // namespace rescuevm
