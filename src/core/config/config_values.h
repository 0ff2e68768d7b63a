// SPDX-License-Identifier: GPL-2.0-or-later
// Internal to the config module: turning a RawValue into a typed setting, enum names.
#pragma once

#include "config_keys.h"

#include <fmt/format.h>

#include <chrono>
#include <optional>
#include <string_view>

namespace rescuevm::config_detail {

template <typename E>
struct Choice {
    E value;
    std::string_view name;
};

// Names as they appear in the config file; to_string() reads the same tables.
inline constexpr Choice<Accel> accel_choices[] = {{Accel::kvm, "kvm"}, {Accel::tcg, "tcg"}};
inline constexpr Choice<Firmware> firmware_choices[] = {{Firmware::uefi, "uefi"},
                                                        {Firmware::bios, "bios"}};
inline constexpr Choice<DiskBus> disk_bus_choices[] = {{DiskBus::virtio_blk, "virtio-blk"},
                                                       {DiskBus::virtio_scsi, "virtio-scsi"},
                                                       {DiskBus::nvme, "nvme"},
                                                       {DiskBus::sata, "sata"}};
inline constexpr Choice<Display> display_choices[] = {{Display::vnc, "vnc"},
                                                      {Display::none, "none"}};
inline constexpr Choice<NetworkMode> network_mode_choices[] = {{NetworkMode::macvtap, "macvtap"},
                                                               {NetworkMode::none, "none"}};
inline constexpr Choice<Addressing> addressing_choices[] = {{Addressing::auto_, "auto"},
                                                            {Addressing::dhcp, "dhcp"},
                                                            {Addressing::static_, "static"}};
inline constexpr Choice<NicModel> nic_model_choices[] = {{NicModel::virtio_net, "virtio-net"},
                                                         {NicModel::e1000e, "e1000e"}};
inline constexpr Choice<OnGuestPoweroff> poweroff_choices[] = {
    {OnGuestPoweroff::stay_off, "stay-off"}, {OnGuestPoweroff::restart, "restart"}};
inline constexpr Choice<RestoreSignatures> restore_choices[] = {
    {RestoreSignatures::never, "never"}, {RestoreSignatures::on_stop, "on-stop"}};
inline constexpr Choice<ScreenMode> screen_mode_choices[] = {
    {ScreenMode::auto_, "auto"}, {ScreenMode::physical, "physical"}, {ScreenMode::none, "none"}};

// Finds the table for an enum type by overload: choices_for(Accel{}).
constexpr auto &choices_for(Accel) { return accel_choices; }
constexpr auto &choices_for(Firmware) { return firmware_choices; }
constexpr auto &choices_for(DiskBus) { return disk_bus_choices; }
constexpr auto &choices_for(Display) { return display_choices; }
constexpr auto &choices_for(NetworkMode) { return network_mode_choices; }
constexpr auto &choices_for(Addressing) { return addressing_choices; }
constexpr auto &choices_for(NicModel) { return nic_model_choices; }
constexpr auto &choices_for(OnGuestPoweroff) { return poweroff_choices; }
constexpr auto &choices_for(RestoreSignatures) { return restore_choices; }
constexpr auto &choices_for(ScreenMode) { return screen_mode_choices; }

// "string \"four\"", "integer 3", "a float": what was given, for messages.
std::string describe(const RawValue &v);

// Each returns the value in the wanted type, or says what was given instead.
Result<std::string> want_string(const RawValue &v);
Result<std::int64_t> want_integer(const RawValue &v);
Result<bool> want_bool(const RawValue &v);
Result<std::vector<std::string>> want_strings(const RawValue &v);
Result<std::uint64_t> want_size(const RawValue &v);
Result<std::chrono::seconds> want_duration(const RawValue &v);
Result<std::string> want_one_of(const RawValue &v, std::initializer_list<std::string_view> names);
// True when the value is the string `word` ("auto", "off", ""), whatever its source.
bool is_word(const RawValue &v, std::string_view word);

template <typename E>
Result<E> want_enum(const RawValue &v)
{
    std::string text = RESCUEVM_TRY(want_string(v));
    std::string names;
    for (const auto &c : choices_for(E{})) {
        if (c.name == text)
            return c.value;
        names += names.empty() ? "" : ", ";
        names += c.name;
    }
    return fail(fmt::format("\"{}\" is not one of {}", text, names));
}

} // namespace rescuevm::config_detail
