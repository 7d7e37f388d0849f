// The store's versions, conditional writes, deletes, leases, listing and snapshot hooks (issue 13),
// without sockets; and the replay property the write-ahead log relies on: executing the same commands
// in the same order on an empty store rebuilds the same state.
#include "mrkv/kv/store.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace mrkv::kv {
namespace {

using status = write_result::status;
using namespace std::chrono_literals;

write_command command(write_kind kind, std::string key, std::string value = {},
                      std::optional<std::uint64_t> expected = std::nullopt, std::string client = {},
                      std::uint64_t seq = 0) {
  write_command c;
  c.kind = kind;
  c.key = std::move(key);
  c.value = std::move(value);
  c.expected_version = expected;
  c.client = std::move(client);
  c.seq = seq;
  return c;
}

write_command leased_put(std::string key, std::string value, std::uint32_t lease_ms,
                         std::optional<std::uint64_t> expected = std::nullopt) {
  auto c = command(write_kind::put, std::move(key), std::move(value), expected);
  c.lease_ms = lease_ms;
  return c;
}

// Everything a snapshot would hold, in a comparable form.
struct dump {
  std::map<std::string, std::tuple<std::string, std::uint64_t, std::uint32_t>> keys;
  std::map<std::string, std::tuple<std::uint64_t, int, bool, std::uint64_t, std::string>> clients;
  bool operator==(const dump&) const = default;
};

dump dump_of(const store& s) {
  dump d;
  for (std::size_t i = 0; i < store::shard_count; ++i) {
    s.visit_keys(i, [&](const key_record& r) {
      d.keys[std::string(r.key)] = {std::string(r.value), r.version, r.lease_ms};
    });
    s.visit_clients(i, [&](const client_record& r) {
      d.clients[std::string(r.client)] = {r.seq, static_cast<int>(r.kind), r.version_mismatch, r.version,
                                          std::string(r.reply)};
    });
  }
  return d;
}

TEST_SUITE("kv") {

TEST_CASE("versions: a key's version counts its writes and a delete returns it to 0") {
  store s;
  CHECK(s.read("k").version == 0);
  CHECK(s.put("k", "a").version == 1);
  auto r = s.append("k", "b");
  CHECK(r.version == 2);
  CHECK(r.old_value == "a");
  CHECK(s.read("k").value == "ab");
  CHECK(s.read("k").version == 2);
  auto gone = s.execute(command(write_kind::remove, "k"));
  CHECK(gone.outcome == status::executed);
  CHECK(gone.version == 0);
  CHECK(s.read("k").version == 0);
  CHECK(s.get("k") == "");
  CHECK(s.stats().keys == 0);
  CHECK(s.stats().bytes == 0);
  // Deleting a missing key is not an error; writing it again starts at 1.
  CHECK(s.execute(command(write_kind::remove, "k")).outcome == status::executed);
  CHECK(s.append("k", "x").version == 1);
}

TEST_CASE("versions: the lab's single-client conditional puts") {
  store s;
  // Version 0 creates; a repeat of it gets a mismatch with the current version.
  auto created = s.execute(command(write_kind::put, "k", "v1", 0));
  CHECK(created.outcome == status::executed);
  CHECK(created.version == 1);
  auto again = s.execute(command(write_kind::put, "k", "v2", 0));
  CHECK(again.outcome == status::version_mismatch);
  CHECK(again.version == 1);
  CHECK(s.get("k") == "v1");
  CHECK(s.execute(command(write_kind::put, "k", "v2", 1)).version == 2);
  // A put of a missing key with version 1 fails, naming version 0.
  auto missing = s.execute(command(write_kind::put, "other", "x", 1));
  CHECK(missing.outcome == status::version_mismatch);
  CHECK(missing.version == 0);
  CHECK(s.read("other").version == 0);
  // Conditional appends and deletes.
  CHECK(s.execute(command(write_kind::append, "k", "!", 1)).outcome == status::version_mismatch);
  CHECK(s.execute(command(write_kind::append, "k", "!", 2)).old_value == "v2");
  auto wrong_delete = s.execute(command(write_kind::remove, "k", {}, 2));
  CHECK(wrong_delete.outcome == status::version_mismatch);
  CHECK(wrong_delete.version == 3);
  CHECK(s.execute(command(write_kind::remove, "k", {}, 3)).outcome == status::executed);
  CHECK(s.execute(command(write_kind::remove, "k", {}, 0)).outcome == status::executed);
  CHECK(s.execute(command(write_kind::remove, "k", {}, 1)).outcome == status::version_mismatch);
}

TEST_CASE("versions: a retried conditional write gets its first reply, mismatch or not") {
  store s;
  auto first = s.execute(command(write_kind::put, "k", "a", 0, "c", 1));
  CHECK(first.outcome == status::executed);
  // The retry would now mismatch (version 1) but is answered from the table.
  auto retry = s.execute(command(write_kind::put, "k", "a", 0, "c", 1));
  CHECK(retry.outcome == status::replayed);
  CHECK(retry.version == 1);
  // A mismatch is cached too: the key moving on to version 0 later does not make the retry execute.
  auto refused = s.execute(command(write_kind::put, "k", "b", 0, "c", 2));
  CHECK(refused.outcome == status::version_mismatch);
  CHECK(refused.version == 1);
  s.execute(command(write_kind::remove, "k"));
  auto refused_again = s.execute(command(write_kind::put, "k", "b", 0, "c", 2));
  CHECK(refused_again.outcome == status::version_mismatch);
  CHECK(refused_again.version == 1);
  CHECK(s.read("k").version == 0);
  // A delete's seq reused by a put is a conflict.
  s.execute(command(write_kind::remove, "k", {}, std::nullopt, "c", 3));
  CHECK(s.execute(command(write_kind::put, "k", "x", std::nullopt, "c", 3)).outcome == status::conflict);
  CHECK(s.execute(command(write_kind::remove, "k", {}, std::nullopt, "c", 3)).outcome == status::replayed);
  // Without a request id a retry meets its own success as a mismatch (the clerk's "maybe applied").
  CHECK(s.execute(command(write_kind::put, "n", "x", 0)).outcome == status::executed);
  CHECK(s.execute(command(write_kind::put, "n", "x", 0)).outcome == status::version_mismatch);
}

TEST_CASE("versions: bad commands are refused") {
  store s;
  CHECK_THROWS_AS(s.execute(command(write_kind::put, "k", "v", std::nullopt, "c", 0)), std::invalid_argument);
  CHECK_THROWS_AS(s.execute(command(write_kind::expire, "k")), std::invalid_argument);
  CHECK_THROWS_AS(s.execute(command(write_kind::expire, "k", {}, 1, "c", 1)), std::invalid_argument);
  CHECK_THROWS_AS(s.execute(leased_put("k", "v", 0)), std::invalid_argument);
  auto leased_append = command(write_kind::append, "k", "v");
  leased_append.lease_ms = 10;
  CHECK_THROWS_AS(s.execute(leased_append), std::invalid_argument);
  CHECK(s.stats().keys == 0);
}

TEST_CASE("leases: due at their deadline, as expiries that a renewal turns into no-ops") {
  store s;
  const auto t0 = store::clock::now();
  CHECK(s.due_leases(t0 + 1h).empty());
  CHECK(!s.next_lease_deadline());
  CHECK(s.execute(leased_put("k", "v", 100), t0).version == 1);
  CHECK(s.next_lease_deadline() == t0 + 100ms);
  CHECK(s.due_leases(t0 + 99ms).empty());
  auto due = s.due_leases(t0 + 100ms);
  REQUIRE(due.size() == 1);
  CHECK(due[0].kind == write_kind::expire);
  CHECK(due[0].key == "k");
  CHECK(due[0].expected_version == 1);
  // A renewal wins the race: the expiry computed before it changes nothing.
  CHECK(s.execute(leased_put("k", "v", 100, 1), t0 + 100ms).version == 2);
  auto late = s.execute(due[0], t0 + 101ms);
  CHECK(late.outcome == status::version_mismatch);
  CHECK(s.read("k").version == 2);
  CHECK(s.due_leases(t0 + 150ms).empty());
  // The expiry of the renewed lease deletes the key.
  due = s.due_leases(t0 + 200ms);
  REQUIRE(due.size() == 1);
  CHECK(s.execute(due[0], t0 + 200ms).outcome == status::executed);
  CHECK(s.read("k").version == 0);
  CHECK(s.due_leases(t0 + 1h).empty());
  // A write without a lease makes the key permanent again.
  s.execute(leased_put("p", "v", 10), t0);
  s.append("p", "w", std::nullopt, t0);
  CHECK(s.due_leases(t0 + 1h).empty());
  CHECK(s.get("p") == "vw");
  // A delete drops the lease with the key.
  s.execute(leased_put("d", "v", 10), t0);
  s.execute(command(write_kind::remove, "d"), t0);
  CHECK(s.due_leases(t0 + 1h).empty());
}

TEST_CASE("leases: expiry racing renewals on two threads never deletes a renewed key") {
  store s;
  const auto t0 = store::clock::now();
  s.execute(leased_put("lock", "me", 1), t0);
  constexpr int rounds = 2000;
  std::atomic<bool> done{false};
  std::uint64_t renewed = 0, lost = 0;
  std::thread renewer([&] {
    std::uint64_t version = 1;
    for (int i = 0; i < rounds; ++i) {
      auto r = s.execute(leased_put("lock", "me", 1, version), t0);
      if (r.outcome == status::executed) {
        version = r.version;
        ++renewed;
      } else {
        // The lease expired first: the key is gone, so take it again from version 0.
        CHECK(r.version == 0);
        ++lost;
        auto again = s.execute(leased_put("lock", "me", 1, 0), t0);
        REQUIRE(again.outcome == status::executed);
        version = again.version;
      }
    }
    done = true;
  });
  std::uint64_t expired = 0;
  while (!done) {
    for (auto& expiry : s.due_leases(t0 + 1h))
      if (s.execute(std::move(expiry), t0).outcome == status::executed) ++expired;
  }
  renewer.join();
  // Every expiry that executed was met by exactly one failed renewal (and nothing else deleted it).
  CHECK(lost <= expired);
  CHECK(expired <= lost + 1);
  CHECK(renewed + lost == rounds);
  MESSAGE("renewed " << renewed << ", expired " << expired);
}

TEST_CASE("list: byte order, prefix, after, limit and more") {
  store s;
  std::vector<std::string> keys = {"a", "b/1", "b/2", "b/10", "c", "\xc3\xa9", "B", ""};
  for (const auto& k : keys) s.put(k, "v" + k);
  auto all = s.list("", std::nullopt, 100);
  std::vector<std::string> listed;
  for (const auto& item : all.items) listed.push_back(item.key);
  // Byte order, with bytes compared unsigned: "" < "B" < "a" < ... < "\xc3\xa9".
  CHECK(listed == std::vector<std::string>{"", "B", "a", "b/1", "b/10", "b/2", "c", "\xc3\xa9"});
  CHECK(!all.more);
  CHECK(all.items[3].value == "vb/1");
  CHECK(all.items[3].version == 1);
  auto page = s.list("b/", std::nullopt, 2);
  REQUIRE(page.items.size() == 2);
  CHECK(page.items[0].key == "b/1");
  CHECK(page.items[1].key == "b/10");
  CHECK(page.more);
  page = s.list("b/", "b/10", 2);
  REQUIRE(page.items.size() == 1);
  CHECK(page.items[0].key == "b/2");
  CHECK(!page.more);
  // "after" is exclusive and need not be a key.
  page = s.list("", "b/", 100);
  CHECK(page.items.front().key == "b/1");
  CHECK(s.list("zz", std::nullopt, 10).items.empty());
  // After "" leaves out the empty key.
  CHECK(s.list("", "", 100).items.front().key == "B");
}

TEST_CASE("list: pages over many keys in many shards see every key once, in order") {
  store s;
  std::mt19937_64 rng(7);
  std::vector<std::string> keys;
  for (int i = 0; i < 5000; ++i) {
    keys.push_back("k" + std::to_string(rng()));
    s.put(keys.back(), std::to_string(i));
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<std::string> seen;
  std::optional<std::string> after;
  for (;;) {
    auto page = s.list("k", after ? std::optional<std::string_view>(*after) : std::nullopt, 97);
    for (auto& item : page.items) seen.push_back(item.key);
    if (!page.more) break;
    REQUIRE(!page.items.empty());
    after = page.items.back().key;
  }
  CHECK(seen == keys);
}

// What a full listing (page by page) shows, as key -> (value, version).
std::map<std::string, std::pair<std::string, std::uint64_t>> listed_all(const store& s, std::string_view prefix,
                                                                         std::size_t limit) {
  std::map<std::string, std::pair<std::string, std::uint64_t>> seen;
  std::optional<std::string> after;
  std::string previous;
  for (;;) {
    auto page = s.list(prefix, after ? std::optional<std::string_view>(*after) : std::nullopt, limit);
    CHECK(page.items.size() <= limit);
    for (auto& item : page.items) {
      CHECK((seen.empty() || previous < item.key));
      previous = item.key;
      seen[item.key] = {item.value, item.version};
    }
    if (!page.more) break;
    REQUIRE(!page.items.empty());
    after = page.items.back().key;
  }
  return seen;
}

TEST_CASE("list: keys made by appends, dropped by deletes and expiries, and loaded at recovery are listed as they are") {
  store s;
  const auto t0 = store::clock::now();
  std::map<std::string, std::pair<std::string, std::uint64_t>> expected;
  for (int i = 0; i < 3000; ++i) {
    std::string key = "k/" + std::to_string(i);
    if (i % 3 == 0) {
      s.append(key, "a");
      s.append(key, "b");
      expected[key] = {"ab", 2};
    } else {
      s.put(key, "p");
      expected[key] = {"p", 1};
    }
  }
  s.put("other", "not listed");
  for (int i = 0; i < 3000; i += 4) {
    s.execute(command(write_kind::remove, "k/" + std::to_string(i)));
    expected.erase("k/" + std::to_string(i));
  }
  s.execute(leased_put("k/lease", "x", 10), t0);
  for (auto& expiry : s.due_leases(t0 + 10ms)) CHECK(s.execute(std::move(expiry)).outcome == status::executed);
  CHECK(listed_all(s, "k/", 97) == expected);
  CHECK(listed_all(s, "k/", 1).size() == expected.size());
  CHECK(listed_all(s, "", 10'000).size() == expected.size() + 1);

  store loaded;
  for (std::size_t i = 0; i < store::shard_count; ++i) s.visit_keys(i, [&](const key_record& r) { loaded.load(r, t0); });
  // A record loaded twice replaces the first: still one key in the listing.
  loaded.load(key_record{"k/1", "again", 9, 0}, t0);
  expected["k/1"] = {"again", 9};
  CHECK(listed_all(loaded, "k/", 500) == expected);
}

TEST_CASE("list: pages while other threads add, change and remove keys list every key that stays, once, in order") {
  store s;
  constexpr int stable = 2000;
  for (int i = 0; i < stable; ++i) s.put("s/" + std::to_string(10'000 + i), "stable");
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(w));
      while (!stop.load()) {
        // Churned keys sort between the stable ones, in the same shards.
        std::string key = "s/" + std::to_string(10'000 + rng() % stable) + "/" + std::to_string(rng() % 3);
        if (rng() % 2) s.put(key, "churn");
        else s.execute(command(write_kind::remove, key));
        s.append("s/" + std::to_string(10'000 + rng() % stable), "+");  // changes stable values
      }
    });
  }
  for (std::size_t limit : {1, 7, 100, 1000, 10'000, 1, 7, 100, 1000, 10'000}) {
    CAPTURE(limit);
    auto seen = listed_all(s, "s/", limit);
    std::size_t stable_seen = 0;
    for (const auto& [key, item] : seen)
      if (key.find('/', 2) == std::string::npos) {
        ++stable_seen;
        CHECK(item.first.rfind("stable", 0) == 0);
        // Value and version of one moment: each append added one '+' and one version.
        CHECK(item.first.size() == 5 + item.second);
      }
    CHECK(stable_seen == stable);
  }
  stop = true;
  for (auto& t : writers) t.join();
}

TEST_CASE("snapshot: visiting and loading rebuilds keys, versions, leases and the duplicate table") {
  store s;
  const auto t0 = store::clock::now();
  s.put("a", "1");
  s.append("a", "2", request_id{"appender", 4}, t0);  // cached reply "1"
  s.execute(leased_put("lease", "x", 5000), t0);
  s.execute(command(write_kind::put, "a", "no", 7, "cond", 9), t0);  // a cached mismatch
  s.put(std::string("nul\0", 4), std::string("\0", 1));
  const auto before = dump_of(s);
  CHECK(before.keys.size() == 3);
  CHECK(before.clients.size() == 2);

  store copy;
  for (std::size_t i = 0; i < store::shard_count; ++i) {
    s.visit_keys(i, [&](const key_record& r) { copy.load(r, t0); });
    s.visit_clients(i, [&](const client_record& r) { copy.load(r, t0); });
  }
  CHECK(dump_of(copy) == before);
  CHECK(copy.stats().bytes == s.stats().bytes);
  // The loaded table answers retries as the original would.
  auto replay = copy.append("a", "2", request_id{"appender", 4}, t0);
  CHECK(replay.outcome == status::replayed);
  CHECK(replay.old_value == "1");
  CHECK(replay.version == 2);
  auto mismatch = copy.execute(command(write_kind::put, "a", "no", 7, "cond", 9), t0);
  CHECK(mismatch.outcome == status::version_mismatch);
  CHECK(mismatch.version == 2);
  // The loaded lease runs again for its full length from the load.
  CHECK(copy.due_leases(t0 + 4999ms).empty());
  CHECK(copy.due_leases(t0 + 5000ms).size() == 1);
}

TEST_CASE("replay: the same commands in the same order on an empty store rebuild the same state") {
  std::mt19937_64 rng(42);
  std::vector<write_command> log;
  store live;
  const auto t0 = store::clock::now();
  auto now = t0;
  for (int i = 0; i < 3000; ++i) {
    now += 1ms;
    const auto pick = rng() % 10;
    std::string key = "k" + std::to_string(rng() % 20);
    std::string client = rng() % 2 ? "c" + std::to_string(rng() % 5) : "";
    std::uint64_t seq = client.empty() ? 0 : 1 + rng() % 40;  // stale, repeated and new seqs
    std::optional<std::uint64_t> expected;
    if (rng() % 3 == 0) expected = rng() % 4;
    write_command c;
    if (pick < 4) c = command(write_kind::put, key, std::to_string(i), expected, client, seq);
    else if (pick < 7) c = command(write_kind::append, key, std::to_string(i % 7), expected, client, seq);
    else if (pick < 8) c = command(write_kind::remove, key, {}, expected, client, seq);
    else c = leased_put(key, "lease", 1 + static_cast<std::uint32_t>(rng() % 20), expected);
    log.push_back(c);
    live.execute(std::move(c), now);
    for (auto& expiry : live.due_leases(now)) {
      log.push_back(expiry);
      live.execute(std::move(expiry), now);
    }
  }
  store replayed;
  for (const auto& c : log) replayed.execute(c, t0);
  CHECK(dump_of(replayed) == dump_of(live));
  CHECK(replayed.stats().bytes == live.stats().bytes);
}

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::kv
