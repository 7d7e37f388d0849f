// The lab's six memory tests (lab-spec B6) against a real `mrkv kvserver` process, measuring its resident
// set (VmRSS) instead of Go's heap, with the issue's limits:
//   get:               10 MiB Put, two Gets through the lossy proxy, Put "0": grows < 10 MiB
//   put:               10 MiB Put, then Put "":                                grows < 10 MiB
//   append:            two clerks each Append 10 MiB to one key:               grows < 30 MiB
//   many put clients:  100,000 clients, one 1,000-byte Put each:               grows < 200 bytes per client
//   many get clients:  100,000 Gets:                                           grows < 10 bytes per client
//   many appends:      one clerk, 1,000 Appends of 1,000 bytes:                grows < 3,000,000 bytes
// Each baseline is taken after a warm-up (see warm_up), as the lab takes its baseline after creating its
// clerks. The 100,000-client tests send raw requests with distinct client ids over a few keep-alive
// connections, which are also opened and used once before the baseline. Under sanitizers the figures
// are printed but not checked (ASan's quarantine and TSan's shadow memory are not the server's), and
// the many-client and many-append tests do a tenth of their operations.

#include "kv/harness.hpp"
#include "mrkv/http/client.hpp"
#include "mrkv/kv/clerk.hpp"
#include "mrkv/kv/protocol.hpp"
#include "support/async.hpp"
#include "support/fault_proxy.hpp"

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace mrkv::kv_test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr std::size_t mib = 1 << 20;
constexpr int many_clients = sanitized ? 10'000 : 100'000;
// Each append's reply carries the old value (up to 1 MB), which the clerk parses: 500 MB of JSON in all,
// minutes under a sanitizer.
constexpr int many_appends = sanitized ? 100 : 1'000;

std::string random_letters(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, 'a');
  for (auto& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

// The server's growth since `before`, as a signed byte count (it can shrink).
long long growth(const server_process& server, std::size_t before) {
  return static_cast<long long>(server.rss()) - static_cast<long long>(before);
}

struct measure {
  std::size_t at_start = 0;
  std::size_t baseline = 0;
};

// The baseline is taken after one small get, put and append on another key over a connection of its
// own: those page in the code and create the per-thread arenas, which the lab's Go heap figure never
// counted, so what is measured after it is the state the test's operations leave behind.
measure warm_up(const server_process& server) {
  measure m;
  m.at_start = server.rss();
  asio::io_context context;
  http::client client(context.get_executor(), server.url());
  for (const auto& [target, body] : {std::pair{"/v1/get", R"({"key":"warm-up"})"},
                                     std::pair{"/v1/put", R"({"key":"warm-up","value":"w","client":"warm-up","seq":1})"},
                                     std::pair{"/v1/append", R"({"key":"warm-up","value":"w","client":"warm-up","seq":2})"}}) {
    auto r = test::run_until_done(context, client.call(http::verb::post, target, body, 10s));
    REQUIRE(r.ok());
  }
  m.baseline = server.rss();
  return m;
}

// Prints the growth that is checked (since the baseline after the warm-up) and, for information, the
// growth since the process started, which also holds the code pages and arenas the first requests touch.
void report(const std::string& test, const server_process& server, const measure& m, long long limit) {
  auto grown = growth(server, m.baseline);
  auto since_start = growth(server, m.at_start);
  MESSAGE(test << ": kvserver RSS grew by " << grown << " bytes (" << static_cast<double>(grown) / mib
               << " MiB; " << since_start << " bytes since it started); limit " << limit << " bytes"
               << std::string(sanitized ? " [not checked: sanitizer build]" : ""));
  std::printf("[kv memory] %s: %lld bytes (%lld since start; limit %lld)\n", test.c_str(), grown, since_start, limit);
  if (!sanitized) CHECK(grown < limit);
}

kv::clerk make_clerk(asio::io_context& context, http::url url) {
  kv::clerk_options options;
  options.attempt_timeout = 60s;  // 10 MiB bodies under a debug build take a while
  return kv::clerk(context.get_executor(), std::move(url), options);
}

// Sends `count` requests built by `body(i)` to `target` over `connections` kept-alive connections, which
// have each already been used once (see the file comment).
class raw_sender {
 public:
  raw_sender(asio::io_context& context, std::uint16_t port, int connections) : context_(context) {
    for (int i = 0; i < connections; ++i) clients_.emplace_back(context.get_executor(), local_url(port));
    for (auto& c : clients_) {
      auto r = test::run_until_done(context_, c.call(http::verb::post, "/v1/get", R"({"key":"warm-up"})", 10s));
      REQUIRE(r.ok());
    }
  }

  template <class Body>
  void send(const char* target, int count, Body body) {
    std::vector<std::string> errors;
    auto lane = [&](std::size_t lane_index) -> asio::awaitable<void> {
      for (int i = static_cast<int>(lane_index); i < count; i += static_cast<int>(clients_.size())) {
        auto r = co_await clients_[lane_index].call(http::verb::post, target, body(i), 30s);
        if (!r.ok() && errors.size() < 5) errors.push_back(r.error->describe());
      }
    };
    std::vector<std::future<void>> lanes;
    for (std::size_t l = 0; l < clients_.size(); ++l)
      lanes.push_back(asio::co_spawn(context_, lane(l), asio::use_future));
    context_.restart();
    context_.run();
    for (auto& f : lanes) f.get();
    for (const auto& e : errors) FAIL_CHECK(e);
    for (const auto& c : clients_) CHECK(c.connections_opened() == 1);
  }

 private:
  asio::io_context& context_;
  std::vector<http::client> clients_;
};

// Client ids shaped like the clerk's: 16 hex digits, all distinct.
std::string client_id(int i) {
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(i) * 0x9e3779b97f4a7c15ull);
  return id;
}

