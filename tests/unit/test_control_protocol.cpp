// SPDX-License-Identifier: GPL-2.0-or-later
// parse_control_request: every malformed request (issue #12 item 1 and more) is an error naming what is wrong; nothing throws.
#include "rescuevm/core/control_protocol.h"

#include <doctest/doctest.h>

using namespace rescuevm;

namespace {

std::string error_of(const char *text)
{
    auto j = nlohmann::json::parse(text);
    auto r = parse_control_request(j);
    REQUIRE_MESSAGE(!r.has_value(), "accepted: " << text);
    return r.error().message;
}

} // namespace

TEST_CASE("control requests of the wrong shape or type are refused with a sentence, never an exception")
{
    CHECK(error_of(R"({"command":"vm","action":42})").find("\"action\" must be a string") != std::string::npos);
    CHECK(error_of(R"({"command":5})").find("\"command\" must be a string") != std::string::npos);
    CHECK(error_of("[]").find("one JSON object per line") != std::string::npos);
    CHECK(error_of(R"("x")").find("one JSON object per line") != std::string::npos);
    CHECK(error_of("null").find("one JSON object per line") != std::string::npos);
    CHECK(error_of("{}").find("\"command\" is missing") != std::string::npos);
    CHECK(error_of(R"({"command":"reboot-host"})").find("unknown command") != std::string::npos);
    CHECK(error_of(R"({"command":"vm"})").find("\"action\" is missing") != std::string::npos);
    CHECK(error_of(R"({"command":"vm","action":"halt"})").find("unknown VM action") != std::string::npos);
    CHECK(error_of(R"({"command":"vm","action":"screenshot"})").find("\"path\" is missing") != std::string::npos);
    CHECK(error_of(R"({"command":"vm","action":"screenshot","path":"rel.ppm"})").find("absolute") != std::string::npos);
    CHECK(error_of(R"({"command":"vm","action":"screenshot","path":"/a.bmp","format":"bmp"})").find("png or ppm") !=
          std::string::npos);
    CHECK(error_of(R"({"command":"vm","action":"screenshot","path":["/a"]})").find("must be a string") !=
          std::string::npos);
    std::string long_action = R"({"command":"vm","action":")" + std::string(5000, 'a') + "\"}";
    CHECK_FALSE(parse_control_request(nlohmann::json::parse(long_action)).has_value());
}

TEST_CASE("well-formed control requests are parsed into their kind, action, path and format")
{
    auto status = parse_control_request(nlohmann::json::parse(R"({"command":"status"})"));
    REQUIRE(status);
    CHECK(status->kind == ControlRequest::Kind::status);
    auto reset = parse_control_request(nlohmann::json::parse(R"({"command":"vm","action":"reset","extra":1})"));
    REQUIRE(reset);
    CHECK(reset->action == "reset");
    auto shot = parse_control_request(nlohmann::json::parse(R"({"command":"vm","action":"screenshot","path":"/root/s.png"})"));
    REQUIRE(shot);
    CHECK(shot->format == "png");
    auto ppm = parse_control_request(nlohmann::json::parse(R"({"command":"vm","action":"screenshot","path":"/root/s"})"));
    REQUIRE(ppm);
    CHECK(ppm->format == "ppm");
}
