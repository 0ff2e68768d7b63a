// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of process: spawn with pidfd, fd allow-list, attach by start time, signals, reaping.
#include "rescuevm/sys/event_loop.h"
#include "rescuevm/sys/process.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

using namespace rescuevm;
using namespace std::chrono_literals;

namespace {

// Runs a loop until the pidfd is readable (the process ended), then reaps it.
std::optional<ExitStatus> wait_for_exit(int pidfd)
{
    auto loop = EventLoop::create();
    REQUIRE(loop);
    std::optional<ExitStatus> status;
    auto watch = (*loop)->add_fd(pidfd, EPOLLIN, [&](std::uint32_t) {
        auto r = try_reap(pidfd);
        REQUIRE(r);
        status = *r;
        (*loop)->quit(0);
    });
    REQUIRE(watch);
    (*loop)->add_timer(5s, [&] { (*loop)->quit(99); });
    CHECK((*loop)->run() == 0);
    return status;
}

std::string read_all(int fd)
{
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0)
        out.append(buf, static_cast<std::size_t>(n));
    return out;
}

struct Pipe {
    UniqueFd read, write;
    Pipe()
    {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        read.reset(fds[0]);
        write.reset(fds[1]);
    }
};

std::string proc_status_field(pid_t pid, const std::string &key)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key + ":", 0) == 0)
            return line.substr(line.find_first_not_of(" \t", key.size() + 1));
    return "";
}

} // namespace

TEST_CASE("process: the exit status of a child is reaped once its pidfd is readable")
{
    auto child = spawn({.argv = {"/bin/sh", "-c", "exit 7"}});
    REQUIRE(child);
    CHECK(child->pid > 0);
    CHECK(child->start_time > 0);
    auto status = wait_for_exit(child->pidfd.get());
    REQUIRE(status);
    CHECK(status->kind == ExitStatus::Kind::exited);
    CHECK(status->code == 7);
    CHECK(status->describe() == "exited with status 7");
}

TEST_CASE("process: a kept fd arrives in the child at the requested number")
{
    Pipe p;
    auto child = spawn({.argv = {"sh", "-c", "echo hello >&7"}, .keep_fds = {{p.write.get(), 7}}});
    REQUIRE(child);
    p.write.reset();
    CHECK(read_all(p.read.get()) == "hello\n");
    auto status = wait_for_exit(child->pidfd.get());
    REQUIRE(status);
    CHECK(status->code == 0);
}

TEST_CASE("process: every fd but stdio and the kept ones is closed in the child, CLOEXEC or not")
{
    Pipe p;
    // An inherited fd without CLOEXEC: only the allow-list keeps it out of the child.
    UniqueFd leaky(::fcntl(p.read.get(), F_DUPFD, 40));
    REQUIRE(leaky);
    // Maps onto a number that is also a source fd's number, to exercise the reshuffle.
    auto child = spawn({.argv = {"sh", "-c", "exec ls /proc/self/fd >&5"}, .keep_fds = {{p.write.get(), 5}}});
    REQUIRE(child);
    p.write.reset();
    std::istringstream listing(read_all(p.read.get()));
    std::set<std::string> fds;
    for (std::string fd; listing >> fd;)
        fds.insert(fd);
    // 3 is the directory ls itself opens to list /proc/self/fd.
    CHECK(fds == std::set<std::string>{"0", "1", "2", "3", "5"});
    REQUIRE(wait_for_exit(child->pidfd.get()));
}

