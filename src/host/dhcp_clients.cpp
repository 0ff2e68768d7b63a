// SPDX-License-Identifier: GPL-2.0-or-later
// Who serves an interface, read from procfs, pid files, control sockets and networkd's state files (a reader: changes nothing).
#include "rescuevm/host/dhcp_clients.h"

#include "rescuevm/sys/process.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace rescuevm {

namespace {

std::string basename_of(const std::string &path)
{
    auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// dhcpcd 9 retitles itself: one cmdline string "dhcpcd: eth0 [ip4] [ip6]".
std::vector<std::string> split_retitled(const std::vector<std::string> &argv)
{
    if (argv.size() != 1 || argv[0].find(' ') == std::string::npos)
        return argv;
    std::vector<std::string> words;
    std::istringstream in(argv[0]);
    for (std::string w; in >> w;)
        words.push_back(w);
    if (!words.empty() && words[0].ends_with(':'))
        words[0].pop_back();
    return words;
}

bool contains(const std::vector<std::string> &list, std::string_view value)
{
    return std::find(list.begin(), list.end(), value) != list.end();
}

// Options that take a value, per client (the value is the next word).
const std::set<std::string, std::less<>> kDhclientValued = {
    "-p", "-D", "-s", "-cf", "-df", "-lf", "-pf", "-e", "-sf", "--dad-wait-time", "--prefix-len-hint",
    "--decline-wait-time", "--address-prefix-len"};
const std::set<std::string, std::less<>> kDhcpcdValued = {
    "-c", "-e", "-f", "-h", "-i", "-j", "-l", "-m", "-o", "-r", "-s", "-t", "-u", "-v", "-y", "-z",
    "-C", "-F", "-I", "-O", "-Q", "-S", "-W", "-X", "-Z"};

void parse_dhclient(const std::vector<std::string> &args, DhcpClientFacts &c)
{
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string &a = args[i];
        bool has_value = kDhclientValued.contains(a) && i + 1 < args.size();
        const std::string value = has_value ? args[i + 1] : "";
        if (a == "-4")
            c.family = "ipv4";
        else if (a == "-6")
            c.family = "ipv6";
        else if (a == "-pf" && has_value)
            c.pid_file = value;
        else if (a == "-lf" && has_value)
            c.lease_file = value;
        else if (a == "-df" && has_value)
            c.duid_file = value;
        else if (a == "-cf" && has_value)
            c.config_file = value;
        else if (a == "-D" && has_value)
            c.duid_type = value;
        else if (has_value)
            c.other_options.push_back(a);
        else if (a == "--no-pid")
            c.other_options.push_back(a);
        else if (a.starts_with("-"))
            c.flags.push_back(a);
        else
            c.interfaces.push_back(a);
        i += has_value ? 1 : 0;
    }
    // dhclient's compiled-in defaults (Debian: /var/run is /run).
    bool v6 = c.family == "ipv6";
    if (c.pid_file.empty())
        c.pid_file = v6 ? "/run/dhclient6.pid" : "/run/dhclient.pid";
    if (c.lease_file.empty())
        c.lease_file = v6 ? "/var/lib/dhcp/dhclient6.leases" : "/var/lib/dhcp/dhclient.leases";
}

void parse_dhcpcd(const std::vector<std::string> &args, DhcpClientFacts &c)
{
    bool ip4 = false, ip6 = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string &a = args[i];
        if (a == "[manager]" || a == "[master]")
            c.manager = true;
        else if (a == "[ip4]")
            ip4 = true;
        else if (a == "[ip6]")
            ip6 = true;
        else if (a == "-4")
            c.family = "ipv4";
        else if (a == "-6")
            c.family = "ipv6";
        else if (a == "-M" || a == "--manager" || a == "--master")
            c.manager = true;
        else if (kDhcpcdValued.contains(a))
            ++i;
        else if (!a.starts_with("-"))
            c.interfaces.push_back(a);
    }
    (void)ip4;
    (void)ip6; // the family is found from its pid file: [ip4] also comes from "ipv4only"
    if (c.interfaces.size() != 1)
        c.manager = true;
}

std::string udhcpc_interface(const std::vector<std::string> &args)
{
    std::string iface = "eth0"; // busybox's default
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string &a = args[i];
        if ((a == "-i" || a == "--interface") && i + 1 < args.size())
            iface = args[++i];
        else if (a.starts_with("--interface="))
            iface = a.substr(12);
        else if (a.starts_with("-i") && a.size() > 2)
            iface = a.substr(2);
    }
    return iface;
}

} // namespace

