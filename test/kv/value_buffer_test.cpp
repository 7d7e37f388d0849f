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
  value_buffer b = a;
  CHECK(b.view().data() == a.view().data());
  value_buffer moved = std::move(a);
  CHECK(moved.view() == "hello");
  CHECK(a.view().empty());  // NOLINT(bugprone-use-after-move): a moved-from handle is empty
  b = value_buffer();
  CHECK(moved.view() == "hello");
  const std::string large(value_buffer::largest_inline + 1, 'L');
  CHECK(value_buffer::copy_of(large).view() == large);
  CHECK(value_buffer::copy_of(large).capacity() == large.size());
}

TEST_CASE("value_buffer: appends grow geometrically and every earlier prefix stays readable") {
  value_buffer v;
  CHECK(v.append("") == nullptr);
  CHECK(v.append("ab") == nullptr);  // into an empty handle: a new block
  CHECK(v.view() == "ab");
  const std::size_t room = v.capacity();  // a small value gets at least a pointer's worth of room
  CHECK(room >= 2);
  std::string expected = "ab";
  while (v.size() < room) {
    CHECK(v.append("x") == nullptr);  // in place
    expected += "x";
  }
  value_buffer reply = v;  // what a cached append reply keeps
  const std::size_t reply_length = v.size();
  auto left = v.append("cd");  // past the inline room: out to a buffer of its own, nothing to free
  expected += "cd";
  CHECK(left == nullptr);
  CHECK(v.view() == expected);
  CHECK(v.capacity() >= 2 * room);
  CHECK(reply.view().substr(0, reply_length) == expected.substr(0, reply_length));
  for (int i = 0; i < 1000; ++i) {
    const std::string piece = std::to_string(i);
    value_buffer before = v;
    const std::size_t length = v.size();
    v.append(piece);  // whatever buffer it leaves is freed here, and `before` still reads its prefix
    expected += piece;
    CHECK(before.view().substr(0, length) == expected.substr(0, length));
  }
  CHECK(v.view() == expected);
  CHECK(v.capacity() < 2 * expected.size());
  CHECK(reply.view() == expected);  // one block: a holder sees the value as it is now
}

TEST_CASE("value_buffer: a large value that outgrows its buffer hands the old one back") {
  const std::string large(1000, 'L');
  value_buffer v = value_buffer::copy_of(large);
  auto left = v.append("more");
  CHECK(left != nullptr);
  CHECK(v.view() == large + "more");
  CHECK(v.capacity() == 2000);
}

}  // TEST_SUITE
