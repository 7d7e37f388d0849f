#include "support/linearizability.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace mrkv::test {
namespace {

using kind = kv_operation::kind;
using namespace std::chrono_literals;

kv_operation get(int client, std::string key, std::string output, std::int64_t call, std::int64_t ret) {
  return kv_operation{client, kind::get, std::move(key), {}, std::move(output), true, call, ret};
}
kv_operation put(int client, std::string key, std::string input, std::int64_t call, std::int64_t ret) {
  return kv_operation{client, kind::put, std::move(key), std::move(input), {}, true, call, ret};
}
kv_operation append(int client, std::string key, std::string input, std::string old, std::int64_t call,
                    std::int64_t ret) {
  return kv_operation{client,         kind::append, std::move(key), std::move(input),
                      std::move(old), true,         call,           ret};
}
kv_operation pending(int client, kind k, std::string key, std::string input, std::int64_t call) {
  return kv_operation{client, k,     std::move(key), std::move(input),
                      {},     false, call,           kv_operation::pending_return};
}

check_result check(const std::vector<kv_operation>& h) {
  return check_linearizable(h, 5000ms);
}

// A linearizable history by construction: each client runs operations back to back with random gaps and
// durations, each operation takes effect at a random instant inside its interval, and the outputs come
// from applying the operations to a real map in the order of those instants.
struct workload {
  int clients = 5;
  int ops_per_client = 1000;
  int keys = 1;
  int put_percent = 5;  // puts reset values; without them appended values grow all along
  int append_percent = 45;
  std::int64_t max_duration = 300;  // the mean gap between a client's operations is 25
  // Calls whose reply is lost: the client gives up and moves on; half of them still take effect, possibly
  // long after the client moved on, the others never do.
  int pending_permille = 0;
  std::uint64_t seed = 1;
};

std::vector<kv_operation> simulate(const workload& w) {
  std::mt19937_64 rng(w.seed);
  auto uniform = [&rng](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  struct timed {
    std::int64_t at;
    kv_operation op;
  };
  std::vector<timed> ops;
  constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();
  for (int c = 0; c < w.clients; ++c) {
    std::int64_t t = uniform(0, 100);
    int appends = 0;
    for (int j = 0; j < w.ops_per_client; ++j) {
      const std::int64_t call = t + uniform(0, 50);
      const std::int64_t ret = call + uniform(2, w.max_duration);
      kv_operation op;
      op.client = c;
      op.key = "k" + std::to_string(uniform(0, w.keys - 1));
      op.call_ns = call;
      op.return_ns = ret;
      op.output_known = true;
      const auto dice = uniform(0, 99);
      if (dice < w.append_percent) {
        op.op = kind::append;
        op.input = "x " + std::to_string(c) + " " + std::to_string(appends++) + " y";
      } else if (dice < w.append_percent + w.put_percent) {
        op.op = kind::put;
        op.input = "p " + std::to_string(c) + " " + std::to_string(j) + ";";
      } else {
        op.op = kind::get;
      }
      std::int64_t at = uniform(call + 1, ret - 1);
      if (uniform(0, 999) < w.pending_permille) {
        op.output_known = false;
        op.return_ns = kv_operation::pending_return;
        at = uniform(0, 1) == 0 ? uniform(call + 1, ret + 5 * w.max_duration) : never;
      }
      ops.push_back(timed{at, std::move(op)});
      t = ret;
    }
  }
  std::sort(ops.begin(), ops.end(), [](const timed& a, const timed& b) { return a.at < b.at; });
  std::map<std::string, std::string> store;
  std::vector<kv_operation> history;
  for (timed& t : ops) {
    if (t.at == never) {
      history.push_back(std::move(t.op));
      continue;
    }
    std::string& value = store[t.op.key];
    switch (t.op.op) {
      case kind::get:
        t.op.output = value;
        break;
      case kind::put:
        value = t.op.input;
        break;
      case kind::append:
        t.op.output = value;
        value += t.op.input;
        break;
      case kind::remove:  // not generated: the unversioned model has no remove
        value.clear();
        break;
    }
    if (!t.op.output_known) t.op.output.clear();
    history.push_back(std::move(t.op));
  }
  // Present the operations in call order, as a recorder would.
  std::stable_sort(history.begin(), history.end(),
                   [](const kv_operation& a, const kv_operation& b) { return a.call_ns < b.call_ns; });
  return history;
}

// The definition, by exhaustive search: some order of all completed operations and any subset of the
// pending ones that respects real time and the model. Only for a handful of operations.
bool brute_force_linearizable(const std::vector<kv_operation>& h) {
  const std::size_t n = h.size();
  std::vector<bool> used(n, false);
  std::size_t completed = 0;
  for (const auto& op : h) completed += op.output_known ? 1 : 0;
  auto ret = [](const kv_operation& op) {
    return op.output_known ? op.return_ns : kv_operation::pending_return;
  };
  auto search = [&](auto& self, std::map<std::string, std::string>& store, std::size_t placed) -> bool {
    if (placed == completed) return true;  // the pending ones left out never happen
    for (std::size_t i = 0; i < n; ++i) {
      if (used[i]) continue;
      bool ready = true;
      for (std::size_t j = 0; j < n && ready; ++j) ready = used[j] || ret(h[j]) >= h[i].call_ns;
      if (!ready) continue;
      const kv_operation& op = h[i];
      std::string& value = store[op.key];
      const std::string saved = value;
      if (op.output_known && op.op != kind::put && op.output != value) continue;
      if (op.op == kind::put) value = op.input;
      if (op.op == kind::append) value += op.input;
      used[i] = true;
      const bool ok = self(self, store, placed + (op.output_known ? 1 : 0));
      used[i] = false;
      store[op.key] = saved;
      if (ok) return true;
    }
    return false;
  };
  std::map<std::string, std::string> store;
  return search(search, store, 0);
}

TEST_SUITE("linearizability") {
  TEST_CASE("an empty history is linearizable") {
    CHECK(check({}).ok());
  }

  TEST_CASE("a sequential history is accepted") {
    const std::vector<kv_operation> h{
        get(0, "k", "", 0, 1),   put(0, "k", "a", 2, 3),        append(0, "k", "b", "a", 4, 5),
        get(0, "k", "ab", 6, 7), append(0, "j", "z", "", 8, 9), get(0, "j", "z", 10, 11),
        put(0, "k", "", 12, 13), get(0, "k", "", 14, 15),
    };
    CHECK(check(h).ok());
  }

  TEST_CASE("concurrent operations may take effect in either order") {
    SUBCASE("two overlapping appends, second-called applied first") {
      const std::vector<kv_operation> h{
          append(0, "k", "a", "b", 0, 10),
          append(1, "k", "b", "", 1, 9),
          get(2, "k", "ba", 11, 12),
      };
      CHECK(check(h).ok());
    }
    SUBCASE("a get overlapping a put sees either value") {
      const std::vector<kv_operation> h{
          put(0, "k", "old", 0, 1), put(1, "k", "new", 2, 10),  get(2, "k", "new", 3, 4),
          get(3, "k", "new", 5, 6), get(2, "k", "new", 11, 12),
      };
      CHECK(check(h).ok());
      const std::vector<kv_operation> h2{
          put(0, "k", "old", 0, 1),
          put(1, "k", "new", 2, 10),
          get(2, "k", "old", 3, 4),
          get(2, "k", "new", 11, 12),
      };
      CHECK(check(h2).ok());
    }
    SUBCASE("operations that touch at one instant count as concurrent") {
      const std::vector<kv_operation> h{put(0, "k", "a", 0, 5), get(1, "k", "", 5, 6)};
      CHECK(check(h).ok());
    }
  }

  TEST_CASE("a stale read is rejected") {
    const std::vector<kv_operation> h{
        put(0, "k", "1", 0, 1),
        put(0, "k", "2", 2, 3),
        get(1, "k", "1", 4, 5),
    };
    const check_result r = check(h);
    CHECK(r.illegal());
    CHECK(r.key == "k");
    MESSAGE(r.description);
  }

  TEST_CASE("a read that goes back in time is rejected") {
    // Each read alone overlaps the put; together they see the new value and then the old one.
    const std::vector<kv_operation> h{
        put(0, "k", "1", 0, 1),
        put(1, "k", "2", 2, 20),
        get(2, "k", "2", 3, 4),
        get(2, "k", "1", 5, 6),
    };
    CHECK(check(h).illegal());
  }

  TEST_CASE("a lost append is rejected") {
    const std::vector<kv_operation> h{
        put(0, "k", "", 0, 1),
        append(0, "k", "x0", "", 2, 3),
        append(1, "k", "x1", "x0", 4, 5),
        get(2, "k", "x0", 6, 7),
    };
    CHECK(check(h).illegal());

    // The old value an append reports must be the state too.
    const std::vector<kv_operation> h2{
        append(0, "k", "x0", "", 0, 1),
        append(1, "k", "x1", "", 2, 3),
    };
    CHECK(check(h2).illegal());
  }

  TEST_CASE("a doubled append is rejected") {
    const std::vector<kv_operation> h{
        append(0, "k", "x 0 0 y", "", 0, 1),
        append(0, "k", "x 0 1 y", "x 0 0 y", 2, 3),
        get(1, "k", "x 0 0 yx 0 0 yx 0 1 y", 4, 5),
    };
    const check_result r = check(h);
    CHECK(r.illegal());
    MESSAGE(r.description);
  }

  TEST_CASE("a get cannot see a value before the put that wrote it was called") {
    const std::vector<kv_operation> h{
        get(0, "k", "v", 0, 1),
        put(1, "k", "v", 2, 3),
    };
    CHECK(check(h).illegal());
    // Overlapping, though, it can.
    const std::vector<kv_operation> h2{
        get(0, "k", "v", 0, 3),
        put(1, "k", "v", 2, 5),
    };
    CHECK(check(h2).ok());
  }

  TEST_CASE("a pending put may or may not take effect") {
    SUBCASE("never observed") {
      const std::vector<kv_operation> h{
          put(0, "k", "a", 0, 1),
          pending(1, kind::put, "k", "b", 2),
          get(2, "k", "a", 3, 4),
          get(2, "k", "a", 100, 101),
      };
      CHECK(check(h).ok());
    }
    SUBCASE("observed, even long after its call") {
      const std::vector<kv_operation> h{
          put(0, "k", "a", 0, 1),
          pending(1, kind::put, "k", "b", 2),
          get(2, "k", "a", 3, 4),
          get(2, "k", "b", 100, 101),
      };
      CHECK(check(h).ok());
    }
    SUBCASE("but only once, and not before its call") {
      const std::vector<kv_operation> h{
          put(0, "k", "a", 0, 1),
          pending(1, kind::put, "k", "b", 2),
          get(2, "k", "b", 3, 4),
          get(2, "k", "a", 5, 6),
      };
      CHECK(check(h).illegal());
      const std::vector<kv_operation> h2{
          put(0, "k", "a", 0, 1),
          get(2, "k", "b", 3, 4),
          pending(1, kind::put, "k", "b", 5),
      };
      CHECK(check(h2).illegal());
    }
    SUBCASE("output_known = false makes an operation pending whatever its return time") {
      kv_operation gave_up = put(1, "k", "b", 2, 3);
      gave_up.output_known = false;
      const std::vector<kv_operation> h{put(0, "k", "a", 0, 1), gave_up, get(2, "k", "a", 10, 11),
                                        get(2, "k", "b", 20, 21)};
      CHECK(check(h).ok());
    }
  }

  TEST_CASE("a pending append applies at most once, in order") {
    const std::vector<kv_operation> base{append(0, "k", "a", "", 0, 1),
                                         pending(1, kind::append, "k", "b", 2)};
    auto with = [&base](std::vector<kv_operation> more) {
      std::vector<kv_operation> h = base;
      h.insert(h.end(), more.begin(), more.end());
      return h;
    };
    CHECK(check(with({get(2, "k", "a", 3, 4)})).ok());
    CHECK(check(with({get(2, "k", "ab", 3, 4)})).ok());
    CHECK(check(with({get(2, "k", "a", 3, 4), append(2, "k", "c", "ab", 5, 6), get(2, "k", "abc", 7, 8)}))
              .ok());
    CHECK(check(with({get(2, "k", "abb", 3, 4)})).illegal());
    CHECK(check(with({get(2, "k", "ab", 3, 4), get(2, "k", "a", 5, 6)})).illegal());
    // Several pending writes, each free to apply or not.
    CHECK(check(with({pending(2, kind::append, "k", "c", 3), pending(3, kind::put, "k", "z", 3),
                      get(4, "k", "ac", 10, 11), get(4, "k", "z", 12, 13), get(4, "k", "zb", 14, 15)}))
              .ok());
    // A pending get constrains nothing.
    CHECK(check(with({pending(2, kind::get, "k", "", 3), get(2, "k", "ab", 5, 6)})).ok());
  }

  TEST_CASE("agrees with an exhaustive search on small random histories") {
    std::mt19937_64 rng(42);
    auto pick = [&rng](int n) { return static_cast<int>(std::uniform_int_distribution<int>(0, n - 1)(rng)); };
    const std::vector<std::string> values{"", "a", "b", "ab", "ba", "aa", "aab", "aba"};
    int accepted = 0, rejected = 0;
    for (int round = 0; round < 20000; ++round) {
      const bool simulated = round % 2 == 1;
      std::vector<kv_operation> h;
      const int n = 2 + pick(7);
      for (int i = 0; i < n; ++i) {
        kv_operation op;
        op.client = i;
        op.op = static_cast<kind>(pick(3));
        op.key = pick(4) == 0 ? "j" : "k";
        op.input = op.op == kind::get ? "" : std::string(1, static_cast<char>('a' + pick(2)));
        if (op.op == kind::put && pick(3) == 0) op.input = values[static_cast<std::size_t>(pick(8))];
        if (op.op == kind::append && pick(8) == 0) op.input.clear();
        op.output = op.op == kind::put ? "" : values[static_cast<std::size_t>(pick(8))];
        op.call_ns = pick(10);
        op.output_known = pick(simulated ? 3 : 5) != 0;
        op.return_ns = op.output_known ? op.call_ns + pick(6) : kv_operation::pending_return;
        h.push_back(op);
      }
      if (simulated) {
        // Outputs from a real execution: each operation takes effect at a random instant of its
        // interval, a pending one maybe never; then sometimes one output is spoilt.
        std::vector<std::pair<int, std::size_t>> order;
        for (std::size_t i = 0; i < h.size(); ++i) {
          const int end = h[i].output_known ? static_cast<int>(h[i].return_ns) : 20;
          if (!h[i].output_known && pick(2) == 0) continue;
          order.emplace_back(
              2 * (static_cast<int>(h[i].call_ns) + pick(end - static_cast<int>(h[i].call_ns) + 1)) + pick(2),
              i);
        }
        std::sort(order.begin(), order.end());
        std::map<std::string, std::string> store;
        for (const auto& [at, i] : order) {
          std::string& value = store[h[i].key];
          if (h[i].op != kind::put) h[i].output = value;
          if (h[i].op == kind::put) value = h[i].input;
          if (h[i].op == kind::append) value += h[i].input;
        }
        if (pick(3) == 0)
          h[static_cast<std::size_t>(pick(n))].output = values[static_cast<std::size_t>(pick(8))];
      }
      const bool expected = brute_force_linearizable(h);
      const check_result r = check(h);
      REQUIRE(!r.unknown());
      if (r.ok() != expected) {
        std::string dump;
        for (const auto& op : h) dump += describe(op) + "\n";
        FAIL("checker says " << to_string(r.result) << " for:\n" << dump);
      }
      (expected ? accepted : rejected)++;
    }
    MESSAGE(accepted << " accepted, " << rejected << " rejected, all as the exhaustive search decided");
    CHECK(accepted > 2000);
    CHECK(rejected > 2000);
  }

  TEST_CASE("keys are checked independently and the failing key is reported") {
    const std::vector<kv_operation> h{
        put(0, "a", "1", 0, 10),  put(1, "b", "1", 0, 10),
        get(2, "a", "1", 11, 12), get(2, "b", "", 13, 14),  // b was written before this get began
        get(3, "c", "", 0, 1),
    };
    const check_result r = check(h);
    REQUIRE(r.illegal());
    CHECK(r.key == "b");
    CHECK(r.description.find("get(\"b\")") != std::string::npos);
    MESSAGE(r.description);
  }

  TEST_CASE("a malformed history is refused") {
    CHECK_THROWS_AS(check({get(0, "k", "", 5, 4)}), std::invalid_argument);
  }

  TEST_CASE("history_recorder logs concurrent clients, pending operations included") {
    history_recorder rec;
    std::mutex store_mutex;
    std::string value;
    std::vector<std::thread> threads;
    for (int c = 0; c < 4; ++c) {
      threads.emplace_back([&, c] {
        for (int j = 0; j < 200; ++j) {
          const bool do_append = (j + c) % 2 == 0;
          const std::string arg = "x " + std::to_string(c) + " " + std::to_string(j) + " y";
          auto h = rec.begin(c, do_append ? kind::append : kind::get, "k", do_append ? arg : "");
          std::string out;
          {
            std::lock_guard lock(store_mutex);
            out = value;
            if (do_append) value += arg;
          }
          rec.end(h, out);
        }
        // The last call's reply is "lost": it happened, but the client never learned the outcome.
        std::lock_guard lock(store_mutex);
        rec.begin(c, kind::append, "k", "lost " + std::to_string(c));
        value += "lost " + std::to_string(c);
      });
    }
    for (auto& t : threads) t.join();
    auto h = rec.begin(9, kind::get, "k");
    rec.end(h, value);

    const std::vector<kv_operation> ops = rec.operations();
    REQUIRE(ops.size() == 4 * 201 + 1);
    CHECK(std::count_if(ops.begin(), ops.end(), [](const kv_operation& o) { return !o.output_known; }) == 4);
    CHECK_THROWS_AS(rec.end(h, ""), std::logic_error);
    CHECK(check(ops).ok());

    // Dropping an element from the final read breaks it.
    std::vector<kv_operation> bad = ops;
    bad.back().output.erase(0, bad.back().output.find('y') + 1);
    CHECK(check(bad).illegal());
  }

  TEST_CASE("large randomized histories are accepted, and rejected once corrupted") {
    workload w;
    std::string name;
    SUBCASE("mixed") {
      w.ops_per_client = 3000;
      w.keys = 3;
      w.seed = 20240402;
      name = "mixed";
    }
    SUBCASE("appends only, so values grow long") {
      w.ops_per_client = 1500;
      w.keys = 3;
      w.put_percent = 0;
      w.append_percent = 60;
      w.seed = 3;
      name = "append-only";
    }
    SUBCASE("long overlapping calls on one key") {
      w.ops_per_client = 1000;
      w.max_duration = 1500;
      w.seed = 11;
      name = "highly concurrent";
    }
    SUBCASE("lost replies: pending calls that may apply late or never") {
      w.ops_per_client = 1000;
      w.keys = 2;
      w.pending_permille = 20;
      w.seed = 5;
      name = "with pending";
    }
    const std::vector<kv_operation> h = simulate(w);
    std::size_t longest = 0;
    for (const auto& op : h) longest = std::max(longest, op.output.size());

    auto timed_check = [](const std::vector<kv_operation>& history) {
      const auto start = std::chrono::steady_clock::now();
      check_result r = check_linearizable(history, 20000ms);
      const auto us =
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start)
              .count();
      return std::pair{r, static_cast<double>(us) / 1000.0};
    };

    const auto [good, good_ms] = timed_check(h);
    CHECK_MESSAGE(good.ok(), good.description);
    MESSAGE(name << ": " << w.clients << " clients x " << w.ops_per_client << " ops on " << w.keys
                 << " key(s), values up to " << longest << " bytes: " << to_string(good.result) << " in "
                 << good_ms << " ms");

    // A read in the middle shows an element twice: no state ever looks like that, so the search must
    // exhaust everything before that read to answer.
    std::vector<kv_operation> doubled = h;
    std::size_t victim = doubled.size() / 2;
    while (victim < doubled.size() &&
           (doubled[victim].op != kind::get || doubled[victim].output.find('x') == std::string::npos)) {
      ++victim;
    }
    REQUIRE(victim < doubled.size());
    std::string& out = doubled[victim].output;
    const std::size_t first = out.find('x');
    out += out.substr(first, out.find('y', first) - first + 1);
    const auto [doubled_result, doubled_ms] = timed_check(doubled);
    CHECK(doubled_result.illegal());
    CHECK(doubled_result.key == doubled[victim].key);
    MESSAGE(name << ", one read doubles an element: " << to_string(doubled_result.result) << " in "
                 << doubled_ms << " ms: " << doubled_result.description);

    // A read misses a middle element of its value (a lost append).
    std::vector<kv_operation> lost = h;
    victim = lost.size() / 3;
    while (victim < lost.size() &&
           (lost[victim].op != kind::get ||
            std::count(lost[victim].output.begin(), lost[victim].output.end(), 'x') < 3)) {
      ++victim;
    }
    REQUIRE(victim < lost.size());
    std::string& out2 = lost[victim].output;
    const std::size_t second = out2.find('x', out2.find('x') + 1);
    out2.erase(second, out2.find('y', second) - second + 1);
    const auto [lost_result, lost_ms] = timed_check(lost);
    CHECK(lost_result.illegal());
    MESSAGE(name << ", one read loses an element: " << to_string(lost_result.result) << " in " << lost_ms
                 << " ms");
  }

  TEST_CASE("an exhausted budget answers unknown") {
    workload w;
    w.ops_per_client = 500;
    const std::vector<kv_operation> h = simulate(w);
    const check_result r = check_linearizable(h, 0ms);
    CHECK(r.unknown());
    CHECK(check_linearizable(h, 5000ms).ok());
  }
}

}  // namespace
}  // namespace mrkv::test
