// value_buffer: the store's reference-counted value bytes.
#include "mrkv/kv/value_buffer.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>

using mrkv::kv::value_buffer;

TEST_SUITE("kv") {

TEST_CASE("value_buffer: empty values hold no block; copies share one") {
  value_buffer empty = value_buffer::copy_of("");
  CHECK(empty.view().empty());
  CHECK(empty.capacity() == 0);
  value_buffer a = value_buffer::copy_of("hello");
  CHECK(a.view() == "hello");
  CHECK(a.capacity() == 5);
  value_buffer b = a;
  CHECK(b.view().data() == a.view().data());
  value_buffer moved = std::move(a);
  CHECK(moved.view() == "hello");
  CHECK(a.view().empty());  // NOLINT(bugprone-use-after-move): a moved-from handle is empty
  b = value_buffer();
  CHECK(moved.view() == "hello");
}

TEST_CASE("value_buffer: appends extend in place while they fit and keep every earlier prefix") {
  value_buffer v;
  CHECK(v.append("").view().empty());
  CHECK(v.append("ab").view().empty());  // into an empty handle: a new block, nothing outgrown
  CHECK(v.view() == "ab");
  value_buffer reply = v;  // what a cached append reply keeps
  value_buffer outgrown = v.append("cd");  // needs 4 > capacity 2: moves to a block of 4
  CHECK(v.view() == "abcd");
  CHECK(v.capacity() == 4);
  CHECK(outgrown.view() == "ab");
  CHECK(reply.view() == "ab");
  reply = v;
  CHECK(v.append("efgh").view() == "abcd");  // 8 > 4: twice the capacity
  CHECK(v.capacity() == 8);
  value_buffer shared = v;
  CHECK(v.append("").view().empty());
  CHECK(shared.capacity() == 8);
  std::string expected = "abcdefgh";
  for (int i = 0; i < 1000; ++i) {
    const std::string piece = std::to_string(i);
    value_buffer before = v;
    const std::size_t length = v.size();
    v.append(piece);
    expected += piece;
    CHECK(before.view().substr(0, length) == expected.substr(0, length));
  }
  CHECK(v.view() == expected);
  CHECK(v.capacity() < 2 * expected.size());
}

}  // TEST_SUITE
