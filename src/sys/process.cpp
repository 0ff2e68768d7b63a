// SPDX-License-Identifier: GPL-2.0-or-later
// Process implementation: fork + pidfd_open, fd allow-list via dup2 + close_range, reaping via waitid(P_PIDFD).
#include "rescuevm/sys/process.h"

#include "rescuevm/sys/files.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

// glibc 2.36 declares these without C linkage (no __BEGIN_DECLS in sys/pidfd.h).
extern "C" {
#include <sys/pidfd.h>
}

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>

extern char **environ;

namespace rescuevm {

namespace {

// glibc 2.36 does not name it yet.
constexpr idtype_t kIdPidfd = static_cast<idtype_t>(3);

// Steps the child can fail at, reported through the exec-error pipe.
constexpr const char *kChildSteps[] = {"setsid", "moving fds", "dup2", "close_range", "execve"};

struct ChildFailure {
    int step;
    int err;
};

[[noreturn]] void child_fail(int pipe_fd, int step, int err)
{
    ChildFailure failure{step, err};
    [[maybe_unused]] ssize_t n = ::write(pipe_fd, &failure, sizeof failure);
    ::_exit(127);
}

// Everything the child needs, prepared before fork: after fork only
// async-signal-safe calls, no allocation.
struct ChildPlan {
    std::string program;
    std::vector<char *> argv;
    std::vector<char *> envp;
    std::vector<int> parent_fds;
    std::vector<int> child_fds;
    std::vector<int> temp_fds;   // filled in by the child
    std::vector<int> keep_sorted; // child_fds sorted
    int stdio[3] = {-1, -1, -1};
    int base = 3;                 // first fd above every fd involved
    bool new_session = true;
    int umask = -1;
};

[[noreturn]] void run_child(ChildPlan &plan, int err_pipe)
{
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig)
        ::sigaction(sig, &dfl, nullptr); // SIGKILL/SIGSTOP fail harmlessly
    sigset_t empty;
    sigemptyset(&empty);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);

    if (plan.new_session && ::setsid() < 0)
        child_fail(err_pipe, 0, errno);
    if (plan.umask >= 0)
        ::umask(static_cast<mode_t>(plan.umask));

    // Move every source fd above all targets first, so no dup2 clobbers a source.
    int pipe_hi = ::fcntl(err_pipe, F_DUPFD_CLOEXEC, plan.base);
    if (pipe_hi < 0)
        child_fail(err_pipe, 1, errno);
    err_pipe = pipe_hi;
    int stdio_hi[3];
    for (int i = 0; i < 3; ++i)
        if ((stdio_hi[i] = ::fcntl(plan.stdio[i], F_DUPFD, plan.base)) < 0)
            child_fail(err_pipe, 1, errno);
    for (std::size_t i = 0; i < plan.parent_fds.size(); ++i)
        if ((plan.temp_fds[i] = ::fcntl(plan.parent_fds[i], F_DUPFD, plan.base)) < 0)
            child_fail(err_pipe, 1, errno);

    for (int i = 0; i < 3; ++i)
        if (::dup2(stdio_hi[i], i) < 0)
            child_fail(err_pipe, 2, errno);
    for (std::size_t i = 0; i < plan.child_fds.size(); ++i)
        if (::dup2(plan.temp_fds[i], plan.child_fds[i]) < 0)
            child_fail(err_pipe, 2, errno);

    // Close every fd >= 3 except the targets and the error pipe (closed by exec).
    unsigned lo = 3;
    auto close_below = [&](unsigned keep) {
        if (keep > lo && ::close_range(lo, keep - 1, 0) < 0)
            child_fail(err_pipe, 3, errno);
        lo = keep + 1;
    };
    for (int fd : plan.keep_sorted)
        close_below(static_cast<unsigned>(fd));
    close_below(static_cast<unsigned>(err_pipe));
    if (::close_range(lo, ~0U, 0) < 0)
        child_fail(err_pipe, 3, errno);

    ::execve(plan.program.c_str(), plan.argv.data(), plan.envp.data());
    child_fail(err_pipe, 4, errno);
}

std::vector<std::string> build_environment(const std::vector<std::string> &env_set, bool clear)
{
    std::vector<std::string> env;
    if (clear)
        return env_set;
    auto key_of = [](const std::string &entry) { return entry.substr(0, entry.find('=')); };
    for (char **e = environ; e && *e; ++e) {
        std::string entry(*e);
        bool replaced = std::any_of(env_set.begin(), env_set.end(),
                                    [&](const std::string &s) { return key_of(s) == key_of(entry); });
        if (!replaced)
            env.push_back(std::move(entry));
    }
    env.insert(env.end(), env_set.begin(), env_set.end());
    return env;
}

Result<UniqueFd> open_output(const std::string &path)
{
    const std::string target = path.empty() ? "/dev/null" : path;
    UniqueFd fd(::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600));
    if (!fd)
        return fail("spawn: cannot open " + target + " for the child's output: " + errno_text(errno));
    return fd;
}

