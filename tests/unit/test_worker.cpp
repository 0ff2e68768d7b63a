// SPDX-License-Identifier: GPL-2.0-or-later
// Worker: blocking jobs finish in the loop's thread; a job past its deadline fails at once and its late result is handed to `abandoned`.
#include "rescuevm/sys/worker.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace rescuevm;
using namespace std::chrono_literals;

TEST_CASE("worker: a job's result arrives in the loop; a stuck job times out without blocking the loop, then is abandoned")
{
    auto loop = EventLoop::create();
    REQUIRE(loop);
    Worker worker(**loop);
    REQUIRE(worker.start());
    std::thread::id loop_thread = std::this_thread::get_id();
    int done = 0;
    std::string quick, slow_error;
    int abandoned_value = 0;
    std::atomic<bool> release{false};
    worker.run<std::string>(
        "quick job", 5s, [] { return Result<std::string>(std::string("answer")); },
        [&](Result<std::string> r) {
            CHECK(std::this_thread::get_id() == loop_thread);
            quick = r ? *r : r.error().message;
            ++done;
        });
    worker.run<int>(
        "stuck read", 200ms,
        [&release]() -> Result<int> {
            while (!release) // a read stuck in the kernel
                std::this_thread::sleep_for(10ms);
            return 42;
        },
        [&](Result<int> r) {
            CHECK_FALSE(r.has_value());
            slow_error = r.error().message;
            ++done;
            release = true; // the thread may finish now; its result must go to `abandoned`
        },
        [&](int &&late) { abandoned_value = late; });
    int ticks = 0;
    // The loop keeps turning while the job is stuck: a timer firing every 20 ms proves it.
    std::function<void()> tick = [&] {
        ++ticks;
        if (abandoned_value == 0)
            (*loop)->add_timer(20ms, tick);
        else
            (*loop)->quit(0);
    };
    (*loop)->add_timer(20ms, tick);
    (*loop)->add_timer(5s, [&] { (*loop)->quit(1); });
    CHECK((*loop)->run() == 0);
    CHECK(quick == "answer");
    CHECK(slow_error.find("stuck read did not finish within 0.2 s") != std::string::npos);
    CHECK(done == 2);
    CHECK(abandoned_value == 42);
    CHECK(ticks >= 5);
    CHECK(worker.running() == 0);
}
