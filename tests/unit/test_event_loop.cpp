// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of EventLoop: timers, fd readiness, removal during dispatch, signals.
#include "rescuevm/sys/event_loop.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

using namespace rescuevm;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<EventLoop> make_loop()
{
    auto loop = EventLoop::create();
    REQUIRE(loop);
    auto l = std::move(*loop);
    // A test that hangs fails instead: run() returns 99.
    l->add_timer(5s, [raw = l.get()] { raw->quit(99); });
    return l;
}

struct Pipe {
    UniqueFd read, write;
    Pipe()
    {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
        read.reset(fds[0]);
        write.reset(fds[1]);
    }
};

} // namespace

TEST_CASE("event loop: timers fire in deadline order, ties in the order added")
{
    auto loop = make_loop();
    std::vector<std::string> fired;
    loop->add_timer(30ms, [&] { fired.push_back("30ms"); loop->quit(0); });
    loop->add_timer(10ms, [&] { fired.push_back("10ms"); });
    loop->add_timer(0ms, [&] { fired.push_back("0ms-a"); });
    loop->add_timer(0ms, [&] { fired.push_back("0ms-b"); });
    loop->add_timer(20ms, [&] { fired.push_back("20ms"); });
    CHECK(loop->run() == 0);
    CHECK(fired == std::vector<std::string>{"0ms-a", "0ms-b", "10ms", "20ms", "30ms"});
}

TEST_CASE("event loop: a cancelled timer never fires, even when cancelled by a timer due in the same round")
{
    auto loop = make_loop();
    std::vector<std::string> fired;
    TimerId later = loop->add_timer(10ms, [&] { fired.push_back("cancelled-early"); });
    TimerId second = 0;
    loop->add_timer(0ms, [&] { fired.push_back("first"); loop->cancel_timer(second); });
    second = loop->add_timer(0ms, [&] { fired.push_back("second"); });
    loop->cancel_timer(later);
    loop->add_timer(30ms, [&] { loop->quit(0); });
    CHECK(loop->run() == 0);
    CHECK(fired == std::vector<std::string>{"first"});
    CHECK(loop->timer_count() == 1); // only the guard timer is left
}

TEST_CASE("event loop: a 0 ms timer added by a timer callback runs in a later round")
{
    auto loop = make_loop();
    int rounds = 0;
    std::function<void()> again = [&] {
        if (++rounds < 100)
            loop->add_timer(0ms, again);
        else
            loop->quit(0);
    };
    loop->add_timer(0ms, again);
    CHECK(loop->run() == 0);
    CHECK(rounds == 100);
}

TEST_CASE("event loop: an fd callback runs when the fd is readable, with EPOLLIN")
{
    auto loop = make_loop();
    Pipe p;
    std::uint32_t seen = 0;
    std::string data;
    auto id = loop->add_fd(p.read.get(), EPOLLIN, [&](std::uint32_t revents) {
        seen = revents;
        char buf[16];
        ssize_t n = ::read(p.read.get(), buf, sizeof buf);
        data.assign(buf, static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
        loop->quit(0);
    });
    REQUIRE(id);
    loop->add_timer(10ms, [&] { REQUIRE(::write(p.write.get(), "hi", 2) == 2); });
    CHECK(loop->run() == 0);
    CHECK((seen & EPOLLIN) != 0);
    CHECK(data == "hi");
}

TEST_CASE("event loop: modify_fd switches the events watched")
{
    auto loop = make_loop();
    Pipe p;
    int writable = 0;
    WatchId id = 0;
    auto added = loop->add_fd(p.write.get(), 0, [&](std::uint32_t revents) {
        if (revents & EPOLLOUT)
            ++writable;
        loop->remove_fd(id);
        loop->quit(0);
    });
    REQUIRE(added);
    id = *added;
    loop->add_timer(10ms, [&] { REQUIRE(loop->modify_fd(id, EPOLLOUT)); });
    CHECK(loop->run() == 0);
    CHECK(writable == 1);
    CHECK_FALSE(loop->modify_fd(id, EPOLLIN)); // removed: an error, not a crash
}

TEST_CASE("event loop: an fd removed by another callback of the same batch gets no call")
{
    auto loop = make_loop();
    Pipe a, b;
    REQUIRE(::write(a.write.get(), "x", 1) == 1);
    REQUIRE(::write(b.write.get(), "x", 1) == 1);
    int calls = 0;
    WatchId id_a = 0, id_b = 0;
    // Both are ready in one epoll_wait batch; whichever runs first removes and closes the other.
    id_a = *loop->add_fd(a.read.get(), EPOLLIN, [&](std::uint32_t) {
        ++calls;
        loop->remove_fd(id_b);
        b.read.reset();
        loop->remove_fd(id_a); // its own watch, while running
    });
    id_b = *loop->add_fd(b.read.get(), EPOLLIN, [&](std::uint32_t) {
        ++calls;
        loop->remove_fd(id_a);
        a.read.reset();
        loop->remove_fd(id_b);
    });
    loop->add_timer(30ms, [&] { loop->quit(0); });
    CHECK(loop->run() == 0);
    CHECK(calls == 1);
}

TEST_CASE("event loop: a watched signal raised in the process reaches the callback through signalfd")
{
    std::vector<int> got;
    {
        auto loop = make_loop();
        REQUIRE(loop->watch_signals({SIGUSR1, SIGUSR2}, [&](int signo) {
            got.push_back(signo);
            if (got.size() == 2)
                loop->quit(0);
        }));
        sigset_t current;
        ::sigprocmask(SIG_BLOCK, nullptr, &current);
        CHECK(sigismember(&current, SIGUSR1) == 1); // blocked: no default action, no handler race
        ::raise(SIGUSR2);
        ::raise(SIGUSR1);
        CHECK(loop->run() == 0);
    }
    CHECK(got.size() == 2);
    CHECK(std::find(got.begin(), got.end(), SIGUSR1) != got.end());
    CHECK(std::find(got.begin(), got.end(), SIGUSR2) != got.end());
    sigset_t after;
    ::sigprocmask(SIG_BLOCK, nullptr, &after);
    CHECK(sigismember(&after, SIGUSR1) == 0); // the destroyed loop unblocked what it blocked
}

TEST_CASE("event loop: quit before run makes run return the code at once")
{
    auto loop = make_loop();
    loop->quit(3);
    CHECK(loop->run() == 3);
}
