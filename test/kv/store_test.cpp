// The key/value state machine without sockets: semantics, the duplicate table, expiry, accounting, and
// exactly-once under concurrent retries on many threads (this suite also runs under TSan).
#include "mrkv/kv/store.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <string>
#include <thread>
#include <vector>

namespace mrkv::kv {
namespace {

using status = write_result::status;
using namespace std::chrono_literals;

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

TEST_SUITE("kv") {

TEST_CASE("store: get, put and append follow the lab's map") {
  store s;
  CHECK(s.get("missing") == "");
  CHECK(s.put("k", "v1").outcome == status::executed);
  CHECK(s.get("k") == "v1");
  auto r = s.append("k", "+a");
  CHECK(r.outcome == status::executed);
  CHECK(r.old_value == "v1");
  CHECK(s.get("k") == "v1+a");
  CHECK(s.append("new", "x").old_value == "");
  CHECK(s.get("new") == "x");
  s.put("k", "");
  CHECK(s.get("k") == "");
  CHECK(s.get(std::string("nul\0key", 7)) == "");
  s.put(std::string("nul\0key", 7), std::string("a\0b", 3));
  CHECK(s.get(std::string("nul\0key", 7)) == std::string("a\0b", 3));
  CHECK(s.get("nul") == "");
}

TEST_CASE("store: a write without an id runs every time it is sent") {
  store s;
  s.append("k", "x");
  s.append("k", "x");
  CHECK(s.get("k") == "xx");
  CHECK(s.stats().clients == 0);
}

TEST_CASE("store: the latest seq is answered from the table, an older one is refused") {
  store s;
  auto first = s.append("k", "a", request_id{"c1", 1});
  CHECK(first.outcome == status::executed);
  auto again = s.append("k", "a", request_id{"c1", 1});
  CHECK(again.outcome == status::replayed);
  CHECK(again.old_value == "");
  CHECK(s.get("k") == "a");

  CHECK(s.append("k", "b", request_id{"c1", 2}).old_value == "a");
  // Another client writes the key in between; the replay still answers what the first run saw.
  s.append("k", "c", request_id{"c2", 1});
  auto replay = s.append("k", "b", request_id{"c1", 2});
  CHECK(replay.outcome == status::replayed);
  CHECK(replay.old_value == "a");
  CHECK(s.get("k") == "abc");

  auto stale = s.append("k", "z", request_id{"c1", 1});
  CHECK(stale.outcome == status::stale);
  CHECK(stale.latest_seq == 2);
  CHECK_FALSE(stale.answered());
  CHECK(s.get("k") == "abc");

  // Seqs may skip (a clerk whose call timed out moves on); higher always executes.
  CHECK(s.put("k", "p", request_id{"c1", 10}).outcome == status::executed);
  CHECK(s.put("k", "q", request_id{"c1", 10}).outcome == status::replayed);
  CHECK(s.get("k") == "p");
}

TEST_CASE("store: a put's seq reused by an append (or back) is a conflict and changes nothing") {
  store s;
  s.put("k", "v", request_id{"c", 1});
  auto r = s.append("k", "x", request_id{"c", 1});
  CHECK(r.outcome == status::conflict);
  CHECK(r.latest_seq == 1);
  CHECK(s.get("k") == "v");
  s.append("k", "x", request_id{"c", 2});
  CHECK(s.put("k", "y", request_id{"c", 2}).outcome == status::conflict);
  CHECK(s.get("k") == "vx");
}

TEST_CASE("store: a cached append reply survives a put that replaces the value") {
  store s;
  s.put("k", "0123456789");
  CHECK(s.append("k", "!", request_id{"c", 1}).old_value == "0123456789");
  s.put("k", "short", request_id{"other", 1});
  s.append("k", "er", request_id{"other", 2});
  auto replay = s.append("k", "!", request_id{"c", 1});
  CHECK(replay.outcome == status::replayed);
  CHECK(replay.old_value == "0123456789");
  CHECK(s.get("k") == "shorter");
  // The client's next write drops the reference to the replaced value.
  s.put("x", "", request_id{"c", 2});
  CHECK(s.stats().bytes == std::string("kshorterx").size());
}

TEST_CASE("store: get leaves no per-client state; each writing client keeps one entry") {
  store s;
  for (int i = 0; i < 100; ++i) s.get("k" + std::to_string(i));
  CHECK(s.stats().clients == 0);
  for (int i = 0; i < 100; ++i) s.put("k", "v", request_id{"client-" + std::to_string(i), 1});
  for (int seq = 2; seq < 10; ++seq) s.append("k", "v", request_id{"client-0", static_cast<std::uint64_t>(seq)});
  CHECK(s.stats().clients == 100);
}

TEST_CASE("store: stats count keys and bytes") {
  store s;
  s.put("ab", "123");
  s.append("ab", "45");
  s.append("c", "6");
  auto st = s.stats();
  CHECK(st.keys == 2);
  CHECK(st.bytes == 2 + 5 + 1 + 1);
  s.put("ab", "");
  CHECK(s.stats().bytes == 2 + 0 + 1 + 1);
}

TEST_CASE("store: idle clients expire after the TTL, active ones stay") {
  store s(store_options{std::chrono::seconds(60), true});
  auto t0 = store::clock::now();
  s.put("k", "a", request_id{"idle", 1}, t0);
  s.put("k", "b", request_id{"busy", 1}, t0);
  s.put("k", "c", request_id{"busy", 2}, t0 + 50s);
  CHECK(s.expire_idle_clients(t0 + 59s) == 0);
  CHECK(s.expire_idle_clients(t0 + 61s) == 1);
  CHECK(s.stats().clients == 1);
  // A retry of the latest seq refreshes the entry too.
  s.put("k", "c", request_id{"busy", 2}, t0 + 100s);
  CHECK(s.expire_idle_clients(t0 + 150s) == 0);
  CHECK(s.expire_idle_clients(t0 + 161s) == 1);
  // What expiry costs, and why the TTL is long: after it, a retry is a new request.
  CHECK(s.put("k", "old", request_id{"busy", 2}, t0 + 200s).outcome == status::executed);
}

TEST_CASE("store: expiry releases a replaced value that only a cached reply still held") {
  store s(store_options{std::chrono::seconds(1), true});
  auto t0 = store::clock::now();
  s.put("k", std::string(1000, 'v'), std::nullopt, t0);
  s.append("k", "x", request_id{"c", 1}, t0);
  s.put("k", "", std::nullopt, t0);
  CHECK(s.expire_idle_clients(t0 + 2s) == 1);
  CHECK(s.stats().clients == 0);
}

TEST_CASE("store: with deduplication off, ids are ignored (the test-only mode)") {
  store s(store_options{std::chrono::seconds(3600), false});
  s.append("k", "x", request_id{"c", 1});
  s.append("k", "x", request_id{"c", 1});
  CHECK(s.get("k") == "xx");
  CHECK(s.stats().clients == 0);
}

TEST_CASE("store: an id needs a client and a seq") {
  store s;
  CHECK_THROWS_AS(s.put("k", "v", request_id{"", 1}), std::invalid_argument);
  CHECK_THROWS_AS(s.put("k", "v", request_id{"c", 0}), std::invalid_argument);
}

TEST_CASE("store: concurrent retries of one (client, seq) on many threads execute it once") {
  store s;
  constexpr int threads = 8;
  constexpr int seqs = 200;
  std::barrier sync(threads);
  std::vector<std::vector<std::string>> replies(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int seq = 1; seq <= seqs; ++seq) {
        sync.arrive_and_wait();  // every thread sends seq at the same moment, as retries racing would
        auto r = s.append("k", "<" + std::to_string(seq) + ">", request_id{"one-clerk", static_cast<std::uint64_t>(seq)});
        replies[t].push_back(r.answered() ? r.old_value : "refused");
      }
    });
  }
  for (auto& th : pool) th.join();
  auto value = s.get("k");
  std::string expected;
  for (int seq = 1; seq <= seqs; ++seq) expected += "<" + std::to_string(seq) + ">";
  CHECK(value == expected);
  for (int t = 1; t < threads; ++t) CHECK(replies[t] == replies[0]);
}

TEST_CASE("store: concurrent clients on shared and separate keys lose no write") {
  store s;
  constexpr int threads = 6;
  constexpr int ops = 500;
  std::vector<std::thread> pool;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::string client = "c" + std::to_string(t);
      std::string own = "own" + std::to_string(t);
      std::string mine;
      for (int i = 0; i < ops; ++i) {
        auto element = "[" + std::to_string(t) + "." + std::to_string(i) + "]";
        auto id = request_id{client, static_cast<std::uint64_t>(i + 1)};
        if (i % 2 == 0) {
          s.append("shared", element, id);
        } else {
          if (s.append(own, element, id).old_value != mine) ++mismatches;
          mine += element;
        }
        if (i % 7 == 0 && s.get(own) != mine) ++mismatches;
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(mismatches.load() == 0);
  auto shared = s.get("shared");
  for (int t = 0; t < threads; ++t)
    for (int i = 0; i < ops; i += 2) CHECK(count_of(shared, "[" + std::to_string(t) + "." + std::to_string(i) + "]") == 1);
  CHECK(s.stats().clients == threads);
}

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::kv
