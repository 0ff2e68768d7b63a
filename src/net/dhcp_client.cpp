// SPDX-License-Identifier: GPL-2.0-or-later
// DHCP clients serving the uplink: stopped through a pidfd, restarted detached.
#include "rescuevm/net/dhcp_client.h"

#include "rescuevm/sys/log.h"
#include "rescuevm/sys/process.h"
#include "rescuevm/sys/unique_fd.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rescuevm::net {
namespace {

std::uint64_t start_time_of(const std::string &proc_root, int pid)
{
    auto t = read_start_time(pid, proc_root);
    return t ? *t : 0;
}

} // namespace

Result<void> stop_dhcp_client(const std::string &proc_root, const DhcpProcess &client)
{
    auto log = log::get("network");
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, client.pid, 0)));
    if (!pidfd) {
        if (errno == ESRCH)
            return {};
        return fail("network: cannot open a pidfd for " + client.name + " pid " +
                    std::to_string(client.pid) + ": " + std::strerror(errno));
    }
    // The pidfd pins the process; check it is still the one we recorded.
    if (start_time_of(proc_root, client.pid) != client.start_time) {
        log->info("{} pid {} already exited", client.name, client.pid);
        return {};
    }
    for (int sig : {SIGTERM, SIGKILL}) {
        if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) != 0) {
            if (errno == ESRCH)
                return {};
            return fail("network: cannot signal " + client.name + " pid " +
                        std::to_string(client.pid) + ": " + std::strerror(errno));
        }
        pollfd p{pidfd.get(), POLLIN, 0};
        int n = ::poll(&p, 1, sig == SIGTERM ? 5000 : 2000);
        if (n > 0) {
            log->info("stopped {} pid {} with {}", client.name, client.pid,
                      sig == SIGTERM ? "SIGTERM" : "SIGKILL");
            return {};
        }
        if (sig == SIGTERM)
            log->warn("{} pid {} ignored SIGTERM for 5 s, sending SIGKILL", client.name,
                      client.pid);
    }
    return fail("network: " + client.name + " pid " + std::to_string(client.pid) +
                " did not exit after SIGKILL");
}

Result<void> restart_dhcp_client(const DhcpProcess &client)
{
    if (client.argv.empty())
        return fail("network: no command line recorded for " + client.name);
    // Everything the children need is prepared before fork().
    std::vector<char *> argv;
    for (const auto &a : client.argv)
        argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    static char path_env[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    char *envp[] = {path_env, nullptr};
    std::string exe = client.exe.empty() ? client.argv[0] : client.exe;
    std::string cwd = client.cwd.empty() ? "/" : client.cwd;

    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0)
        return fail(std::string("network: pipe2: ") + std::strerror(errno));
    UniqueFd report_read(report[0]), report_write(report[1]);

    pid_t child = ::fork();
    if (child < 0)
        return fail(std::string("network: fork: ") + std::strerror(errno));
    if (child == 0) {
        // Intermediate child: a new session, then a grandchild that init adopts.
        ::setsid();
        pid_t grandchild = ::fork();
        if (grandchild != 0)
            ::_exit(grandchild < 0 ? 1 : 0);
        if (::chdir(cwd.c_str()) != 0 && ::chdir("/") != 0)
            ::_exit(127);
        int null = ::open("/dev/null", O_RDWR);
        if (null >= 0) {
            ::dup2(null, 0);
            ::dup2(null, 1);
            ::dup2(null, 2);
        }
        int keep = report_write.get();
        if (keep > 3)
            ::syscall(SYS_close_range, 3u, static_cast<unsigned>(keep - 1), 0u);
        ::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0u, 0u);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int s = 1; s < NSIG; ++s)
            ::signal(s, SIG_DFL);
        if (exe.starts_with("/"))
            ::execve(exe.c_str(), argv.data(), envp);
        else
            ::execvpe(exe.c_str(), argv.data(), envp);
        int err = errno;
        [[maybe_unused]] auto w = ::write(keep, &err, sizeof err);
        ::_exit(127);
    }
    report_write.reset();
    int status = 0;
    ::waitpid(child, &status, 0);
    int err = 0;
    ssize_t n = ::read(report_read.get(), &err, sizeof err);
    if (n == static_cast<ssize_t>(sizeof err))
        return fail("network: cannot start " + client.name + " again (" + exe +
                    "): " + std::strerror(err) + ": start it by hand");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail("network: cannot start " + client.name + " again: fork failed");
    log::get("network")->info("started {} again: {}", client.name, fmt::format("{}", fmt::join(client.argv, " ")));
    return {};
}

} // namespace rescuevm::net