std::optional<DhcpClientFacts> dhcp_client_for(const std::vector<std::string> &raw_argv, std::string_view iface)
{
    std::vector<std::string> argv = split_retitled(raw_argv);
    if (argv.empty())
        return std::nullopt;
    DhcpClientFacts c;
    c.name = basename_of(argv[0]);
    std::size_t first_arg = 1;
    if (c.name == "busybox" && argv.size() > 1) {
        c.name = basename_of(argv[1]);
        first_arg = 2;
    }
    std::vector<std::string> args(argv.begin() + static_cast<std::ptrdiff_t>(first_arg), argv.end());
    if (c.name == "udhcpc" || c.name == "udhcpc6") {
        c.interfaces = {udhcpc_interface(args)};
    } else if (c.name == "dhclient") {
        parse_dhclient(args, c);
    } else if (c.name == "dhcpcd") {
        for (const auto &a : args)
            if (a.starts_with("[") && a != "[manager]" && a != "[master]" && a != "[ip4]" && a != "[ip6]")
                return std::nullopt; // dhcpcd's privileged/network/control proxies are not the client
        parse_dhcpcd(args, c);
    } else {
        return std::nullopt;
    }
    if (!c.interfaces.empty() && !contains(c.interfaces, iface))
        return std::nullopt;
    return c;
}

