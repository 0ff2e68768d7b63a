// SPDX-License-Identifier: GPL-2.0-or-later
// UplinkClaim: hands the server's uplink to the VM through a passthru macvtap, and gives it back exactly.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/core/host_facts.h"
#include "rescuevm/sys/unique_fd.h"

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <optional>
#include <string>

namespace rescuevm {

struct ClaimOptions {
    std::string macvtap_name = "rvtap0";
    std::string runtime_dir = "/run/rescuevm"; // holds the record (network-claim.json, 0600)
    std::string proc_root = "/proc";           // /proc/sys for sysctls, DHCP client processes
    std::string sys_root = "/sys";             // /sys/class/net/<macvtap>/macvtap/tapN/dev
    std::string dev_dir = "/dev";              // where devtmpfs puts tapN
    std::string node_dir;                      // mknod fallback when dev_dir is not writable;
                                               // "" means <runtime_dir>/dev
};

struct ClaimRecord; // src/net/claim_record.h

// The host's claim on the uplink handed to the VM: while it lives, the uplink
// carries a passthru macvtap with the uplink's MAC and no host address, route or
// IPv6 link-local, and the network stack that served it (systemd-networkd, a DHCP
// client; uplink_handover() decides how) has let go of it. Everything it changed is
// recorded (in memory and in a 0600 JSON file: facts and hand-over steps, never a
// command line) before the first change, so release() -- here or in a restarted
// agent through load() -- puts the host back exactly.
class UplinkClaim {
public:
    // Checks everything first (uplink_problem() on `facts`, which the caller
    // reads just before; the uplink still the same interface; a free macvtap name;
    // no earlier record) and refuses without changing anything; a failure midway rolls
    // back the steps already done. Order: record file, the network stack lets go
    // (uplink_handover()), macvtap (IPv6 off on it; kept from a dhcpcd manager),
    // /dev/tapN, uplink sysctls, delete routes then addresses.
    static Result<UplinkClaim> claim(const NetworkFacts &facts, const ClaimOptions &options);

    // A claim recorded by an earlier agent (crashed or killed): nullopt when there
    // is no record file. The returned claim has no tap fd; call release().
    static Result<std::optional<UplinkClaim>> load(const std::string &record_path);

    UplinkClaim(UplinkClaim &&) noexcept;
    UplinkClaim &operator=(UplinkClaim &&) noexcept;
    UplinkClaim(const UplinkClaim &) = delete;
    UplinkClaim &operator=(const UplinkClaim &) = delete;
    // Detaches, never releases: only a deliberate stop (release()) gives the uplink
    // back. A crashing or unwinding owner leaves QEMU and the macvtap as they are.
    ~UplinkClaim();

    // Puts everything back: closes the tap, deletes the macvtap, restores the
    // sysctls, re-adds addresses, then routes without gateway, then routes with a
    // gateway, default routes last; gives the uplink back to its network stack
    // through the stack's own controls (never by replaying a command line); removes
    // the record. Idempotent; every step is tried even when one fails and
    // the error lists what could not be restored (the record is then kept).
    Result<void> release();

    // A claim loaded from a record has no tap fd: opens the macvtap's tap (only once
    // the QEMU that held it has ended, or the kernel gives it a second queue).
    Result<void> open_tap(const ClaimOptions &options);

    // The uplink facts a claim recorded (what the VM carries), or nullopt without a
    // record: a restarted agent plans with these while the VM owns the uplink.
    static Result<std::optional<NetworkFacts>> recorded_facts(const std::string &record_path);

    // Forgets the claim without releasing it: the tap fd is closed, the record file
    // stays, so a later agent can re-attach to a QEMU that outlives this one, or
    // release() through load(). The destructor then does nothing.
    void detach();

    bool claimed() const;
    int tap_fd() const;                    // -1 after release or after load()
    const std::string &tap_path() const;   // "/dev/tap7"
    const std::string &macvtap() const;    // "rvtap0"
    int macvtap_ifindex() const;
    const std::string &uplink() const;
    const std::string &mac() const;
    const std::string &record_path() const;
    nlohmann::json record_json() const;    // the record as written to the file

private:
    UplinkClaim();
    std::unique_ptr<ClaimRecord> record_;
    UniqueFd tap_;
    bool claimed_ = false;
};

} // namespace rescuevm
