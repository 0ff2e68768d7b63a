// SPDX-License-Identifier: GPL-2.0-or-later
// firmware_boot_failure(): OVMF's and SeaBIOS's output as measured on Debian 12 (tests/guest/README.md).
#include "rescuevm/core/boot_verdict.h"

#include <doctest/doctest.h>

using rescuevm::Firmware;
using rescuevm::firmware_boot_failure;

TEST_CASE("OVMF: a failed boot option then its shell is a failed boot; a started image is not")
{
    std::string failed = "BdsDxe: failed to load Boot0001 \"UEFI Misc Device\" from PciRoot(0x0)/Pci(0x3,0x0): Not "
                         "Found\r\nBdsDxe: loading Boot0002 \"EFI Internal Shell\" from Fv(7CB8BDC9)\r\n"
                         "BdsDxe: starting Boot0002 \"EFI Internal Shell\" from Fv(7CB8BDC9)\r\n"
                         "UEFI Interactive Shell v2.2\r\nShell> ";
    std::string verdict = firmware_boot_failure(failed, Firmware::uefi, "/srv/w.qcow2");
    CHECK(verdict.find("does not boot under UEFI") != std::string::npos);
    CHECK(verdict.find("/srv/w.qcow2") != std::string::npos);
    CHECK(verdict.find("failed to load Boot0001") != std::string::npos);
    CHECK(verdict.find("vm.firmware = \"bios\"") != std::string::npos);
    CHECK(verdict.find('\r') == std::string::npos);
    // Only the failure so far (the shell not reached yet): not decided.
    CHECK(firmware_boot_failure(failed.substr(0, failed.find("BdsDxe: loading Boot0002")), Firmware::uefi, "x").empty());
    // A second option that starts the image is a boot.
    CHECK(firmware_boot_failure("BdsDxe: failed to load Boot0001 \"PXE\": Not Found\nBdsDxe: starting Boot0003 "
                                "\"UEFI Misc Device 2\"\nLinux version ...\nShell> (a guest's text)",
                                Firmware::uefi, "x")
              .empty());
    CHECK(firmware_boot_failure("BdsDxe: loading Boot0001\nBdsDxe: starting Boot0001 \"UEFI Misc Device\"\n",
                                Firmware::uefi, "x")
              .empty());
    // SeaBIOS's words mean nothing under OVMF.
    CHECK(firmware_boot_failure("No bootable device.", Firmware::uefi, "x").empty());
}

TEST_CASE("SeaBIOS: No bootable device, with the reason it gave")
{
    std::string out = "Booting from Hard Disk...\nBoot failed: not a bootable disk\n\nBooting from Floppy...\n"
                      "Boot failed: could not read the boot disk\n\nNo bootable device.\n";
    std::string verdict = firmware_boot_failure(out, Firmware::bios, "/srv/w.raw");
    CHECK(verdict.find("does not boot with SeaBIOS") != std::string::npos);
    CHECK(verdict.find("Boot failed: could not read the boot disk") != std::string::npos);
    CHECK(verdict.find("vm.firmware = \"uefi\"") != std::string::npos);
    CHECK(firmware_boot_failure("Booting from Hard Disk...\nBooting from 0000:7c00\n", Firmware::bios, "x").empty());
}

TEST_CASE("the firmware's screen-painting escape sequences stay out of the message")
{
    std::string out = "\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: failed to load Boot0001 \"UEFI Misc "
                      "Device\" from PciRoot(0x0): Not Found\r\nUEFI Interactive Shell v2.2\r\nShell> ";
    std::string verdict = firmware_boot_failure(out, Firmware::uefi, "x");
    CHECK(verdict.find("OVMF says \"BdsDxe: failed to load Boot0001") != std::string::npos);
    CHECK(verdict.find("[2J") == std::string::npos);
    CHECK(verdict.find('\x1b') == std::string::npos);
}
