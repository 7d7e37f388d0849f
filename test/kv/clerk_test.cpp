// The clerk library against a kvserver in this process: keep-alive, reconnecting after the server went
// away, the same request id across retries, refusals surfaced without retrying, and the deadline.

#include "kv/harness.hpp"
#include "mrkv/kv/clerk.hpp"
#include "support/async.hpp"
#include "support/process.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <doctest/doctest.h>

#include <future>
#include <string>

namespace mrkv::kv_test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST_SUITE("kv") {

TEST_CASE("clerk: get, put and append over one kept-alive connection") {
  local_server server;
  asio::io_context context;
  kv::Clerk ck(context.get_executor(), server.url());
  CHECK(ck.client_id().size() == 16);
  CHECK(ck.client_id().find_first_not_of("0123456789abcdef") == std::string::npos);
  auto run = [&]() -> asio::awaitable<void> {
    CHECK(co_await ck.get("k") == "");
    co_await ck.put("k", "a");
    for (int i = 0; i < 20; ++i) CHECK(co_await ck.append("k", "b") == "a" + std::string(i, 'b'));
    CHECK(co_await ck.get("k") == "a" + std::string(20, 'b'));
  };
  test::run_until_done(context, run());
  CHECK(ck.last_seq() == 21);
  CHECK(ck.attempts() == 23);
  CHECK(ck.connections_opened() == 1);
  CHECK(kv::clerk(context.get_executor(), server.url()).client_id() != ck.client_id());
}

TEST_CASE("clerk: keeps retrying while the server is down and reconnects when it is back") {
  std::uint16_t port;
  asio::io_context context;
  kv::clerk_options options;
  options.backoff_max = 50ms;
  kv::clerk ck(context.get_executor(), local_url(0), options);
  {
    local_server first;
    port = first.port();
    ck = kv::clerk(context.get_executor(), first.url(), options);
    test::run_until_done(context, ck.put("k", "before"));
  }
  // The server is gone: the next call fails attempt after attempt until one comes back on its port.
  auto pending = asio::co_spawn(context, ck.append("k", "+after"), asio::use_future);
  context.restart();
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (ck.attempts() < 4 && std::chrono::steady_clock::now() < deadline) context.run_one_for(100ms);
  REQUIRE(ck.attempts() >= 4);
  CHECK(pending.wait_for(0s) != std::future_status::ready);
  kv::server_options again;
  again.http.port = port;
  again.http.threads = 1;
  local_server second(again);
  while (pending.wait_for(0s) != std::future_status::ready && std::chrono::steady_clock::now() < deadline)
    context.run_one_for(100ms);
  REQUIRE(pending.wait_for(0s) == std::future_status::ready);
  CHECK(pending.get() == "");  // the new server's map is empty
  CHECK(second.data().get("k") == "+after");
  CHECK(ck.connections_opened() == 2);
}

TEST_CASE("clerk: an answer that says no is thrown at once, not retried") {
  local_server server;
  asio::io_context context;
  kv::clerk_options shared;
  shared.client_id = "one-id-two-clerks";
  kv::clerk first(context.get_executor(), server.url(), shared);
  kv::clerk second(context.get_executor(), server.url(), shared);
  test::run_until_done(context, first.put("k", "1"));
  test::run_until_done(context, first.put("k", "2"));
  // `second` starts at seq 1, below the id's latest (2): the server refuses with 409.
  try {
    test::run_until_done(context, second.put("k", "stale"));
    FAIL("the stale write was accepted");
  } catch (const kv::clerk_error& e) {
    CHECK(e.why() == kv::clerk_error::reason::rejected);
    CHECK(e.status() == 409);
  }
  CHECK(second.attempts() == 1);
  CHECK(server.data().get("k") == "2");
}

TEST_CASE("clerk: the deadline bounds the whole call against a server that never answers") {
  silent_listener silent;
  asio::io_context context;
  kv::clerk_options options;
  options.deadline = 300ms;
  kv::clerk ck(context.get_executor(), local_url(silent.port()), options);
  auto started = std::chrono::steady_clock::now();
  try {
    test::run_until_done(context, ck.put("k", "v"));
    FAIL("a silent server answered");
  } catch (const kv::clerk_error& e) {
    CHECK(e.why() == kv::clerk_error::reason::deadline_exceeded);
    CHECK(std::string(e.what()).starts_with("server http://127.0.0.1:" + std::to_string(silent.port()) +
                                            " did not answer within 0.3 s (last: timed out"));
    CHECK(e.last_failure().find("timed out") != std::string::npos);
  }
  auto took = std::chrono::steady_clock::now() - started;
  CHECK(took >= 300ms);
  CHECK(took < 10s);
}

TEST_CASE("clerk: names the last cause at its deadline - and stops at once on what retrying cannot fix") {
  asio::io_context context;
  kv::clerk_options options;
  options.deadline = 500ms;
  const auto refusing = local_url(test::unused_port());
  kv::clerk refused(context.get_executor(), refusing, options);
  try {
    test::run_until_done(context, refused.get("k"));
    FAIL("nothing listens, yet an answer came");
  } catch (const kv::clerk_error& e) {
    CHECK(e.why() == kv::clerk_error::reason::deadline_exceeded);
    CHECK(std::string(e.what()).find("did not answer within 0.5 s (last: connecting to 127.0.0.1:") != std::string::npos);
    CHECK(std::string(e.what()).find("refused)") != std::string::npos);
    CHECK(refused.attempts() > 1);  // refused is worth retrying: the server may be starting
  }

  // TLS spoken to a plain-HTTP server fails the handshake the same way every time.
  local_server server;
  auto tls_url = server.url();
  tls_url.scheme = "https";
  options.deadline = 30s;
  kv::clerk mismatched(context.get_executor(), tls_url, options);
  const auto started = std::chrono::steady_clock::now();
  try {
    test::run_until_done(context, mismatched.get("k"));
    FAIL("a TLS call to a plain-HTTP server succeeded");
  } catch (const kv::clerk_error& e) {
    CHECK(e.why() == kv::clerk_error::reason::unreachable);
    CHECK(std::string(e.what()).find("cannot be reached: TLS handshake with 127.0.0.1:") != std::string::npos);
  }
  CHECK(mismatched.attempts() == 1);
  CHECK(std::chrono::steady_clock::now() - started < 5s);
}

TEST_CASE("clerk: refuses what JSON cannot carry, and overlapping calls on one clerk") {
  local_server server;
  asio::io_context context;
  kv::clerk ck(context.get_executor(), server.url());
  CHECK_THROWS_AS(test::run_until_done(context, ck.put("k", "\xff")), std::invalid_argument);
  CHECK_THROWS_AS(test::run_until_done(context, ck.get("\xc3")), std::invalid_argument);
  auto first = asio::co_spawn(context, ck.get("a"), asio::use_future);
  auto second = asio::co_spawn(context, ck.get("b"), asio::use_future);
  context.restart();
  context.run();
  CHECK(first.get() == "");
  CHECK_THROWS_AS(second.get(), std::logic_error);
}

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::kv_test
