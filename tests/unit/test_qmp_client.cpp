// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of QmpClient against a fake QMP server on the other end of a socketpair.
#include "rescuevm/agent/qmp_client.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

using namespace rescuevm;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr const char *kGreeting =
    R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}})";

// The QEMU side: reads the client's lines (and any passed fds) from the loop,
// lets the test answer each command as it arrives.
struct FakeQmp {
    UniqueFd fd;
    std::string input;
    std::vector<json> received;
    std::vector<UniqueFd> received_fds;
    std::function<void(const json &)> on_command;
    WatchId watch_id = 0;
    bool peer_closed = false;

    void send(const std::string &text) { REQUIRE(::write(fd.get(), text.data(), text.size()) == ssize_t(text.size())); }
    void reply(const json &command, const json &value)
    {
        send(json{{"return", value}, {"id", command["id"]}}.dump() + "\r\n");
    }
    void watch(EventLoop &loop)
    {
        auto id = loop.add_fd(fd.get(), EPOLLIN, [this, &loop](std::uint32_t) { read(loop); });
        REQUIRE(id);
        watch_id = *id;
    }
    void read(EventLoop &loop)
    {
        char buf[4096];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
        iovec iov{buf, sizeof buf};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(fd.get(), &msg, MSG_CMSG_CLOEXEC);
        if (n <= 0) {
            peer_closed = true;
            loop.remove_fd(watch_id);
            return;
        }
        for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            int passed;
            std::memcpy(&passed, CMSG_DATA(c), sizeof passed);
            received_fds.emplace_back(passed);
        }
        input.append(buf, static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = input.find('\n')) != std::string::npos;) {
            json command = json::parse(input.substr(0, nl));
            input.erase(0, nl + 1);
            received.push_back(command);
            if (on_command)
                on_command(command);
        }
    }
};

struct Fixture {
    std::unique_ptr<EventLoop> loop;
    std::unique_ptr<QmpClient> client;
    FakeQmp qemu;
    std::vector<std::string> log; // what the client reported, in order
    int disconnects = 0;
    std::string disconnect_reason;

    explicit Fixture(QmpLimits limits = {})
    {
        auto l = EventLoop::create();
        REQUIRE(l);
        loop = std::move(*l);
        loop->add_timer(5s, [this] { loop->quit(99); }); // a hang fails the test
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) == 0);
        qemu.fd.reset(fds[1]);
        client = std::make_unique<QmpClient>(*loop, limits);
        client->on_ready([this] { log.push_back("ready"); });
        client->on_event([this](const QmpEvent &e) {
            log.push_back("event " + e.name + " " + e.data.dump() + " @" + std::to_string(e.timestamp_us));
        });
        client->on_disconnect([this](const Error &e) {
            ++disconnects;
            disconnect_reason = e.message;
        });
        qemu.watch(*loop);
        client->attach_fd(UniqueFd(fds[0]));
    }

    // Greeting, capabilities, ready; then runs until the loop quits.
    void negotiate_and(std::function<void(const json &)> on_command)
    {
        qemu.on_command = [this, on_command](const json &c) {
            if (c["execute"] == "qmp_capabilities")
                return qemu.reply(c, json::object());
            on_command(c);
        };
        qemu.send(std::string(kGreeting) + "\r\n");
    }

    QmpClient::CommandCallback record(const std::string &label)
    {
        return [this, label](Result<json> r) {
            log.push_back(label + (r ? " ok " + r->dump() : " error: " + r.error().message));
        };
    }
};

} // namespace

