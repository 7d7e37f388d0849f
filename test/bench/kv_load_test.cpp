// The load generator counts only replies of the right shape as operations: against a real kvserver
// every reply passes, against a server whose replies are wrong every one is an error.
#include "mrkv/bench/kv_load.hpp"
#include "mrkv/http/reply.hpp"
#include "mrkv/http/router.hpp"
#include "mrkv/http/server.hpp"
#include "mrkv/kv/server.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

using namespace std::chrono_literals;
using namespace mrkv;

bench::kv_load_config short_run(std::uint16_t port, const std::string& mix) {
  bench::kv_load_config config;
  config.server = http::parse_url("http://127.0.0.1:" + std::to_string(port));
  config.clients = 4;
  config.duration = 300ms;
  config.warmup = 0ms;
  config.keys = 20;
  bench::parse_mix(mix, config);
  return config;
}

// An HTTP server on 127.0.0.1 with the given routes, stopped when destroyed.
struct routes_server {
  http::server server;
  std::uint16_t port;
  explicit routes_server(http::router routes)
      : server(one_thread(), "test", std::move(routes)), port(server.start().port()) {}
  ~routes_server() {
    server.stop();
    server.wait();
  }
  static http::server_config one_thread() {
    http::server_config c;
    c.threads = 1;
    return c;
  }
};

}  // namespace

TEST_SUITE("bench") {

TEST_CASE("kv load: every reply of a real kvserver counts as an operation") {
  kv::server_options options;
  options.http.threads = 1;
  kv::server server(options);
  const auto port = server.start().port();
  const auto report = bench::run_kv_load(short_run(port, "2:1:1"));
  server.stop();
  server.wait();
  CHECK(report.errors == 0);
  CHECK(report.operations > 0);
  CHECK(report.gets > 0);
  CHECK(report.puts > 0);
  CHECK(report.appends > 0);
  CHECK(report.operations == report.gets + report.puts + report.appends);
}

TEST_CASE("kv load: replies of the wrong shape or status are errors, not operations") {
  http::router routes;
  using verb = boost::beast::http::verb;
  // Gets answer a number instead of a string, puts answer a value, appends answer 503.
  routes.add(verb::post, "/v1/get", [](const http::request&) { return http::json_reply({{"value", 5}}); });
  routes.add(verb::post, "/v1/put", [](const http::request&) { return http::json_reply({{"value", "x"}}); });
  routes.add(verb::post, "/v1/append", [](const http::request&) { return http::error_reply(503, "busy"); });
  routes_server wrong(std::move(routes));
  const auto report = bench::run_kv_load(short_run(wrong.port, "1:1:1"));
  CHECK(report.operations == 0);
  CHECK(report.errors > 0);
  CHECK(!report.first_error.empty());
}

TEST_CASE("kv load: a value with escapes and an unescaped quote are told apart") {
  http::router routes;
  using verb = boost::beast::http::verb;
  routes.add(verb::post, "/v1/get", [](const http::request&) {
    return http::reply{200, R"({"value":"say \"hi\"\\"})"};
  });
  routes_server escaped(std::move(routes));
  CHECK(bench::run_kv_load(short_run(escaped.port, "1:0:0")).errors == 0);

  http::router broken_routes;
  broken_routes.add(verb::post, "/v1/get", [](const http::request&) {
    return http::reply{200, R"({"value":"say "hi""})"};
  });
  routes_server broken(std::move(broken_routes));
  const auto report = bench::run_kv_load(short_run(broken.port, "1:0:0"));
  CHECK(report.operations == 0);
  CHECK(report.errors > 0);
}

}  // TEST_SUITE

TEST_SUITE("bench") {

TEST_CASE("kv load: a server that is down costs a few backed-off attempts per connection, not a spin") {
  // A port that was just free: connecting is refused at once, which without a pause turned into tens of
  // thousands of attempts a second.
  std::uint16_t port = 0;
  {
    routes_server probe{http::router{}};
    port = probe.port;
  }
  auto config = short_run(port, "1:1:0");
  config.duration = 1s;
  const auto report = bench::run_kv_load(config);
  CHECK(report.operations == 0);
  CHECK(report.errors > 0);
  // Pauses of 1, 2, 4 ... 200 ms: at most about a dozen attempts per connection in one second.
  CHECK(report.errors <= 20 * config.clients);
  CHECK(report.first_error.find("refused") != std::string::npos);
}

}  // TEST_SUITE("bench")
