// SPDX-License-Identifier: GPL-2.0-or-later
// ClaimRecord: everything a claim changed on the uplink, kept in memory and in a 0600 JSON file (its netlink side: claim_netlink.cpp).
#include "claim_record.h"

#include "rescuevm/core/ip_address.h"
#include "rescuevm/sys/files.h"

#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <fmt/format.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/route/nexthop.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace rescuevm {

bool RecordedRoute::has_gateway() const
{
    for (const auto &nh : nexthops)
        if (!nh.gateway.empty())
            return true;
    return false;
}

// ---- JSON ------------------------------------------------------------------------

static void to_json(nlohmann::json &j, const RecordedAddress &a)
{
    j = {{"family", a.family == AF_INET ? "ipv4" : "ipv6"},
         {"local", a.local}, {"prefix", a.prefix}, {"peer", a.peer},
         {"broadcast", a.broadcast}, {"label", a.label}, {"scope", a.scope},
         {"flags", a.flags}, {"valid_lft", a.valid_lft}, {"preferred_lft", a.preferred_lft}};
}

static void from_json(const nlohmann::json &j, RecordedAddress &a)
{
    a.family = j.at("family") == "ipv4" ? AF_INET : AF_INET6;
    j.at("local").get_to(a.local);
    j.at("prefix").get_to(a.prefix);
    j.at("peer").get_to(a.peer);
    j.at("broadcast").get_to(a.broadcast);
    j.at("label").get_to(a.label);
    j.at("scope").get_to(a.scope);
    j.at("flags").get_to(a.flags);
    j.at("valid_lft").get_to(a.valid_lft);
    j.at("preferred_lft").get_to(a.preferred_lft);
}

static void to_json(nlohmann::json &j, const RecordedRoute &r)
{
    nlohmann::json nexthops = nlohmann::json::array();
    for (const auto &nh : r.nexthops)
        nexthops.push_back({{"ifindex", nh.ifindex}, {"gateway", nh.gateway},
                            {"flags", nh.flags}, {"weight", nh.weight}});
    nlohmann::json metrics = nlohmann::json::object();
    for (auto [k, v] : r.metrics)
        metrics[std::to_string(k)] = v;
    j = {{"family", r.family == AF_INET ? "ipv4" : "ipv6"}, {"table", r.table},
         {"dst", r.dst}, {"type", r.type}, {"protocol", r.protocol}, {"scope", r.scope},
         {"tos", r.tos}, {"priority", r.priority}, {"pref_src", r.pref_src},
         {"metrics", metrics}, {"nexthops", nexthops}};
}

static void from_json(const nlohmann::json &j, RecordedRoute &r)
{
    r.family = j.at("family") == "ipv4" ? AF_INET : AF_INET6;
    j.at("table").get_to(r.table);
    j.at("dst").get_to(r.dst);
    j.at("type").get_to(r.type);
    j.at("protocol").get_to(r.protocol);
    j.at("scope").get_to(r.scope);
    j.at("tos").get_to(r.tos);
    j.at("priority").get_to(r.priority);
    j.at("pref_src").get_to(r.pref_src);
    for (auto &[k, v] : j.at("metrics").items())
        r.metrics[std::stoi(k)] = v.get<std::uint32_t>();
    for (const auto &nh : j.at("nexthops"))
        r.nexthops.push_back({nh.at("ifindex").get<int>(), nh.at("gateway").get<std::string>(),
                              nh.at("flags").get<unsigned>(), nh.at("weight").get<unsigned>()});
}