TEST_CASE("qmp: greeting, then qmp_capabilities, then ready; a command issued earlier waits for negotiation")
{
    Fixture f;
    f.client->execute("query-status", {}, 1s, f.record("query-status"));
    std::size_t seen_at_capabilities = 99;
    f.qemu.on_command = [&](const json &c) {
        if (c["execute"] == "qmp_capabilities") {
            seen_at_capabilities = f.qemu.received.size();
            f.qemu.reply(c, json::object());
        } else {
            f.qemu.reply(c, {{"status", "prelaunch"}, {"running", false}});
            f.loop->quit(0);
        }
    };
    f.loop->add_timer(20ms, [&] {
        CHECK(f.qemu.received.empty()); // nothing before the greeting
        f.qemu.send(std::string(kGreeting) + "\r\n");
    });
    CHECK(f.loop->run() == 0);
    CHECK(seen_at_capabilities == 1); // query-status was not sent before qmp_capabilities
    REQUIRE(f.qemu.received.size() == 2);
    CHECK(f.qemu.received[0]["execute"] == "qmp_capabilities");
    CHECK(f.qemu.received[1]["execute"] == "query-status");
    CHECK(f.qemu.received[1]["id"].get<std::string>().starts_with("rv-"));
    CHECK_FALSE(f.qemu.received[1].contains("arguments"));
    f.loop->add_timer(10ms, [&] { f.loop->quit(0); });
    f.loop->run();
    CHECK(f.log == std::vector<std::string>{"ready", R"(query-status ok {"running":false,"status":"prelaunch"})"});
    CHECK(f.client->ready());
}

TEST_CASE("qmp: an event arriving before the reply is delivered first, and the reply still finds its command")
{
    Fixture f;
    f.negotiate_and([&](const json &c) {
        f.qemu.send(R"({"timestamp": {"seconds": 1700000000, "microseconds": 123456}, "event": "STOP"})" "\n");
        f.qemu.reply(c, {{"status", "paused"}});
    });
    f.client->on_ready([&] {
        f.log.push_back("ready");
        f.client->execute("query-status", json::object(), 1s, [&](Result<json> r) {
            f.log.push_back("query-status " + (r ? r->dump() : r.error().message));
            f.loop->quit(0);
        });
    });
    CHECK(f.loop->run() == 0);
    CHECK(f.log == std::vector<std::string>{"ready", "event STOP {} @1700000000123456",
                                            R"(query-status {"status":"paused"})"});
}

TEST_CASE("qmp: two commands answered out of order each get their own answer")
{
    Fixture f;
    std::vector<json> held;
    f.negotiate_and([&](const json &c) {
        held.push_back(c);
        if (held.size() == 2) {
            f.qemu.reply(held[1], "second");
            f.qemu.reply(held[0], "first");
        }
    });
    f.client->on_ready([&] {
        f.client->execute("cmd-a", {{"x", 1}}, 1s, f.record("a"));
        f.client->execute("cmd-b", json::object(), 1s, [&](Result<json> r) {
            f.log.push_back("b ok " + r->dump());
        });
    });
    f.loop->add_timer(100ms, [&] { f.loop->quit(0); });
    CHECK(f.loop->run() == 0);
    CHECK(f.log == std::vector<std::string>{"b ok \"second\"", "a ok \"first\""});
    REQUIRE(held.size() == 2);
    CHECK(held[0]["arguments"] == json{{"x", 1}});
    CHECK(held[0]["id"] != held[1]["id"]);
    CHECK(f.client->pending_count() == 0);
}

TEST_CASE("qmp: a command without an answer fails at its deadline; the late answer is ignored")
{
    Fixture f;
    json unanswered;
    f.negotiate_and([&](const json &c) { unanswered = c; });
    f.client->on_ready([&] {
        f.client->execute("query-status", {}, 50ms, [&](Result<json> r) {
            f.log.push_back(r ? "ok" : r.error().message);
            f.qemu.reply(unanswered, "late");
            f.loop->add_timer(30ms, [&] { f.loop->quit(0); });
        });
    });
    CHECK(f.loop->run() == 0);
    CHECK(f.log == std::vector<std::string>{"QMP command query-status got no answer within 50 ms"});
    CHECK(f.client->ready()); // a slow command does not end the connection
    CHECK(f.disconnects == 0);
}