namespace net {

namespace {

std::vector<std::string> read_cmdline(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> argv;
    std::size_t start = 0;
    while (start < all.size()) {
        std::size_t end = all.find('\0', start);
        if (end == std::string::npos)
            end = all.size();
        argv.push_back(all.substr(start, end - start));
        start = end + 1;
    }
    // A retitled process (dhcpcd 9) leaves NULs after its new title.
    while (!argv.empty() && argv.back().empty())
        argv.pop_back();
    return argv;
}

// The pid a pid file holds (0: missing, unreadable, not a pid).
int pid_in_file(const std::string &path)
{
    std::ifstream in(path);
    long pid = 0;
    if (!(in >> pid) || pid <= 0 || pid > 1 << 22)
        return 0;
    return static_cast<int>(pid);
}

bool is_socket(const std::string &path)
{
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// Namespaces compared by inode; a fixture tree without ns links counts as one namespace.
bool same_netns(const std::string &proc_root, const std::string &pid_dir)
{
    struct stat self{}, other{};
    bool self_ok = ::stat((proc_root + "/self/ns/net").c_str(), &self) == 0;
    bool other_ok = ::stat((pid_dir + "/ns/net").c_str(), &other) == 0;
    if (!self_ok && !other_ok)
        return true;
    return self_ok && other_ok && self.st_dev == other.st_dev && self.st_ino == other.st_ino;
}

template <typename F>
void for_each_process(const std::string &proc_root, F &&visit)
{
    std::error_code ec;
    for (const auto &entry : std::filesystem::directory_iterator(proc_root, ec)) {
        std::string name = entry.path().filename().string();
        if (name.empty() || name.size() > 9 || name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        int pid = std::atoi(name.c_str());
        if (pid == getpid() && proc_root == "/proc")
            continue;
        visit(pid, entry.path().string());
    }
}

// dhcpcd 9 keeps <rundir>/pid and sock as a manager, <rundir>/<iface>[-4|-6].pid and
// .sock for one interface (-4/-6 when started for one family).
void find_dhcpcd_files(const StackPaths &paths, const std::string &iface, DhcpClientFacts &c)
{
    if (c.manager) {
        c.pid_file = paths.dhcpcd_rundir + "/pid";
        c.pid_file_pid = pid_in_file(c.pid_file);
        if (is_socket(paths.dhcpcd_rundir + "/sock"))
            c.control_socket = paths.dhcpcd_rundir + "/sock";
        return;
    }
    for (const char *per : {"", "-4", "-6"}) {
        std::string base = paths.dhcpcd_rundir + "/" + iface + per;
        if (pid_in_file(base + ".pid") != c.pid)
            continue;
        c.pid_file = base + ".pid";
        c.pid_file_pid = c.pid;
        c.family = std::string(per) == "-4" ? "ipv4" : std::string(per) == "-6" ? "ipv6" : "";
        if (is_socket(base + ".sock"))
            c.control_socket = base + ".sock";
        return;
    }
    c.pid_file = paths.dhcpcd_rundir + "/" + iface + ".pid";
    c.pid_file_pid = pid_in_file(c.pid_file);
}

// Key=value lines of a networkd state file.
std::string state_value(const std::string &path, const std::string &key)
{
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(key + "="))
            return line.substr(key.size() + 1, 256);
    return "";
}

bool names_interface(const std::vector<std::string> &args, const std::string &iface)
{
    for (std::size_t i = 0; i < args.size(); ++i)
        if (args[i] == iface || args[i] == "-i" + iface || args[i] == "--interface=" + iface ||
            args[i] == "--iface=" + iface)
            return true;
    return false;
}

} // namespace

std::vector<DhcpClientFacts> find_dhcp_clients(const StackPaths &paths, const std::string &iface)
{
    std::vector<DhcpClientFacts> found;
    for_each_process(paths.proc_root, [&](int pid, const std::string &dir) {
        auto client = dhcp_client_for(read_cmdline(dir + "/cmdline"), iface);
        if (!client || !same_netns(paths.proc_root, dir))
            return;
        client->pid = pid;
        client->start_time = read_start_time(pid, paths.proc_root).value_or(0);
        if (client->name == "dhclient")
            client->pid_file_pid = pid_in_file(client->pid_file);
        else if (client->name == "dhcpcd")
            find_dhcpcd_files(paths, iface, *client);
        found.push_back(std::move(*client));
    });
    std::sort(found.begin(), found.end(), [](const auto &a, const auto &b) { return a.pid < b.pid; });
    return found;
}

std::string networkd_admin_state(const std::string &netif_dir, int ifindex)
{
    if (ifindex <= 0)
        return "";
    return state_value(netif_dir + "/links/" + std::to_string(ifindex), "ADMIN_STATE");
}

NetworkdFacts read_networkd(const StackPaths &paths, int ifindex)
{
    NetworkdFacts nd;
    for_each_process(paths.proc_root, [&](int, const std::string &dir) {
        auto argv = read_cmdline(dir + "/cmdline");
        if (!argv.empty() && basename_of(argv[0]) == "systemd-networkd" && same_netns(paths.proc_root, dir))
            nd.running = true;
    });
    if (!nd.running || ifindex <= 0)
        return nd;
    std::string links = paths.netif_dir + "/links/" + std::to_string(ifindex);
    nd.admin_state = state_value(links, "ADMIN_STATE");
    nd.network_file = state_value(links, "NETWORK_FILE");
    nd.dhcp_lease = ::access((paths.netif_dir + "/leases/" + std::to_string(ifindex)).c_str(), F_OK) == 0;
    return nd;
}

std::vector<std::string> find_other_managers(const std::string &proc_root, const std::string &iface)
{
    // Daemons that manage every interface, and per-interface ones nobody controls per interface.
    static const std::set<std::string, std::less<>> every = {"NetworkManager", "connmand", "wickedd",
                                                             "wickedd-nanny", "wickedd-dhcp4", "wickedd-dhcp6",
                                                             "netifd"};
    static const std::set<std::string, std::less<>> per_interface = {"ifplugd", "pump", "dhcp6c", "odhcp6c"};
    std::vector<std::string> found;
    for_each_process(proc_root, [&](int pid, const std::string &dir) {
        auto argv = read_cmdline(dir + "/cmdline");
        if (argv.empty())
            return;
        std::string name = basename_of(argv[0]);
        if (name.ends_with(":")) // retitled daemons ("wickedd-nanny: ...")
            name.pop_back();
        bool listed = every.contains(name);
        if (per_interface.contains(name)) {
            std::vector<std::string> args(argv.begin() + 1, argv.end());
            bool any_interface = std::any_of(args.begin(), args.end(), [](const std::string &a) {
                return !a.starts_with("-");
            });
            listed = names_interface(args, iface) || !any_interface;
        }
        if (listed && same_netns(proc_root, dir))
            found.push_back(name + " pid " + std::to_string(pid));
    });
    std::sort(found.begin(), found.end());
    return found;
}

bool holds_dhcp_socket(const std::string &proc_root, int pid)
{
    std::string dir = proc_root + "/" + std::to_string(pid);
    std::set<std::string> inodes;
    std::error_code ec;
    for (const auto &entry : std::filesystem::directory_iterator(dir + "/fd", ec)) {
        auto target = std::filesystem::read_symlink(entry.path(), ec);
        std::string t = ec ? "" : target.string();
        if (t.starts_with("socket:[") && t.ends_with("]"))
            inodes.insert(t.substr(8, t.size() - 9));
    }
    if (inodes.empty())
        return false;
    // Its own namespace's tables: /proc/<pid>/net is the network namespace of that process.
    std::ifstream packet(dir + "/net/packet");
    std::string line;
    std::getline(packet, line); // header: sk RefCnt Type Proto Iface R Rmem User Inode
    while (std::getline(packet, line)) {
        std::istringstream f(line);
        std::string field, inode;
        for (int i = 0; i < 9 && f >> field; ++i)
            inode = field;
        if (inodes.contains(inode))
            return true;
    }
    for (const char *table : {"/net/udp", "/net/udp6"}) {
        std::ifstream udp(dir + table);
        std::getline(udp, line); // header
        while (std::getline(udp, line)) {
            std::istringstream f(line);
            std::vector<std::string> fields;
            for (std::string field; f >> field;)
                fields.push_back(field);
            if (fields.size() < 10)
                continue;
            std::string port = fields[1].substr(fields[1].rfind(':') + 1);
            if ((port == "0044" || port == "0222") && inodes.contains(fields[9]))
                return true;
        }
    }
    return false;
}

} // namespace net
} // namespace rescuevm
