// The checker's versioned model (issue 13): conditional puts and appends that apply only on a matching
// version and otherwise answer 412 naming the current one, gets with versions, removes back to version
// 0, pending conditional writes; hand-made histories, and agreement with an exhaustive search on small
// random ones.
#include "support/linearizability.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace mrkv::test {
namespace {

using kind = kv_operation::kind;
using namespace std::chrono_literals;
using version_t = std::optional<std::uint64_t>;

kv_operation op_of(int client, kind k, std::string key, std::string input, std::string output, std::int64_t call,
                   std::int64_t ret) {
  kv_operation op;
  op.client = client;
  op.op = k;
  op.key = std::move(key);
  op.input = std::move(input);
  op.output = std::move(output);
  op.output_known = true;
  op.call_ns = call;
  op.return_ns = ret;
  return op;
}
// A get answered with a value and a version.
kv_operation vget(int client, std::string key, std::string value, std::uint64_t version, std::int64_t call,
                  std::int64_t ret) {
  auto op = op_of(client, kind::get, std::move(key), {}, std::move(value), call, ret);
  op.output_version = version;
  return op;
}
// A put (with `expected` as its condition, if any) answered ok with the key's new version.
kv_operation vput(int client, std::string key, std::string input, version_t expected, std::uint64_t now,
                  std::int64_t call, std::int64_t ret) {
  auto op = op_of(client, kind::put, std::move(key), std::move(input), {}, call, ret);
  op.expected_version = expected;
  op.output_version = now;
  return op;
}
// A conditional put answered 412 with the key's current version.
kv_operation vput_412(int client, std::string key, std::string input, std::uint64_t expected, std::uint64_t current,
                      std::int64_t call, std::int64_t ret) {
  auto op = op_of(client, kind::put, std::move(key), std::move(input), {}, call, ret);
  op.expected_version = expected;
  op.output_version = current;
  op.mismatch = true;
  return op;
}
kv_operation vappend(int client, std::string key, std::string input, std::string old, version_t expected,
                     std::uint64_t now, std::int64_t call, std::int64_t ret) {
  auto op = op_of(client, kind::append, std::move(key), std::move(input), std::move(old), call, ret);
  op.expected_version = expected;
  op.output_version = now;
  return op;
}
kv_operation vremove(int client, std::string key, version_t expected, std::int64_t call, std::int64_t ret) {
  auto op = op_of(client, kind::remove, std::move(key), {}, {}, call, ret);
  op.expected_version = expected;
  op.output_version = 0;
  return op;
}
kv_operation vpending(int client, kind k, std::string key, std::string input, version_t expected, std::int64_t call) {
  kv_operation op;
  op.client = client;
  op.op = k;
  op.key = std::move(key);
  op.input = std::move(input);
  op.expected_version = expected;
  op.call_ns = call;
  return op;
}

check_result check(const std::vector<kv_operation>& h) { return check_linearizable(h, 5000ms); }

// The versioned model written down once more, independently of the checker: applies `op` to `state`;
// false if its recorded answer is impossible there. A pending operation may always be applied (a write
// whose condition fails then changes nothing).
bool apply(const kv_operation& op, std::pair<std::string, std::uint64_t>& state) {
  auto& [value, version] = state;
  const bool answered = op.output_known;
  auto named = [&](std::uint64_t v) { return !answered || !op.output_version || *op.output_version == v; };
  if (op.op == kind::get) return !answered || (op.output == value && named(version));
  const bool holds = !op.expected_version || *op.expected_version == version;
  if (answered && op.mismatch) return !holds && named(version);
  if (!holds) return !answered;
  if (op.op == kind::remove) {
    if (!named(0)) return false;
    state = {"", 0};
    return true;
  }
  if (!named(version + 1)) return false;
  if (op.op == kind::append) {
    if (answered && op.output != value) return false;
    value += op.input;
  } else {
    value = op.input;
  }
  ++version;
  return true;
}

// The definition by exhaustive search: some order of all answered operations and any subset of the
// pending ones that respects real time and the model.
bool brute_force_linearizable(const std::vector<kv_operation>& h) {
  const std::size_t n = h.size();
  std::vector<bool> used(n, false);
  std::size_t completed = 0;
  for (const auto& op : h) completed += op.output_known ? 1 : 0;
  auto ret = [](const kv_operation& op) { return op.output_known ? op.return_ns : kv_operation::pending_return; };
  using store = std::map<std::string, std::pair<std::string, std::uint64_t>>;
  auto search = [&](auto& self, store& s, std::size_t placed) -> bool {
    if (placed == completed) return true;
    for (std::size_t i = 0; i < n; ++i) {
      if (used[i]) continue;
      bool ready = true;
      for (std::size_t j = 0; j < n && ready; ++j) ready = used[j] || ret(h[j]) >= h[i].call_ns;
      if (!ready) continue;
      auto& state = s[h[i].key];
      const auto saved = state;
      if (!apply(h[i], state)) {
        state = saved;
        continue;
      }
      used[i] = true;
      const bool ok = self(self, s, placed + (h[i].output_known ? 1 : 0));
      used[i] = false;
      s[h[i].key] = saved;
      if (ok) return true;
    }
    return false;
  };
  store s;
  return search(search, s, 0);
}

TEST_SUITE("linearizability") {
  TEST_CASE("versioned: a sequential history of conditional writes and removes is accepted") {
    const std::vector<kv_operation> h{
        vget(0, "k", "", 0, 0, 1),
        vput(0, "k", "a", 0, 1, 2, 3),
        vput_412(0, "k", "b", 0, 1, 4, 5),
        vput_412(0, "other", "b", 1, 0, 4, 5),
        vappend(0, "k", "+", "a", 1, 2, 6, 7),
        vget(0, "k", "a+", 2, 8, 9),
        vremove(0, "k", 2, 10, 11),
        vget(0, "k", "", 0, 12, 13),
        vremove(0, "k", std::nullopt, 14, 15),  // removing a missing key is no error
        vput(0, "k", "c", std::nullopt, 1, 16, 17),
        vget(0, "k", "c", 1, 18, 19),
    };
    CHECK(check(h).ok());
  }

  TEST_CASE("versioned: a stale conditional put that was accepted is rejected") {
    const std::vector<kv_operation> h{
        vput(0, "k", "a", 0, 1, 0, 1),
        vput(1, "k", "b", 0, 1, 2, 3),  // version 0 is long gone
    };
    const check_result r = check(h);
    REQUIRE(r.illegal());
    CHECK(r.key == "k");
    CHECK(r.description.find("if version 0") != std::string::npos);
    MESSAGE(r.description);
  }

  TEST_CASE("versioned: of two racing puts on one version only one succeeds") {
    SUBCASE("both accepted: rejected") {
      CHECK(check({vput(0, "k", "a", 0, 1, 0, 10), vput(1, "k", "b", 0, 1, 1, 9)}).illegal());
    }
    SUBCASE("both accepted, answers naming versions 1 and 2: still rejected") {
      CHECK(check({vput(0, "k", "a", 0, 1, 0, 10), vput(1, "k", "b", 0, 2, 1, 9)}).illegal());
    }
    SUBCASE("one accepted, one 412 naming version 1: accepted") {
      CHECK(check({vput(0, "k", "a", 0, 1, 0, 10), vput_412(1, "k", "b", 0, 1, 1, 9)}).ok());
    }
    SUBCASE("the 412 answered before the winner was called: rejected") {
      CHECK(check({vput_412(1, "k", "b", 0, 1, 0, 1), vput(0, "k", "a", 0, 1, 2, 3)}).illegal());
    }
  }

  TEST_CASE("versioned: a 412 happens only on a mismatch and names the current version") {
    const auto first = vput(0, "k", "a", 0, 1, 0, 1);
    CHECK(check({first, vput_412(1, "k", "b", 5, 1, 2, 3)}).ok());
    CHECK(check({first, vput_412(1, "k", "b", 1, 1, 2, 3)}).illegal());  // version 1 matched: it had to apply
    CHECK(check({first, vput_412(1, "k", "b", 0, 0, 2, 3)}).illegal());  // the current version is 1, not 0
  }

  TEST_CASE("versioned: gets and answers carry the right versions") {
    const auto first = vput(0, "k", "a", std::nullopt, 1, 0, 1);
    CHECK(check({first, vget(1, "k", "a", 1, 2, 3)}).ok());
    CHECK(check({first, vget(1, "k", "a", 2, 2, 3)}).illegal());
    CHECK(check({first, vput(1, "k", "b", std::nullopt, 3, 2, 3)}).illegal());  // the second put makes version 2
    CHECK(check({first, vappend(1, "k", "b", "a", std::nullopt, 2, 2, 3), vget(0, "k", "ab", 2, 4, 5)}).ok());
  }

  TEST_CASE("versioned: unversioned puts and appends count versions too") {
    // Issue 4's operations recorded without versions, read back by a versioned get.
    const std::vector<kv_operation> h{
        op_of(0, kind::put, "k", "a", {}, 0, 1),
        op_of(0, kind::append, "k", "b", "a", 2, 3),
        vget(1, "k", "ab", 2, 4, 5),
    };
    CHECK(check(h).ok());
    auto wrong = h;
    wrong[2].output_version = 1;
    CHECK(check(wrong).illegal());
  }

  TEST_CASE("versioned: a remove returns the key to version 0") {
    const std::vector<kv_operation> base{
        vput(0, "k", "a", 0, 1, 0, 1),
        vput(0, "k", "b", std::nullopt, 2, 2, 3),
        vremove(0, "k", 2, 4, 5),
    };
    auto again = base;
    again.push_back(vput(0, "k", "c", 0, 1, 6, 7));
    CHECK(check(again).ok());
    auto stale = base;
    stale.push_back(vput(0, "k", "c", 2, 3, 6, 7));
    CHECK(check(stale).illegal());
    auto remove_412 = base;
    remove_412.push_back(vremove(0, "k", 1, 6, 7));  // accepted though version 0 != 1
    CHECK(check(remove_412).illegal());
  }

  TEST_CASE("versioned: a pending conditional write applies at most once, and only where its condition holds") {
    const auto maybe = vpending(0, kind::put, "k", "x", 0, 0);
    CHECK(check({maybe, vget(1, "k", "x", 1, 5, 6)}).ok());
    CHECK(check({maybe, vget(1, "k", "", 0, 5, 6)}).ok());
    CHECK(check({maybe, vget(1, "k", "", 0, 5, 6), vget(1, "k", "x", 1, 7, 8)}).ok());
    CHECK(check({maybe, vget(1, "k", "x", 1, 5, 6), vget(1, "k", "", 0, 7, 8)}).illegal());
    // Its condition never holds: it cannot have written x.
    CHECK(check({vpending(0, kind::put, "k", "x", 3, 0), vget(1, "k", "x", 1, 5, 6)}).illegal());
    // After another put took version 0 -> 1, it cannot apply either.
    CHECK(check({vput(1, "k", "y", 0, 1, 0, 1), vpending(0, kind::put, "k", "x", 0, 2), vget(1, "k", "x", 2, 5, 6)})
              .illegal());
    // A pending remove may empty the key, once.
    CHECK(check({vput(1, "k", "y", 0, 1, 0, 1), vpending(0, kind::remove, "k", "", 1, 2), vget(1, "k", "", 0, 5, 6),
                 vput(1, "k", "z", 0, 1, 7, 8)})
              .ok());
  }

  TEST_CASE("versioned: the failing key's state is described with its version") {
    const check_result r = check({vput(0, "k", "a", 0, 1, 0, 1), vget(1, "k", "a", 7, 2, 3)});
    REQUIRE(r.illegal());
    CHECK(r.description.find("version 7") != std::string::npos);
    MESSAGE(r.description);
  }

  TEST_CASE("versioned: agrees with an exhaustive search on small random histories") {
    std::mt19937_64 rng(7);
    auto pick = [&rng](int n) { return static_cast<int>(std::uniform_int_distribution<int>(0, n - 1)(rng)); };
    const std::vector<std::string> values{"", "a", "b", "ab", "ba", "aa"};
    int accepted = 0, rejected = 0;
    for (int round = 0; round < 20000; ++round) {
      const bool simulated = round % 2 == 1;
      std::vector<kv_operation> h;
      const int n = 2 + pick(6);
      for (int i = 0; i < n; ++i) {
        kv_operation op;
        op.client = i;
        op.op = static_cast<kind>(pick(4));
        op.key = pick(4) == 0 ? "j" : "k";
        if (op.op == kind::put || op.op == kind::append) op.input = std::string(1, static_cast<char>('a' + pick(2)));
        if (op.op != kind::get && pick(3) != 0) op.expected_version = static_cast<std::uint64_t>(pick(3));
        op.call_ns = pick(10);
        op.output_known = pick(simulated ? 3 : 5) != 0;
        op.return_ns = op.output_known ? op.call_ns + pick(6) : kv_operation::pending_return;
        if (op.output_known) {
          if (op.op == kind::get || op.op == kind::append) op.output = values[static_cast<std::size_t>(pick(6))];
          op.mismatch = op.expected_version && pick(2) == 0;
          if (pick(4) != 0) op.output_version = static_cast<std::uint64_t>(pick(4));
        }
        h.push_back(op);
      }
      if (simulated) {
        // Answers from a real execution: each operation takes effect at a random instant of its interval,
        // a pending one maybe never; some answers drop their version; then sometimes one is spoilt.
        std::vector<std::pair<int, std::size_t>> order;
        for (std::size_t i = 0; i < h.size(); ++i) {
          const int end = h[i].output_known ? static_cast<int>(h[i].return_ns) : 20;
          if (!h[i].output_known && pick(2) == 0) continue;
          order.emplace_back(
              2 * (static_cast<int>(h[i].call_ns) + pick(end - static_cast<int>(h[i].call_ns) + 1)) + pick(2), i);
        }
        std::sort(order.begin(), order.end());
        std::map<std::string, std::pair<std::string, std::uint64_t>> store;
        for (const auto& [at, i] : order) {
          kv_operation& op = h[i];
          auto& [value, version] = store[op.key];
          const bool holds = !op.expected_version || *op.expected_version == version;
          op.mismatch = op.op != kind::get && !holds;
          if (op.op == kind::get || op.op == kind::append) op.output = value;
          if (op.op != kind::get && holds) {
            if (op.op == kind::remove) {
              value.clear();
              version = 0;
            } else {
              value = op.op == kind::put ? op.input : value + op.input;
              ++version;
            }
          }
          op.output_version = pick(5) == 0 ? version_t{} : version_t{version};
          if (!op.output_known) {
            op.output.clear();
            op.mismatch = false;
            op.output_version.reset();
          }
        }
        if (pick(3) == 0) {
          kv_operation& spoilt = h[static_cast<std::size_t>(pick(n))];
          if (spoilt.output_known) {
            switch (pick(3)) {
              case 0:
                spoilt.output_version = static_cast<std::uint64_t>(pick(4));
                break;
              case 1:
                spoilt.mismatch = spoilt.expected_version && !spoilt.mismatch;
                break;
              default:
                spoilt.output = values[static_cast<std::size_t>(pick(6))];
                break;
            }
          }
        }
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

  TEST_CASE("versioned: history_recorder keeps conditions, versions and 412s") {
    history_recorder rec;
    auto put = rec.begin(0, kind::put, "k", "a", 0);
    rec.end(put, "", 1);
    auto lost = rec.begin(1, kind::put, "k", "b", 0);
    rec.end(lost, "", 1, true);
    auto get = rec.begin(0, kind::get, "k");
    rec.end(get, "a", 1);
    rec.begin(1, kind::remove, "k", "", 1);  // never answered: pending
    const auto ops = rec.operations();
    REQUIRE(ops.size() == 4);
    CHECK(ops[0].expected_version == 0);
    CHECK(ops[0].output_version == 1);
    CHECK_FALSE(ops[0].mismatch);
    CHECK(ops[1].mismatch);
    CHECK(ops[2].output == "a");
    CHECK_FALSE(ops[3].output_known);
    CHECK(ops[3].versioned());
    CHECK(check(ops).ok());
  }
}

}  // namespace
}  // namespace mrkv::test