TEST_CASE("qmp: an error reply becomes an Error naming the command, QEMU's description and class")
{
    Fixture f;
    f.negotiate_and([&](const json &c) {
        f.qemu.send(json{{"error", {{"class", "GenericError"}, {"desc", "Could not open '/x.ppm'"}}}, {"id", c["id"]}}
                        .dump() +
                    "\r\n");
    });
    std::string message;
    f.client->execute("screendump", {{"filename", "/x.ppm"}}, 1s, [&](Result<json> r) {
        REQUIRE_FALSE(r);
        message = r.error().message;
        f.loop->quit(0);
    });
    CHECK(f.loop->run() == 0);
    CHECK(message == "QMP command screendump failed: Could not open '/x.ppm' (GenericError)");
}

TEST_CASE("qmp: a line that is not JSON ends the connection: pending commands fail, on_disconnect fires once")
{
    Fixture f;
    f.negotiate_and([&](const json &) { f.qemu.send("this is not json\r\n{\"return\": {}}\r\n"); });
    f.client->on_ready([&] {
        f.client->execute("query-status", {}, 1s, f.record("a"));
        f.client->execute("query-kvm", {}, 1s, f.record("b"));
    });
    f.client->on_disconnect([&](const Error &e) {
        ++f.disconnects;
        f.disconnect_reason = e.message;
        f.client.reset(); // destroying the client from its own callback is allowed
        f.loop->add_timer(20ms, [&] { f.loop->quit(0); });
    });
    CHECK(f.loop->run() == 0);
    CHECK(f.disconnects == 1);
    CHECK(f.disconnect_reason.find("not a JSON object: 'this is not json'") != std::string::npos);
    REQUIRE(f.log.size() == 2);
    CHECK(f.log[0].starts_with("a error: QMP connection closed before query-status was answered"));
    CHECK(f.log[1].starts_with("b error: QMP connection closed before query-kvm was answered"));
}

TEST_CASE("qmp: a partial line followed by EOF fails the pending command")
{
    Fixture f;
    f.negotiate_and([&](const json &) {
        f.qemu.send(R"({"return": {"status": "runn)");
        f.qemu.fd.reset();
    });
    f.client->on_ready([&] { f.client->execute("query-status", {}, 1s, f.record("q")); });
    f.client->on_disconnect([&](const Error &e) {
        f.disconnect_reason = e.message;
        f.loop->quit(0);
    });
    CHECK(f.loop->run() == 0);
    CHECK(f.disconnect_reason.find("in the middle of a message") != std::string::npos);
    REQUIRE(f.log.size() == 1); // on_ready was replaced: only the command's outcome is logged
    CHECK(f.log[0].starts_with("q error: QMP connection closed"));
}

TEST_CASE("qmp: a line longer than the limit ends the connection, with or without its end of line")
{
    for (bool terminated : {false, true}) {
        CAPTURE(terminated);
        Fixture f(QmpLimits{.max_line = 1024, .handshake_timeout = 1s});
        f.negotiate_and([&](const json &) {
            std::string huge = R"({"event": "X", "data": {"s": ")" + std::string(3000, 'a') + R"("}})";
            f.qemu.send(terminated ? huge + "\n" : huge);
        });
        f.client->on_ready([&] { f.client->execute("query-status", {}, 1s, f.record("q")); });
        f.client->on_disconnect([&](const Error &e) {
            f.disconnect_reason = e.message;
            f.loop->quit(0);
        });
        CHECK(f.loop->run() == 0);
        CHECK(f.disconnect_reason == "QMP sent a line longer than 1024 bytes");
        REQUIRE(f.log.size() == 1); // the oversized event was not delivered
        CHECK(f.log[0].starts_with("q error: QMP connection closed"));
    }
}

