// The kvserver's routes over real sockets (server in this process, several I/O threads): the exact
// replies of the wire protocol, 400s and 409s, stats, big values, and exactly-once when retries of one
// request race on different connections and threads.

#include "kv/harness.hpp"
#include "mrkv/http/client.hpp"
#include "mrkv/kv/protocol.hpp"
#include "support/async.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

namespace mrkv::kv_test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using kv::write_request_body;

struct answer {
  unsigned status = 0;
  std::string error;  // the server's {"error": ...} for a refusal
  nlohmann::json body;
};

// POSTs a raw body and returns what came back; fails the test if nothing did.
answer post(std::uint16_t port, const std::string& target, std::string body) {
  asio::io_context context;
  http::client client(context.get_executor(), local_url(port));
  auto result = test::run_until_done(context, client.call(http::verb::post, target, std::move(body), 20s), 30s);
  REQUIRE_MESSAGE((result.ok() || result.error->what == http::call_error::kind::rejected),
                  result.error->describe());
  return answer{result.status, result.ok() ? "" : result.error->message, result.body};
}

TEST_SUITE("kv") {

TEST_CASE("routes: put, get and append answer exactly as the protocol says") {
  local_server server;
  auto p = server.port();
  auto missing = post(p, "/v1/get", R"({"key":"a"})");
  CHECK(missing.status == 200);
  CHECK(missing.body == nlohmann::json{{"value", ""}, {"version", 0}});
  auto put = post(p, "/v1/put", R"({"key":"a","value":"b"})");
  CHECK(put.status == 200);
  CHECK(put.body == nlohmann::json{{"version", 1}});
  CHECK(post(p, "/v1/get", R"({"key":"a"})").body == nlohmann::json{{"value", "b"}, {"version", 1}});
  auto app = post(p, "/v1/append", R"({"key":"a","value":"c","client":"cl","seq":1})");
  CHECK(app.status == 200);
  CHECK(app.body == nlohmann::json{{"value", "b"}, {"version", 2}});
  CHECK(post(p, "/v1/append", R"({"key":"fresh","value":"x"})").body == nlohmann::json{{"value", ""}, {"version", 1}});
  CHECK(post(p, "/v1/get", R"({"key":"a"})").body == nlohmann::json{{"value", "bc"}, {"version", 2}});
  // Unicode and escapes survive the trip.
  post(p, "/v1/put", R"({"key":"\u00e9\n","value":"\"\\\u0001\ud83d\ude00"})");
  CHECK(post(p, "/v1/get", R"({"key":"\u00e9\n"})").body.at("value") == "\"\\\x01\xf0\x9f\x98\x80");
}

TEST_CASE("routes: a repeated seq is answered from the table, an older one gets 409") {
  local_server server;
  auto p = server.port();
  post(p, "/v1/put", R"({"key":"k","value":"base"})");
  auto first = post(p, "/v1/append", R"({"key":"k","value":"+1","client":"c","seq":5})");
  CHECK(first.body == nlohmann::json{{"value", "base"}, {"version", 2}});
  post(p, "/v1/append", R"({"key":"k","value":"+x"})");
  auto again = post(p, "/v1/append", R"({"key":"k","value":"+1","client":"c","seq":5})");
  CHECK(again.status == 200);
  CHECK(again.body == nlohmann::json{{"value", "base"}, {"version", 2}});
  CHECK(post(p, "/v1/get", R"({"key":"k"})").body.at("value") == "base+1+x");

  auto stale = post(p, "/v1/put", R"({"key":"k","value":"lost","client":"c","seq":4})");
  CHECK(stale.status == 409);
  CHECK(stale.error.find("older") != std::string::npos);
  auto conflict = post(p, "/v1/put", R"({"key":"k","value":"lost","client":"c","seq":5})");
  CHECK(conflict.status == 409);
  CHECK(post(p, "/v1/get", R"({"key":"k"})").body.at("value") == "base+1+x");
  CHECK(post(p, "/v1/put", R"({"key":"k","value":"new","client":"c","seq":6})").status == 200);
  CHECK(post(p, "/v1/get", R"({"key":"k"})").body.at("value") == "new");
}

