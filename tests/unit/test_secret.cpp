// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of Secret (wiping, no copies, no printing) and of the admin password file checks.
#include "rescuevm/host/admin_password.h"
#include "rescuevm/core/secret.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <type_traits>

using namespace rescuevm;

// A Secret can be neither copied, nor converted to a string, nor formatted.
static_assert(!std::is_copy_constructible_v<Secret>);
static_assert(!std::is_copy_assignable_v<Secret>);
static_assert(std::is_nothrow_move_constructible_v<Secret>);
static_assert(!std::is_convertible_v<Secret, std::string>);
static_assert(!std::is_convertible_v<Secret, std::string_view>);
static_assert(!fmt::is_formattable<Secret>::value);

namespace {

// A private directory for password files, removed at the end of the test.
struct TempDir {
    std::string path;
    TempDir()
    {
        char templ[] = "/tmp/rescuevm-secret-test.XXXXXX";
        REQUIRE(::mkdtemp(templ) != nullptr);
        path = templ;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string file(const std::string &name, const std::string &content, mode_t mode) const
    {
        std::string p = path + "/" + name;
        std::ofstream(p, std::ios::binary) << content;
        REQUIRE(::chmod(p.c_str(), mode) == 0);
        return p;
    }
};

} // namespace

TEST_CASE("Secret holds bytes, describes itself as set/not set, and moves without leaving a copy")
{
    Secret empty;
    CHECK(empty.empty());
    CHECK(std::string(empty.describe()) == "not set");

    Secret s("hunter2");
    CHECK(s.reveal() == "hunter2");
    CHECK(std::string(s.describe()) == "set");

    Secret moved(std::move(s));
    CHECK(moved.reveal() == "hunter2");
    CHECK(s.empty()); // NOLINT: the moved-from Secret is checked on purpose
    CHECK(s.reveal().data() == nullptr);

    Secret assigned;
    assigned = std::move(moved);
    CHECK(assigned.reveal() == "hunter2");
    CHECK(moved.empty());

    std::optional<Secret> none;
    CHECK(std::string(describe(none)) == "not set");
    std::optional<Secret> some(Secret("x"));
    CHECK(std::string(describe(some)) == "set");
}

TEST_CASE("Secret::clear wipes the bytes in place")
{
    Secret s("correct horse battery staple");
    const char *bytes = s.reveal().data();
    std::size_t length = s.size();
    s.clear();
    CHECK(s.empty());
    // clear() keeps the buffer, so it can be inspected: every byte is zero now.
    bool all_zero = true;
    for (std::size_t i = 0; i < length; ++i)
        all_zero = all_zero && bytes[i] == 0;
    CHECK(all_zero);
}

TEST_CASE("Secret keeps its content across growth")
{
    Secret s;
    std::string expected;
    for (int i = 0; i < 500; ++i) {
        char c = static_cast<char>('a' + i % 26);
        s.append(c);
        expected += c;
    }
    CHECK(s.reveal() == expected);
}

TEST_CASE("wipe_memory zeroes a buffer")
{
    char buffer[16] = "sensitive bytes";
    wipe_memory(buffer, sizeof buffer);
    bool all_zero = true;
    for (char c : buffer)
        all_zero = all_zero && c == 0;
    CHECK(all_zero);
}

TEST_CASE("read_admin_password: a missing file means no password")
{
    TempDir dir;
    auto r = read_admin_password(dir.path + "/absent", ::geteuid());
    REQUIRE(r.has_value());
    CHECK_FALSE(r->has_value());
}

TEST_CASE("read_admin_password: a 0600 file of the expected owner is read, one trailing newline stripped")
{
    TempDir dir;
    auto r = read_admin_password(dir.file("pw", "P@ss w\xc3\xb6rd\"\\\n", 0600), ::geteuid());
    REQUIRE(r.has_value());
    REQUIRE(r->has_value());
    CHECK((*r)->reveal() == "P@ss w\xc3\xb6rd\"\\");

    auto bare = read_admin_password(dir.file("bare", "nonewline", 0400), ::geteuid());
    REQUIRE(bare.has_value());
    CHECK((*bare)->reveal() == "nonewline");
}

TEST_CASE("read_admin_password refuses a file readable by others, naming the file, mode and fix")
{
    TempDir dir;
    std::string path = dir.file("pw", "secret-value\n", 0644);
    auto r = read_admin_password(path, ::geteuid());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find(path) != std::string::npos);
    CHECK(r.error().message.find("0644") != std::string::npos);
    CHECK(r.error().message.find("chmod 600 " + path) != std::string::npos);
    CHECK(r.error().message.find("secret-value") == std::string::npos);

    CHECK_FALSE(read_admin_password(dir.file("g", "x\n", 0640), ::geteuid()).has_value());
    CHECK_FALSE(read_admin_password(dir.file("o", "x\n", 0602), ::geteuid()).has_value());
}

TEST_CASE("read_admin_password refuses a file of another owner")
{
    TempDir dir;
    std::string path = dir.file("pw", "secret-value\n", 0600);
    uid_t other = ::geteuid() + 1;
    auto r = read_admin_password(path, other);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find(fmt::format("owned by uid {}", ::geteuid())) != std::string::npos);
    CHECK(r.error().message.find("chown") != std::string::npos);
}

TEST_CASE("read_admin_password refuses a symlink, even to a good file")
{
    TempDir dir;
    std::string target = dir.file("pw", "secret-value\n", 0600);
    std::string link = dir.path + "/link";
    REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
    auto r = read_admin_password(link, ::geteuid());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("symbolic link") != std::string::npos);
}

TEST_CASE("read_admin_password refuses what is not a regular file")
{
    TempDir dir;
    std::string fifo = dir.path + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto r = read_admin_password(fifo, ::geteuid());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("not a regular file") != std::string::npos);
}

TEST_CASE("read_admin_password refuses empty, over-long, multi-line, NUL, control and non-UTF-8 content")
{
    TempDir dir;
    auto refused = [&](const std::string &content, const std::string &why) {
        auto r = read_admin_password(dir.file("pw" + std::to_string(content.size()) + why.substr(0, 3), content, 0600),
                                     ::geteuid());
        REQUIRE_FALSE(r.has_value());
        INFO(r.error().message);
        CHECK(r.error().message.find(why) != std::string::npos);
    };
    refused("", "empty");
    refused("\n", "empty");
    refused(std::string(kMaxAdminPasswordBytes + 1, 'a'), "longer");
    refused(std::string(kMaxAdminPasswordBytes + 1, 'a') + "\n", "longer");
    refused(std::string(4096, 'a'), "longer");
    refused("two\nlines\n", "line break");
    refused(std::string("nul\0inside", 10), "NUL");
    refused("tab\there", "control character");
    refused("crlf\r\n", "control character");
    refused("bad\xff utf8", "UTF-8");
    refused("\xc0\xaf", "UTF-8"); // overlong '/'

    auto longest = read_admin_password(dir.file("max", std::string(kMaxAdminPasswordBytes, 'b') + "\n", 0600),
                                       ::geteuid());
    REQUIRE(longest.has_value());
    CHECK((*longest)->size() == kMaxAdminPasswordBytes);
}
