// SPDX-License-Identifier: GPL-2.0-or-later
// Reads what an NBD image server offers (reachable, TLS verified, export, format, size) and the TLS credential files.
#pragma once

#include "rescuevm/core/host_facts.h"
#include "rescuevm/core/image_source.h"

#include <sys/types.h>

#include <chrono>
#include <string>

namespace rescuevm {

struct NbdImageQuery {
    std::string image;          // vm.image as written (for messages)
    NbdUrl url;
    std::string tls_dir;        // "" : no TLS (vm.image_unauthenticated)
    std::string tls_hostname;   // the name the server's certificate must carry
    std::string qemu = "qemu-system-x86_64"; // qemu-img and qemu-io are found beside it
    uid_t expected_owner = 0;   // of the TLS directory and files (root; tests may pass their own uid)
    std::chrono::milliseconds deadline{5000}; // per tool run: a server that does not answer is a finding
};

// Connects to the server the way QEMU will (qemu-img info, then qemu-io for the first
// sectors), read-only. Every failure becomes ImageFacts::problem, naming the fix.
ImageFacts probe_nbd_image(const NbdImageQuery &query);

// "" when vm.image_tls holds the three files QEMU needs, root-owned (expected_owner), not
// writable by others, the key readable by its owner only; else what is wrong and the fix.
std::string tls_dir_problem(const std::string &dir, uid_t expected_owner);

// What qemu-img said when it could not open the export, as a finding with its fix. Pure.
std::string nbd_open_problem(const NbdImageQuery &query, const std::string &tool_output);

} // namespace rescuevm