Result<void> check_mappings(const std::vector<FdMapping> &keep_fds)
{
    for (std::size_t i = 0; i < keep_fds.size(); ++i) {
        const FdMapping &m = keep_fds[i];
        if (m.child_fd < 3 || m.parent_fd < 0)
            return fail("spawn: fd mapping " + std::to_string(m.parent_fd) + " -> " + std::to_string(m.child_fd) +
                        " is invalid: the child fd must be 3 or more");
        for (std::size_t j = 0; j < i; ++j)
            if (keep_fds[j].child_fd == m.child_fd)
                return fail("spawn: two fds are mapped to child fd " + std::to_string(m.child_fd));
        if (::fcntl(m.parent_fd, F_GETFD) < 0)
            return fail("spawn: fd " + std::to_string(m.parent_fd) + " to pass as " + std::to_string(m.child_fd) +
                        " is not open");
    }
    return {};
}

std::string fmt_limit(const std::string &program, std::chrono::milliseconds limit)
{
    return program + " did not finish within " + std::to_string(limit.count() / 1000.0).substr(0, 5) +
           " s and was killed";
}

} // namespace

Result<std::string> find_program(const std::string &name)
{
    if (name.find('/') != std::string::npos)
        return name;
    const char *path = std::getenv("PATH");
    std::istringstream dirs(path && *path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
        struct stat st;
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
            return candidate;
    }
    return fail(name + " not found in PATH (" + (path && *path ? std::string(path) : std::string("the default")) + "): install it or give its full path");
}

std::string ExitStatus::describe() const
{
    switch (kind) {
    case Kind::exited:
        return "exited with status " + std::to_string(code);
    case Kind::killed:
        return "killed by signal " + std::to_string(code) + " (" + ::strsignal(code) + ")";
    case Kind::unknown:
        break;
    }
    return "ended (status unknown: not our child)";
}

Result<ProcessHandle> spawn(const SpawnOptions &options)
{
    if (options.argv.empty())
        return fail("spawn: empty argv");
    RESCUEVM_TRY(check_mappings(options.keep_fds));

    ChildPlan plan;
    plan.program = RESCUEVM_TRY(find_program(options.argv[0]));
    std::vector<std::string> argv = options.argv;
    std::vector<std::string> env = build_environment(options.env_set, options.clear_environment);
    for (auto &a : argv)
        plan.argv.push_back(a.data());
    plan.argv.push_back(nullptr);
    for (auto &e : env)
        plan.envp.push_back(e.data());
    plan.envp.push_back(nullptr);

    UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!devnull)
        return fail("spawn: cannot open /dev/null: " + errno_text(errno));
    UniqueFd out, err, capture_read;
    if (options.capture_output) {
        int capture[2];
        if (::pipe2(capture, O_CLOEXEC) < 0)
            return fail("spawn: pipe2 failed: " + errno_text(errno));
        capture_read.reset(capture[0]);
        out.reset(capture[1]);
        err.reset(::fcntl(out.get(), F_DUPFD_CLOEXEC, 0));
        if (!err)
            return fail("spawn: dup failed: " + errno_text(errno));
    } else {
        out = RESCUEVM_TRY(open_output(options.stdout_path));
        err = RESCUEVM_TRY(open_output(options.stderr_path));
    }
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) < 0)
        return fail("spawn: pipe2 failed: " + errno_text(errno));
    UniqueFd pipe_read(pipe_fds[0]), pipe_write(pipe_fds[1]);

    plan.stdio[0] = devnull.get();
    plan.stdio[1] = out.get();
    plan.stdio[2] = err.get();
    plan.new_session = options.new_session;
    plan.umask = options.umask;
    int highest = std::max({devnull.get(), out.get(), err.get(), pipe_read.get(), pipe_write.get()});
    for (const FdMapping &m : options.keep_fds) {
        plan.parent_fds.push_back(m.parent_fd);
        plan.child_fds.push_back(m.child_fd);
        highest = std::max({highest, m.parent_fd, m.child_fd});
    }
    plan.temp_fds.assign(plan.parent_fds.size(), -1);
    plan.keep_sorted = plan.child_fds;
    std::sort(plan.keep_sorted.begin(), plan.keep_sorted.end());
    plan.base = highest + 1;

    pid_t pid = ::fork();
    if (pid < 0)
        return fail("spawn: fork failed for " + plan.program + ": " + errno_text(errno));
    if (pid == 0)
        run_child(plan, pipe_write.get());

    pipe_write.reset();
    // Race-free: until we reap it, no one else can, so the pid cannot be recycled.
    UniqueFd pidfd(::pidfd_open(pid, 0));
    int pidfd_err = errno;

    ChildFailure failure{};
    ssize_t n;
    do
        n = ::read(pipe_read.get(), &failure, sizeof failure);
    while (n < 0 && errno == EINTR);
    auto abandon = [pid](std::string message) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        return fail(std::move(message));
    };
    if (n == sizeof failure)
        return abandon("spawn: cannot start " + plan.program + ": " + kChildSteps[failure.step] + ": " +
                       errno_text(failure.err));
    if (!pidfd)
        return abandon("spawn: pidfd_open failed for " + plan.program + ": " + errno_text(pidfd_err));

    auto start_time = read_start_time(pid);
    if (!start_time)
        return abandon(start_time.error().message);
    return ProcessHandle{pid, std::move(pidfd), *start_time, std::move(capture_read)};
}

