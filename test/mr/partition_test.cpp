#include <doctest/doctest.h>

#include <stdexcept>

#include "mrkv/mr/partition.hpp"

using namespace mrkv::mr;

TEST_SUITE("mr") {
  // The vectors of lab-spec A3; constexpr, so a wrong hash fails the build as well as the test.
  static_assert(fnv1a32("") == 0x811c9dc5u);
  static_assert(fnv1a32("a") == 0xe40c292cu);
  static_assert(fnv1a32("foobar") == 0xbf9cf968u);

  TEST_CASE("mr partition: FNV-1a vectors") {
    CHECK(fnv1a32("") == 0x811c9dc5u);
    CHECK(fnv1a32("a") == 0xe40c292cu);
    CHECK(fnv1a32("foobar") == 0xbf9cf968u);
    CHECK(ihash("a") == (0xe40c292cu & 0x7fffffffu));
    CHECK(ihash("foobar") == 0x3f9cf968u);
  }

  TEST_CASE("mr partition: lab buckets with nReduce 10") {
    const char* keys[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    const int expected[] = {2, 9, 0, 5, 6, 3, 4, 3, 4, 1};
    for (int i = 0; i < 10; ++i) {
      CAPTURE(keys[i]);
      CHECK(reduce_bucket(keys[i], 10) == expected[i]);
    }
    // early_exit's two slow keys, as the lab's test passes them.
    CHECK(reduce_bucket("../pg-sherlock_holmes.txt", 10) == 6);
    CHECK(reduce_bucket("../pg-tom_sawyer.txt", 10) == 2);
  }

  TEST_CASE("mr partition: bytes are unsigned and buckets stay in range") {
    // A high byte must be XORed as 0x80..0xff, not sign-extended.
    CHECK(fnv1a32("\xff") == ((0x811c9dc5u ^ 0xffu) * 0x01000193u));
    for (int n : {1, 2, 7, 10, 1000, 2147483647}) {
      const int b = reduce_bucket("\xc3\xa9t\xc3\xa9", n);
      CHECK(b >= 0);
      CHECK(b < n);
    }
    CHECK(reduce_bucket("anything", 1) == 0);
    CHECK_THROWS_AS(reduce_bucket("a", 0), std::invalid_argument);
    CHECK_THROWS_AS(reduce_bucket("a", -3), std::invalid_argument);
  }
}
