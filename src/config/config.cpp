// SPDX-License-Identifier: GPL-2.0-or-later
// Loads the config: TOML file (or built-in defaults), then kernel command line overrides.
#include "config_keys.h"

#include "rescuevm/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

// The whole file, or nullopt when it does not exist. Bounded: a config or a
// command line is a few KiB; anything huge is a mistake (a disk image named by --config).
Result<std::optional<std::string>> read_small_file(const std::string &path,
                                                   const std::string &what)
{
    constexpr std::size_t limit = 1 << 20;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd && errno == ENOENT)
        return std::nullopt;
    if (!fd)
        return fail(fmt::format("{}: cannot open: {}", what, std::strerror(errno)));
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(fmt::format("{}: cannot read: {}", what, std::strerror(errno)));
        if (n == 0)
            return text;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > limit)
            return fail(fmt::format("{}: larger than 1 MiB; is this the right file?", what));
    }
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

Result<Config> load_config(const ConfigSources &sources)
{
    Config config;
    auto text = RESCUEVM_TRY(read_small_file(sources.config_path, "config " + sources.config_path));
    if (text)
        RESCUEVM_TRY(apply_toml(config, *text, sources.config_path));
    else if (sources.config_path_explicit)
        return fail(fmt::format("config {}: no such file; give an existing file to --config, "
                                "or leave it out for the built-in defaults",
                                sources.config_path));

    // No /proc/cmdline (a container, a test root) simply means no overrides.
    auto cmdline = RESCUEVM_TRY(read_small_file(sources.kernel_cmdline_path,
                                                   cmdline_origin(sources.kernel_cmdline_path)));
    if (cmdline)
        RESCUEVM_TRY(apply_cmdline(config, *cmdline, sources.kernel_cmdline_path));
    RESCUEVM_TRY(validate_combination(config));
    return config;
}

} // namespace rescuevm
