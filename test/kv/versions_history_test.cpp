// Issue 13's history check: ten clients race versioned gets, conditional puts and appends, removes and
// unconditional puts on a few keys for a second, reliably and through the fault-injecting proxy; the
// recorded history (412s with the version they named, "maybe applied" outcomes left pending) is
// linearizable under the checker's versioned model, and stops being so once one deliberately stale put
// is recorded as accepted.
#include "kv/harness.hpp"
#include "mrkv/kv/clerk.hpp"
#include "support/fault_proxy.hpp"
#include "support/linearizability.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace mrkv::kv_test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using op_kind = test::kv_operation::kind;
using status = kv::write_outcome::status;

// Far above any version the run reaches: a put conditioned on it is always refused.
constexpr std::uint64_t never_reached = 1'000'000;

struct tally {
  int ok = 0, mismatched = 0, maybe = 0;
};

void record(test::history_recorder& history, test::history_recorder::handle h, const kv::write_outcome& r,
            std::string old_value, tally& t) {
  switch (r.result) {
    case status::ok:
      history.end(h, std::move(old_value), r.version);
      ++t.ok;
      break;
    case status::version_mismatch:
      history.end(h, "", r.version, true);
      ++t.mismatched;
      break;
    default:  // maybe applied: the outcome is unknown, so the operation stays pending
      ++t.maybe;
      break;
  }
}

void race_versioned_history(bool unreliable) {
  local_server server;
  std::optional<test::fault_proxy> proxy;
  http::url url = server.url();
  if (unreliable) {
    test::fault_proxy_config c;
    c.upstream_port = server.port();
    proxy.emplace(c);
    proxy->start();
    url = http::parse_url("http://" + proxy->address());
  }
  const std::vector<std::string> keys{"v0", "v1", "v2"};
  test::history_recorder history;
  asio::io_context context;
  tally t;
  int running = 10;
  const auto stop_at = std::chrono::steady_clock::now() + 1s;
  std::vector<std::unique_ptr<kv::clerk>> clerks;
  for (int c = 0; c < 10; ++c) {
    kv::clerk_options o;
    o.attempt_timeout = 1s;
    o.deadline = 60s;
    clerks.push_back(std::make_unique<kv::clerk>(context.get_executor(), url, o));
    asio::co_spawn(
        context,
        [&, ck = clerks.back().get(), c]() -> asio::awaitable<void> {
          std::mt19937_64 rng(static_cast<std::uint64_t>(c) * 7919 + 1);
          for (int n = 0; std::chrono::steady_clock::now() < stop_at; ++n) {
            const auto& key = keys[rng() % keys.size()];
            const std::string value = std::to_string(c) + "." + std::to_string(n);
            auto g = history.begin(c, op_kind::get, key);
            auto seen = co_await ck->get_versioned(key);
            history.end(g, seen.value, seen.version);
            const auto dice = rng() % 10;
            if (dice < 5) {
              auto h = history.begin(c, op_kind::put, key, value, seen.version);
              record(history, h, co_await ck->put(key, value, seen.version), "", t);
            } else if (dice < 6) {
              auto h = history.begin(c, op_kind::put, key, value, never_reached);
              record(history, h, co_await ck->put(key, value, never_reached), "", t);
            } else if (dice < 7) {
              kv::write_options w;
              w.expected_version = seen.version;
              auto h = history.begin(c, op_kind::append, key, "+" + value, seen.version);
              auto r = co_await ck->append(key, "+" + value, w);
              record(history, h, r, r.old_value, t);
            } else if (dice < 8) {
              auto h = history.begin(c, op_kind::remove, key, "", seen.version);
              record(history, h, co_await ck->remove(key, seen.version), "", t);
            } else {
              auto h = history.begin(c, op_kind::put, key, value);
              record(history, h, co_await ck->put(key, value, kv::write_options{}), "", t);
            }
          }
          --running;
        },
        asio::detached);
  }
  context.run_for(120s);
  REQUIRE(running == 0);
  auto ops = history.operations();
  MESSAGE(ops.size() << " operations: " << t.ok << " writes ok, " << t.mismatched << " refused with 412, " << t.maybe
                     << " maybe applied");
  CHECK(t.ok > 10);
  CHECK(t.mismatched > 10);
  auto verdict = test::check_linearizable(ops, 60s);
  MESSAGE("versioned linearizability: " << test::to_string(verdict.result));
  CHECK_MESSAGE(verdict.ok(), "key '" << verdict.key << "': " << verdict.description);

  // The check has teeth on this very history: one stale put recorded as accepted makes it illegal.
  auto stale = std::find_if(ops.begin(), ops.end(), [](const test::kv_operation& op) {
    return op.expected_version == never_reached && op.output_known && op.mismatch;
  });
  REQUIRE(stale != ops.end());
  stale->mismatch = false;
  stale->output_version = never_reached + 1;
  auto spoilt = test::check_linearizable(ops, 60s);
  CHECK(spoilt.illegal());
  CHECK(spoilt.key == stale->key);
}

TEST_SUITE("kv") {

TEST_CASE("versions: ten clients' versioned history is linearizable, reliable") { race_versioned_history(false); }
TEST_CASE("versions: ten clients' versioned history is linearizable, unreliable") { race_versioned_history(true); }

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::kv_test