TEST_CASE("process: stdout and stderr are appended to a 0600 file")
{
    char dir[] = "/tmp/rescuevm-test-XXXXXX";
    REQUIRE(::mkdtemp(dir));
    std::string log = std::string(dir) + "/qemu.log";
    {
        std::ofstream(log) << "before\n";
        ::chmod(log.c_str(), 0600);
    }
    auto child = spawn({.argv = {"sh", "-c", "echo out; echo err >&2"}, .stdout_path = log, .stderr_path = log});
    REQUIRE(child);
    REQUIRE(wait_for_exit(child->pidfd.get()));
    std::ifstream in(log);
    std::stringstream content;
    content << in.rdbuf();
    CHECK(content.str() == "before\nout\nerr\n");
    std::string fresh = std::string(dir) + "/new.log";
    auto second = spawn({.argv = {"true"}, .stdout_path = fresh});
    REQUIRE(second);
    REQUIRE(wait_for_exit(second->pidfd.get()));
    struct stat st;
    REQUIRE(::stat(fresh.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    ::unlink(log.c_str());
    ::unlink(fresh.c_str());
    ::rmdir(dir);
}

TEST_CASE("process: send_signal through the pidfd kills a sleeping child; it ran in its own session with a clean signal mask")
{
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ::sigprocmask(SIG_BLOCK, &usr1, &old);
    auto child = spawn({.argv = {"sleep", "100"}});
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    REQUIRE(child);

    auto running = try_reap(child->pidfd.get());
    REQUIRE(running);
    CHECK_FALSE(running->has_value());
    CHECK(proc_status_field(child->pid, "SigBlk") == "0000000000000000");
    std::ifstream stat("/proc/" + std::to_string(child->pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    std::istringstream fields(line.substr(line.rfind(')') + 2));
    std::string state, ppid, pgrp, session;
    fields >> state >> ppid >> pgrp >> session;
    CHECK(session == std::to_string(child->pid)); // setsid(): leader of its own session

    REQUIRE(send_signal(child->pidfd.get(), SIGTERM));
    auto status = wait_for_exit(child->pidfd.get());
    REQUIRE(status);
    CHECK(status->kind == ExitStatus::Kind::killed);
    CHECK(status->code == SIGTERM);
    CHECK_FALSE(send_signal(child->pidfd.get(), SIGTERM)); // reaped: refused, never a recycled pid
}

TEST_CASE("process: attach refuses a pid whose start time differs, accepts the right one")
{
    auto child = spawn({.argv = {"sleep", "100"}});
    REQUIRE(child);
    auto start = read_start_time(child->pid);
    REQUIRE(start);
    CHECK(*start == child->start_time);

    auto wrong = attach(child->pid, child->start_time + 1);
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error().message.find("another process") != std::string::npos);

    auto right = attach(child->pid, child->start_time);
    REQUIRE(right);
    REQUIRE(send_signal(right->pidfd.get(), SIGKILL));
    auto status = wait_for_exit(child->pidfd.get());
    REQUIRE(status);
    CHECK(status->kind == ExitStatus::Kind::killed);
    CHECK(status->code == SIGKILL);
    CHECK_FALSE(attach(child->pid, child->start_time)); // gone (or someone else now)
}

TEST_CASE("process: an attached process that is not our child ends with status unknown")
{
    Pipe p;
    // sleep is the shell's child, not ours; the shell reaps it, so nothing is left behind.
    auto shell = spawn({.argv = {"sh", "-c", "sleep 100 3>&- & echo $! >&3; exec 3>&-; wait $!"},
                        .keep_fds = {{p.write.get(), 3}}});
    REQUIRE(shell);
    p.write.reset();
    pid_t grandchild = std::atoi(read_all(p.read.get()).c_str());
    REQUIRE(grandchild > 0);

    auto start = read_start_time(grandchild);
    REQUIRE(start);
    auto sleeper = attach(grandchild, *start);
    REQUIRE(sleeper);
    auto running = try_reap(sleeper->pidfd.get());
    REQUIRE(running);
    CHECK_FALSE(running->has_value());
    REQUIRE(send_signal(sleeper->pidfd.get(), SIGKILL));
    auto status = wait_for_exit(sleeper->pidfd.get());
    REQUIRE(status);
    CHECK(status->kind == ExitStatus::Kind::unknown);
    auto shell_status = wait_for_exit(shell->pidfd.get());
    REQUIRE(shell_status);
    CHECK(shell_status->code == 128 + SIGKILL); // the shell saw its sleep killed
}

TEST_CASE("process: a program that cannot be started is an error from spawn, not an exit status")
{
    auto missing = spawn({.argv = {"rescuevm-no-such-program"}});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find("not found in PATH") != std::string::npos);

    auto bad_path = spawn({.argv = {"/nonexistent/qemu"}});
    REQUIRE_FALSE(bad_path);
    CHECK(bad_path.error().message.find("execve: No such file or directory") != std::string::npos);

    auto bad_fd = spawn({.argv = {"true"}, .keep_fds = {{0, 2}}});
    REQUIRE_FALSE(bad_fd);
    CHECK(bad_fd.error().message.find("3 or more") != std::string::npos);
}

TEST_CASE("process: read_start_time parses field 22 after a command name with spaces and parentheses")
{
    char dir[] = "/tmp/rescuevm-proc-XXXXXX";
    REQUIRE(::mkdtemp(dir));
    std::string pid_dir = std::string(dir) + "/4242";
    REQUIRE(::mkdir(pid_dir.c_str(), 0700) == 0);
    std::ofstream(pid_dir + "/stat")
        << "4242 (qemu (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10\n";
    auto start = read_start_time(4242, dir);
    REQUIRE(start);
    CHECK(*start == 987654u);
    ::unlink((pid_dir + "/stat").c_str());
    ::rmdir(pid_dir.c_str());
    ::rmdir(dir);
}
