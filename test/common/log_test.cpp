// Durations in log lines read as people write them.
#include "mrkv/common/log.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using mrkv::log::duration;

TEST_SUITE("common") {
  TEST_CASE("durations are written with their unit and at most three significant digits") {
    CHECK(duration(10s) == "10 s");
    CHECK(duration(1500ms) == "1.5 s");
    CHECK(duration(250ms) == "250 ms");
    CHECK(duration(std::chrono::microseconds(420)) == "0.42 ms");
    CHECK(duration(std::chrono::nanoseconds(12'345'678)) == "12.3 ms");
    CHECK(duration(0ns) == "0 ms");
    CHECK(duration(60s) == "1 min");
    CHECK(duration(125s) == "2 min 5 s");
    CHECK(duration(-250ms) == "-250 ms");
  }
}
