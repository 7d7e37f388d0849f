#include "mrkv/http/endpoint.hpp"

#include <doctest/doctest.h>

#include <stdexcept>

using namespace mrkv::http;

TEST_SUITE("http") {
  TEST_CASE("host:port forms") {
    auto a = parse_host_port("127.0.0.1:7800");
    CHECK(a.host == "127.0.0.1");
    CHECK(a.port == 7800);
    CHECK(parse_host_port(":0").host == "0.0.0.0");
    CHECK(parse_host_port("[::1]:80").host == "::1");
    CHECK(to_string(parse_host_port("[::1]:80")) == "[::1]:80");
    CHECK_THROWS_AS(parse_host_port("localhost"), std::invalid_argument);
    CHECK_THROWS_AS(parse_host_port("h:99999"), std::invalid_argument);
    CHECK_THROWS_AS(parse_host_port("h:-1"), std::invalid_argument);
    CHECK_THROWS_AS(parse_host_port("::1:80"), std::invalid_argument);
  }

  TEST_CASE("URLs") {
    auto u = parse_url("http://coordinator:7700");
    CHECK(u.scheme == "http");
    CHECK(u.address.host == "coordinator");
    CHECK(u.address.port == 7700);
    CHECK(u.base_path.empty());
    CHECK(parse_url("127.0.0.1:7800/").address.port == 7800);
    CHECK(parse_url("https://example.org/api/").base_path == "/api");
    CHECK(parse_url("https://example.org").address.port == 443);
    CHECK(parse_url("http://[::1]").address.host == "::1");
    CHECK_THROWS_AS(parse_url("ftp://x:1"), std::invalid_argument);
    CHECK_THROWS_AS(parse_url("http://"), std::invalid_argument);
  }
}