TEST_CASE("qmp: no greeting within the handshake timeout ends the connection")
{
    Fixture f(QmpLimits{.max_line = 1024, .handshake_timeout = 50ms});
    f.client->on_disconnect([&](const Error &e) {
        f.disconnect_reason = e.message;
        f.loop->quit(0);
    });
    CHECK(f.loop->run() == 0);
    CHECK(f.disconnect_reason.find("did not complete within 50 ms") != std::string::npos);
}

TEST_CASE("qmp: execute while not connected fails from the loop, not inside execute()")
{
    auto loop = EventLoop::create();
    REQUIRE(loop);
    QmpClient client(**loop);
    std::string message;
    client.execute("cont", {}, 1s, [&](Result<json> r) {
        message = r ? "ok" : r.error().message;
        (*loop)->quit(0);
    });
    CHECK(message.empty());
    CHECK((*loop)->run() == 0);
    CHECK(message == "QMP is not connected; cont was not sent");
}

TEST_CASE("qmp: connect retries until QEMU creates its socket, and gives up at the deadline")
{
    char dir[] = "/tmp/rescuevm-qmp-XXXXXX";
    REQUIRE(::mkdtemp(dir));
    std::string path = std::string(dir) + "/qmp.sock";
    auto loop = EventLoop::create();
    REQUIRE(loop);
    EventLoop &l = **loop;
    l.add_timer(5s, [&] { l.quit(99); });

    QmpClient client(l);
    bool ready = false;
    client.on_ready([&] {
        ready = true;
        l.quit(0);
    });
    UniqueFd listener, accepted;
    l.add_timer(80ms, [&] { // QEMU "starts" late
        listener.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strcpy(addr.sun_path, path.c_str());
        REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listener.get(), 1) == 0);
        REQUIRE(l.add_fd(listener.get(), EPOLLIN, [&](std::uint32_t) {
            accepted.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
            std::string greeting = std::string(kGreeting) + "\r\n";
            REQUIRE(::write(accepted.get(), greeting.data(), greeting.size()) > 0);
            REQUIRE(l.add_fd(accepted.get(), EPOLLIN, [&](std::uint32_t) {
                char buf[512];
                ssize_t n = ::read(accepted.get(), buf, sizeof buf);
                REQUIRE(n > 0);
                json c = json::parse(std::string(buf, static_cast<std::size_t>(n)));
                std::string r = json{{"return", json::object()}, {"id", c["id"]}}.dump() + "\r\n";
                REQUIRE(::write(accepted.get(), r.data(), r.size()) > 0);
            }));
        }));
    });
    client.connect(path, 2s);
    CHECK(l.run() == 0);
    CHECK(ready);

    std::string reason;
    QmpClient lost(l);
    lost.on_disconnect([&](const Error &e) {
        reason = e.message;
        l.quit(0);
    });
    lost.connect(std::string(dir) + "/never.sock", 100ms);
    CHECK(l.run() == 0);
    CHECK(reason.find("did not accept a connection in time (No such file or directory)") != std::string::npos);
    client.close();
    ::unlink(path.c_str());
    ::rmdir(dir);
}

TEST_CASE("qmp: execute_with_fd passes the fd with the command (SCM_RIGHTS, for getfd)")
{
    Fixture f;
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    UniqueFd pipe_read(pipe_fds[0]), pipe_write(pipe_fds[1]);
    f.negotiate_and([&](const json &c) { f.qemu.reply(c, json::object()); });
    f.client->on_ready([&] {
        f.client->execute_with_fd("getfd", {{"fdname", "tap0"}}, pipe_write.get(), 1s, [&](Result<json> r) {
            CHECK(r);
            f.loop->quit(0);
        });
        pipe_write.reset(); // the client holds its own duplicate
    });
    CHECK(f.loop->run() == 0);
    REQUIRE(f.qemu.received_fds.size() == 1);
    CHECK(f.qemu.received.back()["arguments"]["fdname"] == "tap0");
    REQUIRE(::write(f.qemu.received_fds[0].get(), "ok", 2) == 2);
    char buf[2];
    CHECK(::read(pipe_read.get(), buf, 2) == 2);
}