nlohmann::json to_json(const ClaimRecord &c)
{
    nlohmann::json sysctls = nlohmann::json::array();
    for (const auto &s : c.sysctls)
        sysctls.push_back({{"path", s.path}, {"value", s.value}});
    nlohmann::json steps = nlohmann::json::array();
    for (const auto &h : c.handover)
        steps.push_back({{"kind", to_string(h.kind)}, {"program", h.program}, {"pid", h.pid},
                         {"start_time", h.start_time}, {"family", h.family}, {"flags", h.flags},
                         {"pid_file", h.pid_file}, {"lease_file", h.lease_file}, {"duid_file", h.duid_file},
                         {"config_file", h.config_file}, {"duid_type", h.duid_type},
                         {"control_socket", h.control_socket}, {"dropin", h.dropin},
                         {"admin_state", h.admin_state}});
    nlohmann::json addresses = nlohmann::json::array(), routes = nlohmann::json::array();
    for (const auto &a : c.addresses) {
        nlohmann::json j;
        to_json(j, a);
        addresses.push_back(j);
    }
    for (const auto &r : c.routes) {
        nlohmann::json j;
        to_json(j, r);
        routes.push_back(j);
    }
    return {{"version", c.version}, {"claimed_at", c.claimed_at}, {"uplink", c.uplink},
            {"ifindex", c.ifindex}, {"mac", c.mac}, {"macvtap", c.macvtap},
            {"macvtap_ifindex", c.macvtap_ifindex}, {"tap_node", c.tap_node},
            {"tap_node_created", c.tap_node_created}, {"proc_root", c.proc_root},
            {"addresses", addresses}, {"routes", routes}, {"sysctls", sysctls},
            {"handover", steps}, {"facts", c.facts}};
}

Result<ClaimRecord> claim_record_from_json(const nlohmann::json &j)
{
    try {
        ClaimRecord c;
        j.at("version").get_to(c.version);
        if (c.version != 2)
            return fail("network: claim record version " + std::to_string(c.version) +
                        " is not supported by this rescuevm: give the uplink back by hand (its addresses "
                        "and routes are in the record), then remove it");
        j.at("claimed_at").get_to(c.claimed_at);
        j.at("uplink").get_to(c.uplink);
        j.at("ifindex").get_to(c.ifindex);
        j.at("mac").get_to(c.mac);
        j.at("macvtap").get_to(c.macvtap);
        j.at("macvtap_ifindex").get_to(c.macvtap_ifindex);
        j.at("tap_node").get_to(c.tap_node);
        j.at("tap_node_created").get_to(c.tap_node_created);
        j.at("proc_root").get_to(c.proc_root);
        for (const auto &a : j.at("addresses")) {
            RecordedAddress ra;
            from_json(a, ra);
            c.addresses.push_back(ra);
        }
        for (const auto &r : j.at("routes")) {
            RecordedRoute rr;
            from_json(r, rr);
            c.routes.push_back(rr);
        }
        for (const auto &s : j.at("sysctls"))
            c.sysctls.push_back({s.at("path").get<std::string>(), s.at("value").get<std::string>()});
        for (const auto &h : j.at("handover")) {
            HandoverStep step;
            std::string kind = h.at("kind").get<std::string>();
            bool known = false;
            for (auto k : {HandoverStep::Kind::networkd, HandoverStep::Kind::dhclient, HandoverStep::Kind::dhcpcd,
                           HandoverStep::Kind::dhcpcd_manager, HandoverStep::Kind::udhcpc})
                if (kind == to_string(k)) {
                    step.kind = k;
                    known = true;
                }
            if (!known)
                return fail("network: claim record has a hand-over step of unknown kind \"" + kind + "\"");
            h.at("program").get_to(step.program);
            h.at("pid").get_to(step.pid);
            h.at("start_time").get_to(step.start_time);
            h.at("family").get_to(step.family);
            h.at("flags").get_to(step.flags);
            h.at("pid_file").get_to(step.pid_file);
            h.at("lease_file").get_to(step.lease_file);
            h.at("duid_file").get_to(step.duid_file);
            h.at("config_file").get_to(step.config_file);
            h.at("duid_type").get_to(step.duid_type);
            h.at("control_socket").get_to(step.control_socket);
            h.at("dropin").get_to(step.dropin);
            h.at("admin_state").get_to(step.admin_state);
            c.handover.push_back(step);
        }
        if (j.contains("facts"))
            c.facts = j.at("facts");
        return c;
    } catch (const nlohmann::json::exception &e) {
        return fail(std::string("network: claim record is damaged: ") + e.what());
    }
}

Result<void> write_claim_record(const ClaimRecord &record)
{
    if (auto r = write_file_atomic(record.path, to_json(record).dump(2) + "\n", 0600); !r)
        return fail("network: " + r.error().message + ": check paths.runtime_dir");
    return {};
}

