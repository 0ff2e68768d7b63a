// SPDX-License-Identifier: GPL-2.0-or-later
// DHCP clients serving an interface, found in procfs (a reader: changes nothing).
#include "rescuevm/host/dhcp_clients.h"

#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
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

bool names_interface(const std::vector<std::string> &args, std::string_view iface)
{
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string &a = args[i];
        if (a == iface)
            return true;
        if ((a == "-i" || a == "--interface") && i + 1 < args.size() && args[i + 1] == iface)
            return true;
        if (a == "-i" + std::string(iface) || a == "--interface=" + std::string(iface))
            return true;
    }
    return false;
}

} // namespace

std::optional<std::string> dhcp_client_for(const std::vector<std::string> &raw_argv,
                                           std::string_view iface)
{
    std::vector<std::string> argv = split_retitled(raw_argv);
    if (argv.empty())
        return std::nullopt;
    std::string name = basename_of(argv[0]);
    size_t first_arg = 1;
    if (name == "busybox" && argv.size() > 1) {
        name = basename_of(argv[1]);
        first_arg = 2;
    }
    if (name != "dhclient" && name != "dhcpcd" && name != "udhcpc" && name != "udhcpc6")
        return std::nullopt;
    std::vector<std::string> args(argv.begin() + first_arg, argv.end());
    bool helper = false, manager = false, bare = false;
    for (const auto &a : args) {
        if (a == "[manager]" || a == "[master]")
            manager = true;
        else if (a.starts_with("[") && a != "[ip4]" && a != "[ip6]")
            helper = true; // dhcpcd's privileged/network/control proxies are not the client
        else if (!a.starts_with("-"))
            bare = true;
    }
    if (helper)
        return std::nullopt;
    if (names_interface(args, iface))
        return name;
    // Without an interface dhcpcd runs as manager of every interface.
    if (name == "dhcpcd" && (manager || !bare))
        return name;
    return std::nullopt;
}

namespace net {

namespace {

std::vector<std::string> read_cmdline(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> argv;
    size_t start = 0;
    while (start < all.size()) {
        size_t end = all.find('\0', start);
        if (end == std::string::npos)
            end = all.size();
        argv.push_back(all.substr(start, end - start));
        start = end + 1;
    }
    return argv;
}

std::string read_link(const std::string &path)
{
    std::error_code ec;
    auto target = std::filesystem::read_symlink(path, ec);
    if (ec)
        return "";
    std::string s = target.string();
    if (s.ends_with(" (deleted)"))
        s.resize(s.size() - 10);
    return s;
}

std::uint64_t start_time_of(const std::string &proc_root, int pid)
{
    std::ifstream in(proc_root + "/" + std::to_string(pid) + "/stat");
    std::string all;
    std::getline(in, all);
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    auto close = all.rfind(')');
    if (close == std::string::npos)
        return 0;
    std::istringstream fields(all.substr(close + 2));
    std::string f;
    for (int i = 3; i <= 22 && fields >> f; ++i)
        if (i == 22)
            return std::strtoull(f.c_str(), nullptr, 10);
    return 0;
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
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        int pid = std::atoi(name.c_str());
        if (pid == getpid() && proc_root == "/proc")
            continue;
        visit(pid, entry.path().string());
    }
}

} // namespace

std::vector<DhcpProcess> find_dhcp_clients(const std::string &proc_root, const std::string &iface)
{
    std::vector<DhcpProcess> found;
    for_each_process(proc_root, [&](int pid, const std::string &dir) {
        auto argv = read_cmdline(dir + "/cmdline");
        auto name = dhcp_client_for(argv, iface);
        if (!name || !same_netns(proc_root, dir))
            return;
        DhcpProcess p;
        p.pid = pid;
        p.name = *name;
        p.argv = std::move(argv);
        p.exe = read_link(dir + "/exe");
        p.cwd = read_link(dir + "/cwd");
        p.start_time = start_time_of(proc_root, pid);
        found.push_back(std::move(p));
    });
    return found;
}

std::string networkd_lease(const std::string &proc_root, const std::string &leases_dir,
                           int ifindex)
{
    std::string lease = leases_dir + "/" + std::to_string(ifindex);
    if (ifindex <= 0 || ::access(lease.c_str(), F_OK) != 0)
        return "";
    bool running = false;
    for_each_process(proc_root, [&](int, const std::string &dir) {
        auto argv = read_cmdline(dir + "/cmdline");
        if (!argv.empty() && basename_of(argv[0]) == "systemd-networkd" &&
            same_netns(proc_root, dir))
            running = true;
    });
    return running ? "systemd-networkd (lease " + lease + ")" : "";
}

} // namespace net
} // namespace rescuevm
