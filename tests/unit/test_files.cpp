// SPDX-License-Identifier: GPL-2.0-or-later
// sys/files: bounded reads that refuse what is not a regular file, atomic writes that keep the old file, the instance lock.
#include "rescuevm/sys/files.h"

#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace rescuevm;

namespace {

struct TempDir {
    fs::path path;
    TempDir()
    {
        char t[] = "/tmp/rescuevm-files-XXXXXX";
        path = ::mkdtemp(t);
    }
    ~TempDir() { fs::remove_all(path); }
};

std::string slurp(const fs::path &p)
{
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

TEST_CASE("read_small_file: a missing file is nullopt, a FIFO and a directory are refused at once, a big file is refused")
{
    TempDir d;
    CHECK_FALSE(read_small_file((d.path / "none").string(), "x").value().has_value());
    std::string fifo = (d.path / "fifo").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto start = std::chrono::steady_clock::now();
    auto r = read_small_file(fifo, "config " + fifo);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2)); // no writer: it must not wait
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("is not a regular file") != std::string::npos);
    CHECK_FALSE(read_small_file(d.path.string(), "dir").has_value());
    std::ofstream(d.path / "big") << std::string(2048, 'x');
    auto big = read_small_file((d.path / "big").string(), "big", 1024);
    REQUIRE_FALSE(big.has_value());
    CHECK(big.error().message.find("larger than") != std::string::npos);
    CHECK(*read_small_file((d.path / "big").string(), "big", 4096).value() == std::string(2048, 'x'));
}

TEST_CASE("write_file_atomic: replaces with the mode asked; a failed write keeps the old file and leaves no temp file")
{
    TempDir d;
    std::string f = (d.path / "qemu.json").string();
    REQUIRE(write_file_atomic(f, "first\n", 0600));
    struct stat st {};
    REQUIRE(::stat(f.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(slurp(f) == "first\n");
    // A file-size limit makes the write fail halfway, as a full file system does.
    struct rlimit old {};
    ::getrlimit(RLIMIT_FSIZE, &old);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    auto r = write_file_atomic(f, std::string(100000, 'y'), 0600);
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("the previous version is kept") != std::string::npos);
    CHECK(slurp(f) == "first\n");
    CHECK(std::distance(fs::directory_iterator(d.path), fs::directory_iterator()) == 1);
}

TEST_CASE("lock_instance: a second holder is refused, naming the first one's pid; released with its fd")
{
    TempDir d;
    std::string lock = (d.path / "agent.lock").string();
    auto first = lock_instance(lock, "the agent of " + d.path.string());
    REQUIRE(first.has_value());
    // flock locks belong to open file descriptions: a second open is a second holder.
    auto second = lock_instance(lock, "the agent of " + d.path.string());
    REQUIRE_FALSE(second.has_value());
    CHECK(second.error().message.find("is already held by pid " + std::to_string(::getpid())) != std::string::npos);
    first->reset();
    CHECK(lock_instance(lock, "x").has_value());
}