TEST_CASE("routes: wrong shapes get 400 naming the field; wrong methods and paths get 405 and 404") {
  local_server server;
  auto p = server.port();
  struct bad_case {
    const char* target;
    const char* body;
    const char* field;
  };
  const bad_case cases[] = {
      {"/v1/get", R"({})", "'key'"},
      {"/v1/get", R"({"key":3})", "'key'"},
      {"/v1/get", R"({"key":"k","seq":1})", "'seq'"},
      {"/v1/put", R"({"key":"k"})", "'value'"},
      {"/v1/put", R"({"key":"k","value":1})", "'value'"},
      {"/v1/put", R"({"key":"k","value":"v","client":"c","seq":-3})", "'seq'"},
      {"/v1/put", R"({"key":"k","value":"v","client":"c","seq":0})", "'seq'"},
      {"/v1/put", R"({"key":"k","value":"v","client":"","seq":1})", "'client'"},
      {"/v1/append", R"({"key":"k","value":"v","op":"append"})", "'op'"},
      {"/v1/append", R"({"key":"k","value":"v","client":"c"})", "'seq'"},
      {"/v1/append", R"({"key":"k","value":"v","seq":2})", "'client'"},
  };
  for (const auto& c : cases) {
    auto a = post(p, c.target, c.body);
    CHECK_MESSAGE(a.status == 400, std::string(c.body));
    CHECK_MESSAGE(a.error.find(c.field) != std::string::npos, (std::string(c.body) + " -> " + a.error));
  }
  CHECK(post(p, "/v1/put", "not json").status == 400);
  CHECK(post(p, "/v1/put", R"(["key","value"])").status == 400);
  CHECK(post(p, "/v1/erase", R"({"key":"k"})").status == 404);
  CHECK(post(p, "/v1/stats", "{}").status == 405);
  CHECK(server.data().stats().keys == 0);  // nothing refused changed anything
}

TEST_CASE("routes: GET /v1/stats counts keys, bytes and clients") {
  local_server server;
  auto p = server.port();
  post(p, "/v1/put", R"({"key":"ab","value":"cde","client":"x","seq":1})");
  post(p, "/v1/append", R"({"key":"f","value":"g","client":"y","seq":1})");
  post(p, "/v1/get", R"({"key":"zz"})");
  asio::io_context context;
  http::client client(context.get_executor(), server.url());
  auto stats = test::run_until_done(context, client.get("/v1/stats", 5s));
  REQUIRE(stats.ok());
  CHECK(stats.body == nlohmann::json{{"keys", 2}, {"bytes", 7}, {"clients", 2}});
}

TEST_CASE("routes: the server's timer expires idle clients from the duplicate table") {
  kv::server_options options;
  options.http.threads = 1;
  options.store.client_ttl = 1s;
  options.sweep_interval = 50ms;
  local_server server(options);
  post(server.port(), "/v1/put", R"({"key":"k","value":"v","client":"idle","seq":1})");
  CHECK(server.data().stats().clients == 1);
  // The timer runs on the server's thread; watch for its effect with a bound.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (server.data().stats().clients > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  CHECK(server.data().stats().clients == 0);
  CHECK(server.data().get("k") == "v");
}

TEST_CASE("routes: a 10 MiB value goes in and comes back whole") {
  local_server server;
  std::string big(10 << 20, 'v');
  for (std::size_t i = 0; i < big.size(); i += 4093) big[i] = static_cast<char>('a' + i % 26);
  post(server.port(), "/v1/put", write_request_body("big", big, "c", 1));
  auto got = post(server.port(), "/v1/get", R"({"key":"big"})");
  CHECK(got.body.at("value").get_ref<const std::string&>() == big);
  auto old = post(server.port(), "/v1/append", write_request_body("big", "!", "c", 2));
  CHECK(old.body.at("value").get_ref<const std::string&>() == big);
}

TEST_CASE("routes: retries of one request racing on several connections execute it once") {
  local_server server(4);
  constexpr int connections = 6;
  constexpr int seqs = 60;
  asio::io_context context;
  std::vector<http::client> clients;
  for (int i = 0; i < connections; ++i) clients.emplace_back(context.get_executor(), server.url());
  // For each seq, every connection sends the same append at once, as a clerk's timed-out attempt and its
  // retry would arrive; the server's threads take them in parallel.
  auto race = [&]() -> asio::awaitable<std::vector<std::string>> {
    std::vector<std::string> first_replies;
    for (int seq = 1; seq <= seqs; ++seq) {
      auto body = write_request_body("k", "<" + std::to_string(seq) + ">", "racer", static_cast<std::uint64_t>(seq));
      std::vector<http::call_result> results(connections);
      int done = 0;
      asio::steady_timer all_done(context, asio::steady_timer::time_point::max());
      auto one = [&](int i) -> asio::awaitable<void> {
        results[i] = co_await clients[i].call(http::verb::post, "/v1/append", body, 10s);
        if (++done == connections) all_done.cancel();
      };
      for (int i = 0; i < connections; ++i)
        asio::co_spawn(context, one(i), [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);  // surfaces from run_until_done and fails the test
        });
      if (done < connections) co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
      for (auto& r : results) {
        if (!r.ok()) throw std::runtime_error(r.error->describe());
        if (r.body != results[0].body) throw std::runtime_error("replies to one request differ");
      }
      first_replies.push_back(results[0].body.at("value"));
    }
    co_return first_replies;
  };
  auto replies = test::run_until_done(context, race(), 60s);
  std::string expected;
  for (int seq = 1; seq <= seqs; ++seq) {
    CHECK(replies[seq - 1] == expected);
    expected += "<" + std::to_string(seq) + ">";
  }
  CHECK(server.data().get("k") == expected);
}

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::kv_test