namespace {

bool interface_name(const std::string &name)
{
    if (name.empty() || name.size() > 15 || name == "." || name == "..")
        return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && std::string_view("_-.@:").find(c) == std::string_view::npos)
            return false;
    return true;
}

bool digits(const std::string &s)
{
    return !s.empty() && s.size() < 12 && s.find_first_not_of("0123456789") == std::string::npos;
}

} // namespace

std::string claim_record_problem(const ClaimRecord &c, const std::string &path)
{
    if (!interface_name(c.uplink))
        return "uplink \"" + c.uplink + "\" is not an interface name";
    if (!interface_name(c.macvtap))
        return "macvtap \"" + c.macvtap + "\" is not an interface name";
    if (c.ifindex <= 0 || c.macvtap_ifindex <= 0)
        return "an interface index is not positive";
    if (c.proc_root != "/proc")
        return "proc_root is \"" + c.proc_root + "\", not /proc";
    std::string dir = path.substr(0, path.rfind('/'));
    std::string tap = "tap" + std::to_string(c.macvtap_ifindex);
    std::string own = "/dev/rescuevm-" + tap + "-"; // + MAJOR-MINOR: our own node (tap_device.cpp)
    bool own_node = false;
    if (c.tap_node.starts_with(own)) {
        std::string numbers = c.tap_node.substr(own.size());
        auto dash = numbers.find('-');
        own_node = dash != std::string::npos && digits(numbers.substr(0, dash)) && digits(numbers.substr(dash + 1));
    }
    if (c.tap_node != "/dev/" + tap && c.tap_node != dir + "/dev/" + tap && !own_node)
        return "tap node \"" + c.tap_node + "\" is not /dev/" + tap + " nor /dev/rescuevm-" + tap + "-MAJOR-MINOR";
    for (const auto &s : c.sysctls) {
        bool ours = false;
        for (const std::string &iface : {c.uplink, c.macvtap, std::string("all"), std::string("default")})
            for (const char *family : {"ipv4", "ipv6"})
                ours |= s.path.starts_with(fmt::format("/proc/sys/net/{}/conf/{}/", family, iface)) &&
                        s.path.find("/..") == std::string::npos &&
                        s.path.find('/', fmt::format("/proc/sys/net/{}/conf/{}/", family, iface).size()) ==
                            std::string::npos;
        if (!ours)
            return "sysctl \"" + s.path + "\" is not one of the uplink's";
        if (!digits(s.value))
            return "sysctl value \"" + s.value + "\" is not a number";
    }
    for (const auto &a : c.addresses)
        if (!IpAddress::parse(a.local))
            return "address \"" + a.local + "\" is not an IP address";
    if (c.handover.size() > 8)
        return "it lists " + std::to_string(c.handover.size()) + " hand-over steps";
    for (const auto &step : c.handover)
        if (std::string problem = handover_step_problem(step, c.uplink); !problem.empty())
            return "hand-over step " + std::string(to_string(step.kind)) + ": " + problem;
    return "";
}

Result<ClaimRecord> read_claim_record(const std::string &path)
{
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
        return fail("network: cannot read the claim record " + path + ": " + errno_text(errno));
    if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022))
        return fail(fmt::format("network: the claim record {} is not a private root-owned file (uid {}, mode {:04o}): "
                                "not trusted; restore the uplink by hand",
                                path, st.st_uid, st.st_mode & 07777));
    auto text = RESCUEVM_TRY(read_small_file(path, "network: claim record " + path, 1 << 20));
    if (!text)
        return fail("network: the claim record " + path + " is gone");
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded())
        return fail("network: the claim record " + path + " is not JSON: restore the uplink by hand");
    auto record = claim_record_from_json(j);
    if (!record)
        return fail(record.error().message + " (" + path + ")");
    if (auto problem = claim_record_problem(*record, path); !problem.empty())
        return fail("network: the claim record " + path + " is not trusted: " + problem + "; restore the uplink by hand");
    record->path = path;
    return record;
}

} // namespace rescuevm
