// SPDX-License-Identifier: GPL-2.0-or-later
// Child processes held by pidfd: spawn with an fd allow-list, re-attach by pid + start time, signal, reap.
#pragma once

#include "rescuevm/core/error.h"
#include "rescuevm/sys/unique_fd.h"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rescuevm {

// An fd of ours that the child gets at a fixed number (e.g. the macvtap tap fd as 3).
struct FdMapping {
    int parent_fd;
    int child_fd; // >= 3; 0-2 are stdin (/dev/null), stdout and stderr
};

struct SpawnOptions {
    // argv[0] is the program: a path, or a name looked up in PATH before forking.
    std::vector<std::string> argv = {};
    // The environment is inherited; these "KEY=VALUE" entries are added or replace.
    std::vector<std::string> env_set = {};
    // Every other fd (>= 3) is closed in the child.
    std::vector<FdMapping> keep_fds = {};
    // Appended to (O_APPEND, created 0600); empty means /dev/null.
    std::string stdout_path = {};
    std::string stderr_path = {};
    // stdout and stderr both into a pipe: ProcessHandle::output (overrides the paths).
    bool capture_output = false;
    // Start from an empty environment (then env_set): PATH and LC_ALL=C are for the caller to set.
    bool clear_environment = false;
    // The child's umask; -1 leaves ours.
    int umask = -1;
    // setsid(): the child leaves our session and process group, so a Ctrl-C on the
    // agent's terminal or the agent's death does not reach it (no PDEATHSIG either).
    bool new_session = true;
};

// A process we can signal without ever hitting a recycled pid.
struct ProcessHandle {
    pid_t pid = -1;
    UniqueFd pidfd;
    // Field 22 of /proc/<pid>/stat (clock ticks since boot): with pid, identifies
    // the process across an agent restart.
    std::uint64_t start_time = 0;
    UniqueFd output; // SpawnOptions::capture_output: the read end of the child's stdout+stderr
};

struct ExitStatus {
    enum class Kind {
        exited,  // code = exit status
        killed,  // code = signal number
        unknown, // not our child (attached after an agent restart): it ended, how is unknown
    };
    Kind kind = Kind::unknown;
    int code = 0;

    // "exited with status 7", "killed by signal 9 (Killed)", "ended (status unknown)".
    std::string describe() const;
};

// The program `name` would run: itself when it holds a '/', else the first
// executable regular file of that name in PATH (or the standard PATH when unset).
Result<std::string> find_program(const std::string &name);

// Forks and execs; the child gets an empty signal mask and default signal
// dispositions. Exec failures are reported here (not as exit status 127).
Result<ProcessHandle> spawn(const SpawnOptions &options);

// Opens a pidfd for an existing process and checks its start time, so a pid
// reused by an unrelated process is refused.
Result<ProcessHandle> attach(pid_t pid, std::uint64_t expected_start_time);

// Field 22 of <proc_root>/<pid>/stat.
Result<std::uint64_t> read_start_time(pid_t pid, const std::string &proc_root = "/proc");

// pidfd_send_signal(2). A process that already ended is an error (ESRCH).
Result<void> send_signal(int pidfd, int signo);

// What run_to_completion() saw.
struct RunResult {
    ExitStatus status;
    std::string output;  // stdout+stderr, the last max_output bytes
    bool ok() const { return status.kind == ExitStatus::Kind::exited && status.code == 0; }
};

// Spawns with its output captured and waits, blocking, at most `limit`; a child
// still running then is killed (SIGKILL) and reaped, and that is an error naming
// the program. For commands of the CLI and for worker threads: never call it from
// the agent's event loop (see sys/worker.h).
Result<RunResult> run_to_completion(SpawnOptions options, std::chrono::milliseconds limit,
                                    std::size_t max_output = 16384);

// Non-blocking: nullopt while the process runs. Reaps our own child (its exit
// status); for a non-child reports Kind::unknown once the pidfd is readable.
// Wait for EPOLLIN on the pidfd in the EventLoop, then call this.
Result<std::optional<ExitStatus>> try_reap(int pidfd);

} // namespace rescuevm
