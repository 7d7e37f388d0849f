#include "mrkv/bench/histogram.hpp"

#include <doctest/doctest.h>

using namespace std::chrono;

TEST_SUITE("bench") {
  TEST_CASE("histogram percentiles stay within the bucket precision") {
    mrkv::bench::histogram h;
    for (int i = 1; i <= 100000; ++i) h.record(microseconds(i));  // 1 us .. 100 ms, uniform
    CHECK(h.count() == 100000);
    auto near = [](nanoseconds got, double want_us) {
      double us = static_cast<double>(got.count()) / 1000.0;
      return us >= want_us * 0.999 && us <= want_us * 1.02;
    };
    CHECK(near(h.percentile(0.5), 50000));
    CHECK(near(h.percentile(0.99), 99000));
    CHECK(near(h.percentile(0.999), 99900));
    CHECK(h.percentile(1.0) == microseconds(100000));
    CHECK(h.max() == microseconds(100000));
    CHECK(near(h.mean(), 50000.5));

    mrkv::bench::histogram small;
    small.record(nanoseconds(5));
    small.record(nanoseconds(7));
    CHECK(small.percentile(0.5) == nanoseconds(5));  // exact below 64 ns
    h.merge(small);
    CHECK(h.count() == 100002);
    CHECK(mrkv::bench::histogram{}.percentile(0.5) == nanoseconds(0));
  }
}
