// SPDX-License-Identifier: GPL-2.0-or-later
// UplinkClaim: hands the uplink to the VM through a passthru macvtap and gives it back exactly.
#include "claim_record.h"
#include "rescuevm/sys/files.h"
#include "rescuevm/host/netlink.h"
#include "stack_handover.h"
#include "tap_device.h"

#include "rescuevm/sys/log.h"
#include "rescuevm/net/uplink_claim.h"

#include "rescuevm/core/report.h"
#include "rescuevm/core/runtime_paths.h"
#include "rescuevm/core/uplink_rules.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <netlink/errno.h>
#include <netlink/route/link/macvtap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

namespace rescuevm {

namespace {

auto logger() { return log::get("network"); }

std::string read_sysctl(const std::string &path)
{
    std::ifstream in(path);
    std::string value;
    std::getline(in, value);
    return value;
}

Result<void> write_sysctl(const std::string &path, const std::string &value)
{
    std::ofstream out(path);
    out << value << "\n";
    out.flush();
    if (!out)
        return fail("network: cannot write " + value + " to " + path + ": " + errno_text(errno));
    return {};
}

std::string ipv6_conf(const std::string &proc_root, const std::string &ifname)
{
    return proc_root + "/sys/net/ipv6/conf/" + ifname;
}

bool exists(const std::string &path)
{
    return ::access(path.c_str(), F_OK) == 0;
}

net::HandoverContext handover_context(const ClaimRecord &rec)
{
    return {rec.uplink, rec.ifindex, rec.mac, rec.macvtap, rec.proc_root};
}

// The macvtap named `name` on `lower`, or nullptr (also when `name` is something else).
net::NlLink our_macvtap(nl_cache *links, const std::string &name, int lower)
{
    net::NlLink l(rtnl_link_get_by_name(links, name.c_str()));
    if (!l)
        return nullptr;
    const char *kind = rtnl_link_get_type(l.get());
    if (!kind || std::string(kind) != "macvtap" || rtnl_link_get_link(l.get()) != lower)
        return nullptr;
    return l;
}

// Order of restoration: routes without a gateway (the on-link host route to an
// outside gateway), then routes via a gateway, default routes last.
int restore_rank(const RecordedRoute &r)
{
    if (!r.has_gateway() && !r.is_default())
        return 0;
    return r.is_default() ? 2 : 1;
}

// What claim() checks before changing anything, beyond uplink_problem() (the rules,
// applied by the caller to facts read just now): that the facts still describe the
// live uplink, and that no earlier claim is in the way.
Result<void> check_claimable(nl_sock *sock, const NetworkFacts &facts, const ClaimOptions &o,
                             const std::string &record_path)
{
    auto links = RESCUEVM_TRY(net::link_cache(sock));
    if (net::NlLink taken(rtnl_link_get_by_name(links.get(), o.macvtap_name.c_str())); taken)
        return fail("network: an interface named " + o.macvtap_name +
                    " already exists (left by an earlier agent?): delete it (ip link del " +
                    o.macvtap_name + ") or release the recorded claim");
    if (std::string problem = uplink_problem(facts); !problem.empty())
        return fail(problem);
    net::NlLink link(rtnl_link_get(links.get(), facts.ifindex));
    if (!link || facts.uplink != rtnl_link_get_name(link.get()))
        return fail("network: uplink " + facts.uplink + " (ifindex " +
                    std::to_string(facts.ifindex) + ") changed since it was read: plan again");
    if (exists(record_path))
        return fail("network: " + record_path + " records an earlier claim that was not "
                    "released: release it first (rescuevm does this at start)");
    if (::mkdir(o.runtime_dir.c_str(), 0700) != 0 && errno != EEXIST)
        return fail("network: cannot create paths.runtime_dir " + o.runtime_dir + ": " + errno_text(errno));
    return {};
}

} // namespace


UplinkClaim::UplinkClaim() : record_(std::make_unique<ClaimRecord>()) {}
UplinkClaim::UplinkClaim(UplinkClaim &&o) noexcept
    : record_(std::move(o.record_)), tap_(std::move(o.tap_)),
      claimed_(std::exchange(o.claimed_, false))
{
}
UplinkClaim &UplinkClaim::operator=(UplinkClaim &&o) noexcept
{
    if (this != &o) {
        if (claimed_)
            detach();
        record_ = std::move(o.record_);
        tap_ = std::move(o.tap_);
        claimed_ = std::exchange(o.claimed_, false);
    }
    return *this;
}

// Never a release: only a deliberate stop gives the uplink back (a QEMU may still
// carry it); the record stays for the next agent.
UplinkClaim::~UplinkClaim()
{
    if (claimed_ && record_)
        detach();
}

bool UplinkClaim::claimed() const { return claimed_; }
int UplinkClaim::tap_fd() const { return tap_.get(); }
const std::string &UplinkClaim::tap_path() const { return record_->tap_node; }
const std::string &UplinkClaim::macvtap() const { return record_->macvtap; }
int UplinkClaim::macvtap_ifindex() const { return record_->macvtap_ifindex; }
const std::string &UplinkClaim::uplink() const { return record_->uplink; }
const std::string &UplinkClaim::mac() const { return record_->mac; }
const std::string &UplinkClaim::record_path() const { return record_->path; }
nlohmann::json UplinkClaim::record_json() const { return to_json(*record_); }

Result<UplinkClaim> UplinkClaim::claim(const NetworkFacts &facts, const ClaimOptions &o)
{
    auto log = logger();
    auto sock = RESCUEVM_TRY(net::open_route_socket());
    std::string path = RuntimePaths{o.runtime_dir}.network_claim();
    RESCUEVM_TRY(check_claimable(sock.get(), facts, o, path));

    // Record everything before the first change.
    UplinkClaim claim;
    ClaimRecord &rec = *claim.record_;
    rec.path = path;
    rec.claimed_at = fmt::format("{:%Y-%m-%dT%H:%M:%SZ}",
                                 std::chrono::floor<std::chrono::seconds>(
                                     std::chrono::system_clock::now()));
    rec.uplink = facts.uplink;
    rec.facts = network_facts_json(facts);
    rec.ifindex = facts.ifindex;
    rec.mac = facts.mac;
    rec.macvtap = o.macvtap_name;
    rec.proc_root = o.proc_root;
    {
        auto addrs = RESCUEVM_TRY(net::addr_cache(sock.get()));
        auto routes = RESCUEVM_TRY(net::route_cache(sock.get()));
        rec.addresses = net::record_addresses(addrs.get(), rec.ifindex);
        rec.routes = net::record_routes(routes.get(), rec.ifindex);
    }
    std::string conf = ipv6_conf(o.proc_root, rec.uplink);
    bool ipv6 = exists(conf);
    if (ipv6)
        for (const char *key : {"accept_ra", "autoconf", "disable_ipv6"})
            rec.sysctls.push_back({conf + "/" + key, read_sysctl(conf + "/" + key)});
    UplinkHandover handover = uplink_handover(facts, rec.macvtap);
    if (!handover.problem.empty()) // check_claimable() ran uplink_problem(); this is the same rule
        return fail(handover.problem);
    rec.handover = handover.steps;
    RESCUEVM_TRY(write_claim_record(rec));
    claim.claimed_ = true; // from here on, a failure rolls back through release()

    auto rollback = [&](Error e) -> Result<UplinkClaim> {
        log->error("{}; undoing the claim of {}", e.message, rec.uplink);
        if (auto r = claim.release(); !r)
            e.message += "; rollback incomplete: " + r.error().message;
        return std::unexpected(e);
    };

    log->info("claiming uplink {} ({}) for the VM: {} addresses, {} routes recorded in {}",
              rec.uplink, rec.mac, rec.addresses.size(), rec.routes.size(), path);
    log->info("hand-over: {}", handover.description);
    net::HandoverContext context = handover_context(rec);

    // 1. The network stack lets go of the uplink (and of the macvtap before it exists),
    //    or it would put the addresses back and answer for the MAC the guest now owns.
    for (const auto &step : rec.handover)
        if (auto r = net::let_go(step, context); !r)
            return rollback(r.error());

    // 2. The passthru macvtap: it takes the uplink's MAC, and has no IPv6 of its own.
    {
        net::NlLink mt(rtnl_link_macvtap_alloc());
        rtnl_link_set_link(mt.get(), rec.ifindex);
        rtnl_link_set_name(mt.get(), rec.macvtap.c_str());
        rtnl_link_macvtap_set_mode(mt.get(), MACVLAN_MODE_PASSTHRU);
        if (int err = rtnl_link_add(sock.get(), mt.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0)
            return rollback({"network: cannot create macvtap " + rec.macvtap + " on " +
                             rec.uplink + ": " + net::nl_error(err)});
        auto links = net::link_cache(sock.get());
        if (!links)
            return rollback(links.error());
        net::NlLink made = our_macvtap(links->get(), rec.macvtap, rec.ifindex);
        if (!made)
            return rollback({"network: macvtap " + rec.macvtap + " vanished after creation"});
        rec.macvtap_ifindex = rtnl_link_get_ifindex(made.get());
        if (std::string mt_conf = ipv6_conf(o.proc_root, rec.macvtap); exists(mt_conf))
            if (auto r = write_sysctl(mt_conf + "/disable_ipv6", "1"); !r)
                return rollback(r.error());
        net::NlLink change(rtnl_link_alloc());
        rtnl_link_set_flags(change.get(), IFF_UP);
        if (int err = rtnl_link_change(sock.get(), made.get(), change.get(), 0); err < 0)
            return rollback({"network: cannot set " + rec.macvtap + " up: " + net::nl_error(err)});
        std::string mac = net::mac_text(rtnl_link_get_addr(made.get()));
        if (mac != rec.mac)
            return rollback({"network: macvtap " + rec.macvtap + " has MAC " + mac + ", not " +
                             rec.uplink + "'s " + rec.mac + ": passthru mode did not take"});
        for (const auto &step : rec.handover)
            if (auto r = net::keep_off_macvtap(step, context); !r)
                return rollback(r.error());
    }
    // 3. Its character device, for QEMU.
    {
        std::string node_dir = o.node_dir.empty() ? o.runtime_dir + "/dev" : o.node_dir;
        auto tap = net::open_macvtap_tap(o.sys_root, o.dev_dir, node_dir, rec.macvtap,
                                         rec.macvtap_ifindex);
        if (!tap)
            return rollback(tap.error());
        claim.tap_ = std::move(tap->fd);
        rec.tap_node = tap->path;
        rec.tap_node_created = tap->created;
        if (auto r = write_claim_record(rec); !r)
            return rollback(r.error());
    }
    log->info("macvtap {} (passthru, {}) on {}, {} open", rec.macvtap, rec.mac, rec.uplink,
              rec.tap_node);
    // 4. No IPv6 on the uplink (this also drops its IPv6 addresses and routes): the host
    //    must not answer, solicit routers or do DAD with the MAC the guest now owns.
    if (ipv6) {
        for (const char *key : {"accept_ra", "autoconf"})
            if (auto r = write_sysctl(conf + "/" + key, "0"); !r)
                return rollback(r.error());
        if (auto r = write_sysctl(conf + "/disable_ipv6", "1"); !r)
            return rollback(r.error());
    }
    // 5. Routes, then addresses (an address takes its kernel routes with it).
    for (const auto &r : rec.routes)
        if (int err = net::delete_route(sock.get(), r);
            err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NOADDR)
            return rollback({"network: cannot remove route " + net::describe(r) + ": " +
                             net::nl_error(err)});
    for (const auto &a : rec.addresses)
        if (int err = net::delete_address(sock.get(), rec.ifindex, a);
            err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NOADDR)
            return rollback({"network: cannot remove address " + net::describe(a) + " from " +
                             rec.uplink + ": " + net::nl_error(err)});
    // 6. Verify: nothing of the host is left on the uplink.
    {
        auto addrs = net::addr_cache(sock.get());
        if (!addrs)
            return rollback(addrs.error());
        auto left = net::record_addresses(addrs->get(), rec.ifindex);
        if (!left.empty())
            return rollback({"network: uplink " + rec.uplink + " still has address " +
                             net::describe(left[0]) + " after the claim: something re-adds it"});
    }
    log->info("uplink {} handed to the VM: host addresses removed{}", rec.uplink,
              rec.handover.empty() ? "" : ", its network stack let go of it");
    return claim;
}

Result<std::optional<UplinkClaim>> UplinkClaim::load(const std::string &record_path)
{
    if (!exists(record_path))
        return std::optional<UplinkClaim>();
    auto rec = RESCUEVM_TRY(read_claim_record(record_path));
    UplinkClaim claim;
    *claim.record_ = std::move(rec);
    claim.claimed_ = true;
    logger()->warn("found an unreleased claim of uplink {} from {} in {}",
                   claim.record_->uplink, claim.record_->claimed_at, record_path);
    return std::optional<UplinkClaim>(std::move(claim));
}

Result<void> UplinkClaim::open_tap(const ClaimOptions &o)
{
    if (!claimed_ || !record_)
        return fail("network: no claim to open the tap of");
    if (tap_)
        return {};
    std::string node_dir = o.node_dir.empty() ? o.runtime_dir + "/dev" : o.node_dir;
    auto tap = RESCUEVM_TRY(net::open_macvtap_tap(o.sys_root, o.dev_dir, node_dir, record_->macvtap,
                                                  record_->macvtap_ifindex));
    if (tap.path != record_->tap_node || (tap.created && !record_->tap_node_created)) {
        // Another node than the claim's: record it, so the release removes the one we made.
        std::string old = record_->tap_node;
        bool old_created = record_->tap_node_created;
        record_->tap_node = tap.path;
        record_->tap_node_created = tap.created;
        if (auto r = write_claim_record(*record_); !r) {
            if (tap.created)
                ::unlink(tap.path.c_str());
            record_->tap_node = old;
            record_->tap_node_created = old_created;
            return r;
        }
        if (old_created && old != tap.path)
            ::unlink(old.c_str());
    }
    tap_ = std::move(tap.fd);
    return {};
}

Result<std::optional<NetworkFacts>> UplinkClaim::recorded_facts(const std::string &record_path)
{
    if (!exists(record_path))
        return std::optional<NetworkFacts>();
    auto rec = RESCUEVM_TRY(read_claim_record(record_path));
    auto facts = network_facts_from_json(rec.facts);
    if (!facts)
        return fail("network: the claim record " + record_path + " holds no usable uplink facts: " +
                    facts.error().message);
    return std::optional<NetworkFacts>(std::move(*facts));
}

void UplinkClaim::detach()
{
    if (claimed_ && record_)
        logger()->info("leaving uplink {} claimed for a later agent (record {})", record_->uplink,
                       record_->path);
    tap_.reset();
    claimed_ = false;
}

Result<void> UplinkClaim::release()
{
    if (!claimed_ || !record_)
        return {};
    auto log = logger();
    ClaimRecord &rec = *record_;
    std::vector<std::string> failed;
    tap_.reset();

    auto sock = RESCUEVM_TRY(net::open_route_socket());
    auto links = RESCUEVM_TRY(net::link_cache(sock.get()));
    net::NlLink uplink(rtnl_link_get(links.get(), rec.ifindex));
    if (!uplink || rec.uplink != rtnl_link_get_name(uplink.get()))
        return fail("network: cannot give uplink " + rec.uplink + " back: ifindex " +
                    std::to_string(rec.ifindex) + " is gone or renamed; the record " + rec.path +
                    " says what to restore");

    if (net::NlLink mt = our_macvtap(links.get(), rec.macvtap, rec.ifindex)) {
        if (int err = rtnl_link_delete(sock.get(), mt.get()); err < 0)
            failed.push_back("delete macvtap " + rec.macvtap + ": " + net::nl_error(err));
    }
    if (rec.tap_node_created && !rec.tap_node.empty() && ::unlink(rec.tap_node.c_str()) != 0 &&
        errno != ENOENT)
        failed.push_back("remove " + rec.tap_node + ": " + errno_text(errno));
    for (const auto &s : rec.sysctls)
        if (auto r = write_sysctl(s.path, s.value); !r)
            failed.push_back(r.error().message);
    for (int family : {AF_INET, AF_INET6})
        for (const auto &a : rec.addresses)
            if (a.family == family)
                if (int err = net::add_address(sock.get(), rec.ifindex, a);
                    err < 0 && err != -NLE_EXIST)
                    failed.push_back("add address " + net::describe(a) + ": " + net::nl_error(err));
    std::vector<const RecordedRoute *> routes;
    for (const auto &r : rec.routes)
        routes.push_back(&r);
    std::stable_sort(routes.begin(), routes.end(), [](auto *a, auto *b) {
        return restore_rank(*a) < restore_rank(*b);
    });
    for (const auto *r : routes)
        if (int err = net::add_route(sock.get(), *r); err < 0 && err != -NLE_EXIST)
            failed.push_back("add route " + net::describe(*r) + ": " + net::nl_error(err));
    // The network stack takes the uplink back, last step first (each is safe to repeat,
    // and safe when its let_go never ran: a claim that failed or crashed midway).
    net::HandoverContext context = handover_context(rec);
    for (auto step = rec.handover.rbegin(); step != rec.handover.rend(); ++step)
        if (auto r = net::take_back(*step, context); !r)
            failed.push_back(r.error().message);

    if (!failed.empty()) {
        std::string msg = fmt::format("network: uplink {} only partly restored ({}); the record "
                                      "{} is kept so the next start tries again",
                                      rec.uplink, fmt::join(failed, "; "), rec.path);
        log->error("{}", msg);
        return fail(msg);
    }
    if (::unlink(rec.path.c_str()) != 0 && errno != ENOENT)
        log->warn("cannot remove {}: {}, ignoring", rec.path, errno_text(errno));
    claimed_ = false;
    log->info("uplink {} given back to the host: {} addresses and {} routes restored",
              rec.uplink, rec.addresses.size(), rec.routes.size());
    return {};
}

} // namespace rescuevm