TEST_SUITE("kv_lab") {

TEST_CASE("lab memory: get (TestMemGet2), through the unreliable proxy") {
  server_process server;
  test::fault_proxy_config config;
  config.upstream_port = server.port();
  config.upstream_timeout = 60s;
  test::fault_proxy proxy(config);
  proxy.start();
  auto m = warm_up(server);
  asio::io_context context;
  auto ck0 = make_clerk(context, local_url(proxy.port()));
  auto ck1 = make_clerk(context, local_url(proxy.port()));
  auto value = random_letters(10 * mib, 1);
  auto run = [&]() -> asio::awaitable<void> {
    co_await ck0.put("k", value);
    auto got0 = co_await ck0.get("k");
    auto got1 = co_await ck1.get("k");
    CHECK(got0.size() == 10 * mib);
    CHECK(got1.size() == 10 * mib);
    co_await ck0.put("k", "0");
  };
  test::run_until_done(context, run(), 300s);
  report("get", server, m, 10 * mib);
  CHECK(server.stop() == 0);
}

TEST_CASE("lab memory: put (TestMemPut2)") {
  server_process server;
  auto m = warm_up(server);
  asio::io_context context;
  auto ck0 = make_clerk(context, server.url());
  auto ck1 = make_clerk(context, server.url());
  auto run = [&]() -> asio::awaitable<void> {
    co_await ck0.put("k", random_letters(10 * mib, 2));
    co_await ck1.put("k", "");
  };
  test::run_until_done(context, run(), 300s);
  report("put", server, m, 10 * mib);
}

TEST_CASE("lab memory: append (TestMemAppend2)") {
  server_process server;
  auto m = warm_up(server);
  asio::io_context context;
  auto ck0 = make_clerk(context, server.url());
  auto ck1 = make_clerk(context, server.url());
  auto run = [&]() -> asio::awaitable<void> {
    auto old0 = co_await ck0.append("k", random_letters(10 * mib, 3));
    auto old1 = co_await ck1.append("k", random_letters(10 * mib, 4));
    CHECK(old0.empty());
    CHECK(old1.size() == 10 * mib);
  };
  test::run_until_done(context, run(), 300s);
  report("append", server, m, 30 * mib);
}

TEST_CASE("lab memory: many put clients (TestMemPutManyClients)") {
  server_process server;
  auto m = warm_up(server);
  asio::io_context context;
  raw_sender sender(context, server.port(), 4);
  auto value = random_letters(1000, 5);
  m.baseline = server.rss();
  sender.send("/v1/put", many_clients, [&](int i) { return kv::write_request_body("k", value, client_id(i), 1); });
  MESSAGE("many put clients: " << static_cast<double>(growth(server, m.baseline)) / many_clients
                               << " bytes per client");
  report("many put clients", server, m, 200LL * many_clients);
  auto stats = test::run_until_done(context, http::client(context.get_executor(), server.url()).get("/v1/stats", 10s));
  CHECK(stats.body.at("clients") == many_clients + 1);  // and the warm-up's client
}

TEST_CASE("lab memory: many get clients (TestMemGetManyClients)") {
  server_process server;
  asio::io_context context;
  {
    auto ck = make_clerk(context, server.url());
    test::run_until_done(context, ck.put("0", ""));
  }
  auto m = warm_up(server);
  raw_sender sender(context, server.port(), 4);
  m.baseline = server.rss();
  sender.send("/v1/get", many_clients, [](int) { return std::string(R"({"key":"0"})"); });
  MESSAGE("many get clients: " << static_cast<double>(growth(server, m.baseline)) / many_clients
                               << " bytes per client");
  report("many get clients", server, m, 10LL * many_clients);
}

TEST_CASE("lab memory: many appends (TestMemManyAppends)") {
  server_process server;
  auto m = warm_up(server);
  asio::io_context context;
  auto ck = make_clerk(context, server.url());
  auto value = random_letters(1000, 6);
  auto run = [&]() -> asio::awaitable<void> {
    for (int i = 0; i < many_appends; ++i) co_await ck.append("k", value);
    auto all = co_await ck.get("k");
    CHECK(all.size() == 1000u * many_appends);
  };
  test::run_until_done(context, run(), 300s);
  report("many appends", server, m, 3'000'000);
}

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::kv_test
