// name_lookup: a lookup that hangs costs its caller the deadline and no more, and the next wait picks
// up the same lookup instead of starting another.
#include "mrkv/http/name_lookup.hpp"
#include "support/async.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/error.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

namespace {

using namespace std::chrono_literals;
using mrkv::http::name_lookup;
using steady = std::chrono::steady_clock;

// A resolver that blocks until the test opens the gate, like getaddrinfo against a silent DNS server.
struct gate {
  std::mutex mutex;
  std::condition_variable opened_signal;
  bool opened = false;
  std::atomic<int> lookups{0};

  void open() {
    std::lock_guard lock(mutex);
    opened = true;
    opened_signal.notify_all();
  }
};

name_lookup::blocking_resolver held_at(const std::shared_ptr<gate>& g) {
  return [g](const std::string& host, const std::string& service, boost::system::error_code& ec) {
    ++g->lookups;
    std::unique_lock lock(g->mutex);
    g->opened_signal.wait(lock, [&] { return g->opened; });
    auto address = boost::asio::ip::make_address("127.0.0.1");
    return name_lookup::results::create(boost::asio::ip::tcp::endpoint(address, 7800), host, service);
  };
}

}  // namespace

TEST_SUITE("http") {

TEST_CASE("name lookup: a hung lookup costs the deadline - the next wait joins it and gets its answer") {
  auto g = std::make_shared<gate>();
  boost::asio::io_context context;
  name_lookup lookup("kv.example", "7800", held_at(g));

  const auto started = steady::now();
  auto [ec, found] = mrkv::test::run_until_done(context, lookup.wait(steady::now() + 200ms), 5s);
  const auto waited = steady::now() - started;
  CHECK(ec == boost::beast::error::timeout);
  CHECK(waited >= 190ms);
  CHECK(waited < 2s);

  auto [again_ec, again] = mrkv::test::run_until_done(context, lookup.wait(steady::now() + 100ms), 5s);
  CHECK(again_ec == boost::beast::error::timeout);
  CHECK(g->lookups.load() == 1);  // still the first lookup, not a second thread beside it

  g->open();
  auto [answer_ec, answer] = mrkv::test::run_until_done(context, lookup.wait(steady::now() + 5s), 10s);
  CHECK(!answer_ec);
  REQUIRE(answer.size() == 1);
  CHECK(answer.begin()->endpoint().port() == 7800);
  CHECK(g->lookups.load() == 1);
}

TEST_CASE("name lookup: a lookup that outlives its name_lookup finishes harmlessly") {
  auto g = std::make_shared<gate>();
  {
    boost::asio::io_context context;
    name_lookup lookup("kv.example", "7800", held_at(g));
    auto [ec, found] = mrkv::test::run_until_done(context, lookup.wait(steady::now() + 50ms), 5s);
    CHECK(ec == boost::beast::error::timeout);
  }
  g->open();  // the detached thread now finishes into state that only it still holds
  CHECK(g->lookups.load() == 1);
}

TEST_CASE("name lookup: localhost through getaddrinfo") {
  boost::asio::io_context context;
  name_lookup lookup("localhost", "7800");
  auto [ec, found] = mrkv::test::run_until_done(context, lookup.wait(steady::now() + 5s), 10s);
  CHECK(!ec);
  CHECK(found.size() >= 1);
  for (const auto& entry : found) CHECK(entry.endpoint().address().is_loopback());
}

}  // TEST_SUITE