Result<RunResult> run_to_completion(SpawnOptions options, std::chrono::milliseconds limit, std::size_t max_output)
{
    options.capture_output = true;
    options.new_session = true; // a Ctrl-C meant for us must not reach it halfway
    auto child = RESCUEVM_TRY(spawn(options));
    const std::string program = options.argv.at(0);
    RunResult result;
    auto deadline = std::chrono::steady_clock::now() + limit;
    bool output_open = true, timed_out = false;
    char buffer[4096];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            (void)send_signal(child.pidfd.get(), SIGKILL);
            break;
        }
        pollfd fds[2] = {{child.pidfd.get(), POLLIN, 0}, {output_open ? child.output.get() : -1, POLLIN, 0}};
        int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 1000)));
        if (n < 0 && errno != EINTR)
            return fail("poll failed while waiting for " + program + ": " + errno_text(errno));
        if (output_open && (fds[1].revents & (POLLIN | POLLHUP))) {
            ssize_t got = ::read(child.output.get(), buffer, sizeof buffer);
            if (got > 0) {
                result.output.append(buffer, static_cast<std::size_t>(got));
                if (result.output.size() > max_output)
                    result.output.erase(0, result.output.size() - max_output);
            } else if (got == 0 || errno != EINTR) {
                output_open = false;
            }
            continue; // drain the output before looking at the exit
        }
        if (fds[0].revents & POLLIN)
            break;
    }
    siginfo_t info{};
    while (::waitid(kIdPidfd, static_cast<id_t>(child.pidfd.get()), &info, WEXITED) < 0 && errno == EINTR) {
    }
    if (timed_out)
        return fail(fmt_limit(program, limit));
    result.status = info.si_code == CLD_EXITED ? ExitStatus{ExitStatus::Kind::exited, info.si_status}
                                               : ExitStatus{ExitStatus::Kind::killed, info.si_status};
    return result;
}

Result<std::uint64_t> read_start_time(pid_t pid, const std::string &proc_root)
{
    const std::string path = proc_root + "/" + std::to_string(pid) + "/stat";
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line))
        return fail("cannot read " + path + ": the process is gone");
    // comm (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    auto close = line.rfind(')');
    if (close == std::string::npos)
        return fail(path + ": unexpected format (no ')')");
    std::istringstream fields(line.substr(close + 1));
    std::string field;
    for (int number = 3; fields >> field; ++number) {
        if (number == 22) {
            try {
                return std::stoull(field);
            } catch (const std::exception &) {
                break;
            }
        }
    }
    return fail(path + ": no start time in field 22");
}

Result<ProcessHandle> attach(pid_t pid, std::uint64_t expected_start_time)
{
    // pidfd first, then the check: if the pid was recycled before pidfd_open, the
    // start time read afterwards belongs to the newcomer and does not match.
    UniqueFd pidfd(::pidfd_open(pid, 0));
    if (!pidfd)
        return fail("process " + std::to_string(pid) + " is gone (" + errno_text(errno) + ")");
    std::uint64_t start_time = RESCUEVM_TRY(read_start_time(pid));
    if (start_time != expected_start_time)
        return fail("process " + std::to_string(pid) + " started at tick " + std::to_string(start_time) +
                    ", not " + std::to_string(expected_start_time) +
                    ": the pid now belongs to another process; not touching it");
    return ProcessHandle{pid, std::move(pidfd), start_time, UniqueFd{}};
}

Result<void> send_signal(int pidfd, int signo)
{
    if (::pidfd_send_signal(pidfd, signo, nullptr, 0) < 0)
        return fail("cannot send signal " + std::to_string(signo) + " (" + ::strsignal(signo) +
                    ") through pidfd: " + errno_text(errno));
    return {};
}

Result<std::optional<ExitStatus>> try_reap(int pidfd)
{
    siginfo_t info{};
    if (::waitid(kIdPidfd, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG) < 0) {
        if (errno != ECHILD)
            return fail("waitid on pidfd failed: " + errno_text(errno));
        // Not our child (re-attached): the pidfd turns readable when it ends.
        pollfd p{pidfd, POLLIN, 0};
        int r = ::poll(&p, 1, 0);
        if (r < 0)
            return fail("poll on pidfd failed: " + errno_text(errno));
        if (r > 0 && (p.revents & POLLIN))
            return ExitStatus{ExitStatus::Kind::unknown, 0};
        return std::optional<ExitStatus>{};
    }
    if (info.si_pid == 0)
        return std::optional<ExitStatus>{};
    if (info.si_code == CLD_EXITED)
        return ExitStatus{ExitStatus::Kind::exited, info.si_status};
    return ExitStatus{ExitStatus::Kind::killed, info.si_status};
}

} // namespace rescuevm
