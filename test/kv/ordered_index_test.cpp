// The store shards' ordered index (kv/ordered_index.hpp) against std::set: random inserts and erases
// across many block splits and merges keep byte order, visits start where they are told, and the
// index costs a bounded number of bytes per key.
#include "mrkv/kv/ordered_index.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <list>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace mrkv::kv {
namespace {

using entry = std::pair<const std::string, int>;

struct by_bytes {
  bool operator()(const std::string& a, const std::string& b) const { return unsigned_less(a, b); }
};

std::vector<std::string> visited(const ordered_index<entry>& index, std::string_view from, bool exclusive,
                                 std::size_t at_most = static_cast<std::size_t>(-1)) {
  std::vector<std::string> keys;
  index.visit_from(from, exclusive, [&](const entry* e) {
    keys.push_back(e->first);
    return keys.size() < at_most;
  });
  return keys;
}

TEST_SUITE("kv") {

TEST_CASE("ordered index: byte order with unsigned bytes, inclusive and exclusive starts") {
  std::list<entry> nodes;
  ordered_index<entry> index;
  for (const char* k : {"b", "", "a", "\xc3\xa9", "B", "ab", "a\x01"}) index.insert(&nodes.emplace_back(k, 0));
  CHECK(index.size() == 7);
  CHECK(visited(index, "", false) == std::vector<std::string>{"", "B", "a", "a\x01", "ab", "b", "\xc3\xa9"});
  CHECK(visited(index, "", true) == std::vector<std::string>{"B", "a", "a\x01", "ab", "b", "\xc3\xa9"});
  CHECK(visited(index, "a", false, 2) == std::vector<std::string>{"a", "a\x01"});
  CHECK(visited(index, "a", true, 2) == std::vector<std::string>{"a\x01", "ab"});
  CHECK(visited(index, "aa", false) == std::vector<std::string>{"ab", "b", "\xc3\xa9"});
  CHECK(visited(index, "\xff", false).empty());
  entry stranger("a", 0);  // same key, another entry: not the one indexed
  CHECK(!index.erase(&stranger));
  CHECK(index.erase(&nodes.front()));  // "b"
  CHECK(!index.erase(&nodes.front()));
  CHECK(visited(index, "ab", true) == std::vector<std::string>{"\xc3\xa9"});
}

TEST_CASE("ordered index: random inserts and erases through many splits and merges match std::set") {
  std::mt19937_64 rng(13);
  std::map<std::string, entry, by_bytes> nodes;  // owns the entries; addresses are stable
  std::set<std::string, by_bytes> model;
  ordered_index<entry> index;
  auto check_all = [&] {
    REQUIRE(index.size() == model.size());
    CHECK(visited(index, "", false) == std::vector<std::string>(model.begin(), model.end()));
  };
  // Grow to 20,000 keys (some 60 blocks), shrink to 500 (merges), grow again.
  for (const auto& [target, erase_share] : {std::pair{20'000u, 0.2}, std::pair{500u, 0.95}, std::pair{5'000u, 0.3}}) {
    while (model.size() != target) {
      const bool grow = model.size() < target;
      if ((grow && std::uniform_real_distribution<>(0, 1)(rng) >= erase_share) || model.empty()) {
        std::string key = "k" + std::to_string(rng() % 100'000);
        if (model.insert(key).second) {
          auto& node = nodes.try_emplace(key, key, 0).first->second;
          index.insert(&node);
        }
      } else {
        auto it = model.lower_bound("k" + std::to_string(rng() % 100'000));
        if (it == model.end()) it = model.begin();
        REQUIRE(index.erase(&nodes.at(*it)));
        nodes.erase(*it);
        model.erase(it);
      }
    }
    check_all();
    // Starts at, between and past keys, both ways.
    for (int probe = 0; probe < 200; ++probe) {
      std::string from = "k" + std::to_string(rng() % 100'000);
      const bool exclusive = probe % 2 == 1;
      auto it = exclusive ? model.upper_bound(from) : model.lower_bound(from);
      std::vector<std::string> expected;
      for (; it != model.end() && expected.size() < 700; ++it) expected.push_back(*it);
      CHECK(visited(index, from, exclusive, 700) == expected);
    }
  }
  // 8 bytes a pointer, in blocks kept mostly full by passing entries to neighbours before splitting.
  const double per_key = static_cast<double>(index.heap_bytes()) / static_cast<double>(index.size());
  MESSAGE("ordered index: " << per_key << " bytes per key over " << index.size() << " random keys");
  CHECK(per_key <= 12.0);
}

TEST_CASE("ordered index: keys that arrive in order (the bench's key:0, key:1, ...) fill their blocks") {
  std::list<entry> nodes;
  ordered_index<entry> index;
  for (int i = 0; i < 200'000; ++i) index.insert(&nodes.emplace_back("key:" + std::to_string(i), i));
  std::vector<std::string> expected;
  for (const auto& n : nodes) expected.push_back(n.first);
  std::sort(expected.begin(), expected.end(), by_bytes{});
  CHECK(visited(index, "", false) == expected);
  // Splits alone would leave a trail of half-full blocks here: 16 bytes a key.
  const double per_key = static_cast<double>(index.heap_bytes()) / static_cast<double>(index.size());
  MESSAGE("ordered index: " << per_key << " bytes per key over " << index.size() << " keys inserted in order");
  CHECK(per_key <= 10.0);
}

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::kv
