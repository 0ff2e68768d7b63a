// SPDX-License-Identifier: GPL-2.0-or-later
// The firmware's words for "nothing to boot", as measured with OVMF and SeaBIOS on Debian 12. Pure.
#include "rescuevm/core/boot_verdict.h"

#include <fmt/format.h>

#include <cctype>

namespace rescuevm {
namespace {

// From position `at` to the end of its line (the firmware paints escape sequences before it),
// printable bytes only, trimmed to 160.
std::string line_at(std::string_view text, std::size_t at)
{
    std::size_t begin = at;
    std::size_t end = text.find('\n', at);
    std::string line(text.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    std::string clean;
    for (std::size_t i = 0; i < line.size(); ++i) {
        if (line[i] == '\x1b') { // an ANSI sequence: ESC [ params letter
            while (i + 1 < line.size() && !std::isalpha(static_cast<unsigned char>(line[i + 1])))
                ++i;
            ++i;
            continue;
        }
        if (static_cast<unsigned char>(line[i]) >= 0x20 && line[i] != 0x7f)
            clean += line[i];
    }
    return clean.size() > 160 ? clean.substr(0, 160) + "..." : clean;
}

} // namespace

std::string firmware_boot_failure(std::string_view output, Firmware firmware, const std::string &image)
{
    if (firmware == Firmware::uefi) {
        std::size_t failed = output.find("BdsDxe: failed to load Boot");
        if (failed == std::string_view::npos)
            return "";
        // A later boot option that starts (not the shell) is a boot, not a failure.
        for (std::size_t at = output.find("BdsDxe: starting Boot", failed); at != std::string_view::npos;
             at = output.find("BdsDxe: starting Boot", at + 1))
            if (line_at(output, at).find("Shell") == std::string::npos)
                return "";
        bool shell = output.find("Shell>", failed) != std::string_view::npos ||
                     output.find("EFI Internal Shell", failed) != std::string_view::npos ||
                     output.find("UEFI Interactive Shell", failed) != std::string_view::npos;
        if (!shell)
            return "";
        return fmt::format("the rescue image at vm.image ({}) does not boot under UEFI: OVMF says \"{}\" and sits in "
                           "its shell: is it a UEFI image (GPT with an EFI system partition)? try vm.firmware = "
                           "\"bios\"",
                           image, line_at(output, failed));
    }
    std::size_t none = output.find("No bootable device");
    if (none == std::string_view::npos)
        return "";
    std::size_t why = output.rfind("Boot failed:", none);
    return fmt::format("the rescue image at vm.image ({}) does not boot with SeaBIOS: \"{}\": is it a BIOS (MBR) image "
                       "with a boot loader? try vm.firmware = \"uefi\"",
                       image, why == std::string_view::npos ? line_at(output, none) : line_at(output, why));
}

} // namespace rescuevm
