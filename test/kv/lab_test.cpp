// The lab's kvsrv tests (lab-spec B6) one by one, with the same clients, durations and checks, over real
// sockets: clerks in this thread, the kvserver in this process on its own threads, and for the
// unreliable tests the fault proxy between them (requests dropped before the server, replies dropped
// after it executed, delays of 0-26 ms). Every history also goes through the linearizability checker.
// Last, the same unreliable run against a server with its duplicate table off, which must be caught.

#include "kv/harness.hpp"
#include "mrkv/kv/clerk.hpp"
#include "support/async.hpp"
#include "support/fault_proxy.hpp"
#include "support/linearizability.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace mrkv::kv_test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using op_kind = test::kv_operation::kind;
using clock = std::chrono::steady_clock;

// The server, reached directly or through the lossy proxy.
class network {
 public:
  explicit network(bool unreliable, bool deduplicate = true) : server_(2, deduplicate) {
    if (unreliable) {
      test::fault_proxy_config config;
      config.upstream_port = server_.port();
      proxy_.emplace(config);
      proxy_->start();
      MESSAGE("fault proxy seed " << proxy_->seed());
    }
  }
  http::url url() const { return proxy_ ? local_url(proxy_->port()) : server_.url(); }
  std::optional<test::fault_proxy_stats> proxy_stats() const {
    return proxy_ ? std::optional(proxy_->stats()) : std::nullopt;
  }

 private:
  local_server server_;
  std::optional<test::fault_proxy> proxy_;
};

// A clerk whose calls go into the shared history.
class logged_clerk {
 public:
  logged_clerk(asio::any_io_executor ex, http::url url, test::history_recorder& history, int id)
      : clerk_(std::move(ex), std::move(url)), history_(history), id_(id) {}

  asio::awaitable<std::string> get(std::string key) {
    auto h = history_.begin(id_, op_kind::get, key);
    auto value = co_await clerk_.get(std::move(key));
    history_.end(h, value);
    co_return value;
  }
  asio::awaitable<void> put(std::string key, std::string value) {
    auto h = history_.begin(id_, op_kind::put, key, value);
    co_await clerk_.put(std::move(key), std::move(value));
    history_.end(h);
  }
  asio::awaitable<std::string> append(std::string key, std::string value) {
    auto h = history_.begin(id_, op_kind::append, key, value);
    auto old = co_await clerk_.append(std::move(key), std::move(value));
    history_.end(h, old);
    co_return old;
  }
  std::uint64_t attempts() const { return clerk_.attempts(); }

 private:
  kv::clerk clerk_;
  test::history_recorder& history_;
  int id_;
};

// Runs every coroutine of `work` at once on `context` and waits for all; the first exception is rethrown.
asio::awaitable<void> all_of(asio::io_context& context, std::vector<asio::awaitable<void>> work) {
  std::size_t left = work.size();
  std::exception_ptr failure;
  asio::steady_timer all_done(context, asio::steady_timer::time_point::max());
  for (auto& w : work) {
    asio::co_spawn(context, std::move(w), [&](std::exception_ptr e) {
      if (e && !failure) failure = e;
      if (--left == 0) all_done.cancel();
    });
  }
  if (left > 0) co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  if (failure) std::rethrow_exception(failure);
}

std::string element(int client, int n) { return "x " + std::to_string(client) + " " + std::to_string(n) + " y"; }

// Each of client's elements 0..count-1 appears in `value` exactly once, in order (the lab's
// checkClntAppends); returns what is wrong, or "".
std::string check_elements(const std::string& value, int client, int count) {
  std::size_t last = 0;
  for (int n = 0; n < count; ++n) {
    auto e = element(client, n);
    auto at = value.find(e);
    if (at == std::string::npos) return "missing element " + e;
    if (value.find(e, at + 1) != std::string::npos) return "duplicate element " + e;
    if (n > 0 && at < last) return "wrong order at element " + e;
    last = at;
  }
  return "";
}

void check_history(const test::history_recorder& history) {
  auto ops = history.operations();
  auto started = clock::now();
  auto verdict = test::check_linearizable(ops, 10s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started);
  MESSAGE("linearizability: " << test::to_string(verdict.result) << " for " << ops.size() << " operations in "
                              << took.count() << " ms");
  CHECK_MESSAGE(!verdict.illegal(), "history is not linearizable: key '" << verdict.key << "': "
                                                                          << verdict.description);
}

// The lab's GenericTest(nclients, unreliable, randomkeys=false): 3 rounds; in each, nclients fresh clerks
// run for 1 s, client i on key "i": first Put(i, ""), then at random Append(i, element(i, j)) checking
// the old value, or Get(i) checking it equals its appends so far; then a checker clerk Gets every key.
void generic_test(int nclients, bool unreliable) {
  network net(unreliable);
  test::history_recorder history;
  asio::io_context context;
  std::random_device seeds;
  std::vector<std::string> failures;
  std::size_t operations = 0;

  for (int round = 0; round < 3; ++round) {
    std::vector<int> appended(nclients, 0);
    auto round_end = clock::now() + 1s;
    auto client = [&](int i, std::uint64_t seed) -> asio::awaitable<void> {
      std::mt19937_64 rng(seed);
      logged_clerk ck(context.get_executor(), net.url(), history, i);
      auto key = std::to_string(i);
      co_await ck.put(key, "");
      std::string mine;
      int j = 0;
      while (clock::now() < round_end) {
        if (rng() % 2 == 0) {
          auto next = element(i, j);
          auto old = co_await ck.append(key, next);
          if (j > 0 && old.find(element(i, j - 1)) == std::string::npos)
            failures.push_back("client " + key + ": append's old value lacks " + element(i, j - 1));
          if (old.find(next) != std::string::npos)
            failures.push_back("client " + key + ": append's old value already holds " + next);
          mine += next;
          ++j;
        } else {
          auto value = co_await ck.get(key);
          if (value != mine) failures.push_back("client " + key + ": get returned a value other than its appends");
        }
        ++operations;
      }
      appended[i] = j;
    };
    std::vector<asio::awaitable<void>> clients;
    for (int i = 0; i < nclients; ++i) clients.push_back(client(i, seeds()));
    test::run_until_done(context, all_of(context, std::move(clients)), 120s);

    auto check = [&]() -> asio::awaitable<void> {
      logged_clerk checker(context.get_executor(), net.url(), history, nclients);
      for (int i = 0; i < nclients; ++i) {
        auto value = co_await checker.get(std::to_string(i));
        if (auto problem = check_elements(value, i, appended[i]); !problem.empty())
          failures.push_back("round " + std::to_string(round) + ", key " + std::to_string(i) + ": " + problem);
      }
    };
    test::run_until_done(context, check(), 60s);
  }
  MESSAGE(operations << " client operations in 3 rounds of 1 s");
  if (auto stats = net.proxy_stats()) {
    MESSAGE("proxy: " << stats->requests << " requests, " << stats->dropped_requests << " dropped before the server, "
                      << stats->dropped_replies << " replies dropped after it");
    CHECK(stats->dropped_requests > 0);
    CHECK(stats->dropped_replies > 0);
  }
  for (const auto& f : failures) FAIL_CHECK(f);
  CHECK(failures.empty());
  check_history(history);
}

struct one_key_outcome {
  std::vector<std::string> failures;
  std::string final_value;
  int doubled = 0;  // elements found more than once in the final value
};

// The lab's TestUnreliableOneKey2: a checker clerk Puts "k" = ""; then `clients` clerks each Append to
// "k" `appends` elements in turn, each old value not yet holding the new element; at the end Get("k")
// holds every element once, in per-client order.
one_key_outcome one_key_test(network& net, test::history_recorder& history, int clients, int appends) {
  asio::io_context context;
  one_key_outcome out;
  auto setup = [&]() -> asio::awaitable<void> {
    logged_clerk checker(context.get_executor(), net.url(), history, clients);
    co_await checker.put("k", "");
  };
  test::run_until_done(context, setup(), 60s);
  auto client = [&](int me) -> asio::awaitable<void> {
    logged_clerk ck(context.get_executor(), net.url(), history, me);
    for (int n = 0; n < appends; ++n) {
      auto next = element(me, n);
      auto old = co_await ck.append("k", next);
      if (old.find(next) != std::string::npos)
        out.failures.push_back("client " + std::to_string(me) + ": append's old value already holds " + next);
    }
  };
  std::vector<asio::awaitable<void>> work;
  for (int me = 0; me < clients; ++me) work.push_back(client(me));
  test::run_until_done(context, all_of(context, std::move(work)), 120s);
  auto finish = [&]() -> asio::awaitable<void> {
    logged_clerk checker(context.get_executor(), net.url(), history, clients);
    out.final_value = co_await checker.get("k");
  };
  test::run_until_done(context, finish(), 60s);
  for (int me = 0; me < clients; ++me) {
    if (auto problem = check_elements(out.final_value, me, appends); !problem.empty()) out.failures.push_back(problem);
    for (int n = 0; n < appends; ++n) {
      auto e = element(me, n);
      auto at = out.final_value.find(e);
      if (at != std::string::npos && out.final_value.find(e, at + 1) != std::string::npos) ++out.doubled;
    }
  }
  return out;
}

TEST_SUITE("kv_lab") {

TEST_CASE("lab: one client (TestBasic2)") { generic_test(1, false); }

TEST_CASE("lab: many clients (TestConcurrent2)") { generic_test(5, false); }

TEST_CASE("lab: unreliable net, many clients (TestUnreliable2)") { generic_test(5, true); }

TEST_CASE("lab: concurrent append to same key, unreliable (TestUnreliableOneKey2)") {
  network net(true);
  test::history_recorder history;
  auto out = one_key_test(net, history, 5, 10);
  for (const auto& f : out.failures) FAIL_CHECK(f);
  CHECK(out.doubled == 0);
  check_history(history);
}

TEST_CASE("lab: without the duplicate table the unreliable one-key run is caught") {
  // Same clients and network, 40 appends each: with 10% of replies lost, some append is retried after
  // it executed (the chance that none of 200 is: 0.9^200, about 1e-9), and without the table it runs twice.
  network net(true, false);
  test::history_recorder history;
  auto out = one_key_test(net, history, 5, 40);
  MESSAGE(out.doubled << " appends applied twice; " << out.failures.size() << " client-side check failures");
  CHECK(out.doubled > 0);
  CHECK_FALSE(out.failures.empty());
  auto ops = history.operations();
  auto started = clock::now();
  auto verdict = test::check_linearizable(ops, 20s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started);
  MESSAGE("linearizability without the table: " << test::to_string(verdict.result) << " for " << ops.size()
                                                 << " operations in " << took.count() << " ms");
  CHECK(verdict.illegal());
}

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::kv_test
