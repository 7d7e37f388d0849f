// The HTTP/JSON core over real sockets on 127.0.0.1 port 0: routing, JSON errors, limits, timeouts,
// the connection cap, auth, keep-alive, graceful stop, and the client's three kinds of failure.
#include "mrkv/http/client.hpp"
#include "mrkv/http/json_body.hpp"
#include "mrkv/http/server.hpp"
#include "support/async.hpp"
#include "support/raw_connection.hpp"
#include "support/tls_files.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using mrkv::http::call_error;
using mrkv::http::verb;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct slow_probe {
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
};

mrkv::http::router test_routes(slow_probe* slow = nullptr) {
  mrkv::http::router routes;
  routes.add(verb::post, "/echo", [](const mrkv::http::request& req) {
    auto body = mrkv::http::parse_json_object(req.body());
    mrkv::http::reject_unknown_fields(body, {"msg"});
    return mrkv::http::json_reply({{"msg", mrkv::http::required_string(body, "msg")}});
  });
  routes.add(verb::get, "/boom", [](const mrkv::http::request&) -> mrkv::http::reply {
    throw std::runtime_error("kaboom");
  });
  routes.add_async(verb::post, "/slow", [slow](mrkv::http::request) -> asio::awaitable<mrkv::http::reply> {
    if (slow) ++slow->started;
    asio::steady_timer timer(co_await asio::this_coro::executor, 300ms);
    co_await timer.async_wait(use_tuple);
    if (slow) ++slow->finished;
    co_return mrkv::http::json_reply({{"slow", true}});
  });
  return routes;
}

struct running_server {
  mrkv::http::server server;
  std::uint16_t port;
  explicit running_server(mrkv::http::server_config config, mrkv::http::router routes = test_routes())
      : server(std::move(config), "test", std::move(routes)), port(server.start().port()) {}
  mrkv::http::url url() const { return mrkv::http::parse_url("http://127.0.0.1:" + std::to_string(port)); }
};

mrkv::http::client_options with_token(std::string token) {
  mrkv::http::client_options options;
  options.auth_token = std::move(token);
  return options;
}

mrkv::http::server_config small_config() {
  mrkv::http::server_config config;
  config.port = 0;
  config.threads = 2;
  config.max_body = 1024;
  config.read_timeout = 300ms;
  config.idle_timeout = 2s;
  return config;
}

std::string post(std::uint16_t port, std::string_view target, std::string_view body) {
  mrkv::test::raw_connection c(port);
  c.send("POST " + std::string(target) + " HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + std::string(body));
  return c.read_response(5s);
}

}  // namespace

TEST_SUITE("http") {
  TEST_CASE("routes, 404, 405, JSON errors and 500s") {
    running_server s(small_config());
    auto ok = post(s.port, "/echo", R"({"msg":"hi"})");
    CHECK(ok.find("HTTP/1.1 200 OK") == 0);
    CHECK(ok.find("Content-Type: application/json") != std::string::npos);
    CHECK(ok.find(R"({"msg":"hi"})") != std::string::npos);

    auto missing = post(s.port, "/nope", "{}");
    CHECK(missing.find("HTTP/1.1 404") == 0);
    CHECK(missing.find(R"({"error":"no such path: /nope"})") != std::string::npos);
    auto wrong_method = post(s.port, "/boom", "{}");
    CHECK(wrong_method.find("HTTP/1.1 405") == 0);
    CHECK(wrong_method.find("Allow: GET, HEAD\r\n") != std::string::npos);

    auto malformed = post(s.port, "/echo", R"({"msg":)");
    CHECK(malformed.find("HTTP/1.1 400") == 0);
    CHECK(malformed.find("not valid JSON") != std::string::npos);
    auto wrong_type = post(s.port, "/echo", R"({"msg":5})");
    CHECK(wrong_type.find("field 'msg' must be a string") != std::string::npos);
    auto unknown = post(s.port, "/echo", R"({"msg":"a","x":1})");
    CHECK(unknown.find("unknown field 'x'") != std::string::npos);

    mrkv::test::raw_connection c(s.port);
    c.send("GET /boom HTTP/1.1\r\nHost: t\r\n\r\n");
    auto boom = c.read_response(5s);
    CHECK(boom.find("HTTP/1.1 500") == 0);
    // The exception's text stays in the log; the client gets an incident id that finds it there.
    CHECK(boom.find("kaboom") == std::string::npos);
    CHECK(boom.find("internal error (incident ") != std::string::npos);
    // The server, and even this connection, survive a handler's exception.
    c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    auto health = c.read_response(5s);
    CHECK(health.find(R"({"mode":"test","status":"ok"})") != std::string::npos);

    c.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    auto metrics = c.read_response(5s);
    CHECK(metrics.find("Content-Type: text/plain") != std::string::npos);
    CHECK(metrics.find(R"(mrkv_http_requests_total{mode="test",route="/echo",status="200"} 1)") != std::string::npos);
    CHECK(metrics.find(R"(route="/echo",status="400"} 3)") != std::string::npos);
    CHECK(metrics.find(R"(route="unmatched",status="404"} 1)") != std::string::npos);
    CHECK(metrics.find(R"(route="/boom",status="500"} 1)") != std::string::npos);
    CHECK(metrics.find("mrkv_http_request_duration_seconds_count") != std::string::npos);
    // The earlier requests' connections end on the server's side a moment after their clients closed
    // them; the gauge comes down to this one connection.
    const std::string one_open = R"(mrkv_http_connections{mode="test"} 1)";
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (metrics.find(one_open) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      c.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
      metrics = c.read_response(5s);
    }
    CHECK(metrics.find(one_open) != std::string::npos);
  }

  TEST_CASE("malformed HTTP gets 400 and the connection closes") {
    running_server s(small_config());
    mrkv::test::raw_connection c(s.port);
    c.send("THIS IS NOT HTTP\r\n\r\n");
    auto r = c.read_until_close(5s);
    CHECK(r.closed);
    CHECK(r.data.find("HTTP/1.1 400") == 0);
  }

  TEST_CASE("a body over the limit gets 413 before it is read") {
    running_server s(small_config());
    mrkv::test::raw_connection c(s.port);
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n{");
    auto r = c.read_until_close(5s);
    CHECK(r.closed);
    CHECK(r.data.find("HTTP/1.1 413") == 0);
    CHECK(r.data.find("body larger than 1024 bytes") != std::string::npos);
  }

  TEST_CASE("a body over the limit sent whole without Expect still gets its 413 (lingering close)") {
    // What Python's http.client and node's fetch do: the whole body first, the response after. Closing
    // with the body unread would reset the connection and lose the 413.
    running_server s(small_config());
    mrkv::test::raw_connection c(s.port);
    const std::string body(3 << 20, 'x');
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
    CHECK_NOTHROW(c.send(body));
    auto r = c.read_until_close(10s);
    CHECK(r.data.find("HTTP/1.1 413") == 0);
    CHECK(r.data.find("body larger than 1024 bytes") != std::string::npos);
    CHECK(r.closed);

    mrkv::test::raw_connection m(s.port);
    m.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    auto metrics = m.read_response(5s);
    CHECK(metrics.find(R"(route="unmatched",status="413"} 1)") != std::string::npos);
  }

  TEST_CASE("Expect: 100-continue is answered before the body is sent, and refused at once when too big") {
    running_server s(small_config());
    mrkv::test::raw_connection c(s.port);
    const std::string body = R"({"msg":"after continue"})";
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n");
    // The interim response comes without any body having been sent.
    CHECK(c.read_response(5s) == "HTTP/1.1 100 Continue\r\n\r\n");
    c.send(body);
    auto answer = c.read_response(5s);
    CHECK(answer.find("HTTP/1.1 200") == 0);
    CHECK(answer.find("after continue") != std::string::npos);

    mrkv::test::raw_connection big(s.port);
    big.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n");
    auto refused = big.read_until_close(5s);
    CHECK(refused.data.find("HTTP/1.1 413") == 0);
    CHECK(refused.data.find("100 Continue") == std::string::npos);
  }

  TEST_CASE("an HTTP/1.1 request without Host is refused; HTTP/1.0 needs none") {
    running_server s(small_config());
    mrkv::test::raw_connection c(s.port);
    c.send("GET /healthz HTTP/1.1\r\n\r\n");
    auto r = c.read_until_close(5s);
    CHECK(r.data.find("HTTP/1.1 400") == 0);
    CHECK(r.data.find("without a Host header") != std::string::npos);
    mrkv::test::raw_connection old(s.port);
    old.send("GET /healthz HTTP/1.0\r\n\r\n");
    CHECK(old.read_until_close(5s).data.find("HTTP/1.0 200") == 0);
  }

  TEST_CASE("a busy port is refused with the address and the reason") {
    running_server first(small_config());
    auto config = small_config();
    config.port = first.port;
    mrkv::http::server second(config, "test", test_routes());
    std::string message;
    try {
      second.start();
    } catch (const std::exception& e) {
      message = e.what();
    }
    CHECK(message == "cannot listen on 127.0.0.1:" + std::to_string(first.port) + ": address already in use");
  }

  TEST_CASE("a client that sends half a request is cut off by the read timeout") {
    running_server s(small_config());
    mrkv::test::raw_connection c(s.port);
    auto started = std::chrono::steady_clock::now();
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n{\"msg\"");
    auto r = c.read_until_close(5s);
    auto waited = std::chrono::steady_clock::now() - started;
    CHECK(r.closed);
    CHECK(r.data.empty());
    CHECK(waited >= 250ms);
    CHECK(waited < 3s);
  }

  TEST_CASE("an idle keep-alive connection is closed after the idle timeout") {
    auto config = small_config();
    config.idle_timeout = 200ms;
    running_server s(config);
    mrkv::test::raw_connection c(s.port);
    auto r = c.read_until_close(5s);
    CHECK(r.closed);
  }

  TEST_CASE("connections past --max-connections get 503 and are closed; the rest keep working") {
    auto config = small_config();
    config.max_connections = 2;
    running_server s(config);
    mrkv::test::raw_connection a(s.port), b(s.port);
    // A reply on each proves the server has counted both.
    a.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    b.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(a.read_response(5s).find("200 OK") != std::string::npos);
    CHECK(b.read_response(5s).find("200 OK") != std::string::npos);
    mrkv::test::raw_connection third(s.port);
    auto refused = third.read_until_close(5s);
    CHECK(refused.closed);
    CHECK(refused.data.find("HTTP/1.1 503") == 0);
    a.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(a.read_response(5s).find("200 OK") != std::string::npos);
  }

  TEST_CASE("bearer token: 401 without it, 200 with it, /healthz open") {
    auto config = small_config();
    config.auth_token = "s3cret";
    running_server s(config);
    asio::io_context context;
    mrkv::http::client anonymous(context.get_executor(), s.url());
    auto denied = mrkv::test::run_until_done(context, anonymous.post("/echo", {{"msg", "x"}}, 2s));
    REQUIRE_FALSE(denied.ok());
    CHECK(denied.error->what == call_error::kind::rejected);
    CHECK(denied.status == 401);
    auto health = mrkv::test::run_until_done(context, anonymous.get("/healthz", 2s));
    CHECK(health.ok());
    mrkv::http::client wrong(context.get_executor(), s.url(), with_token("s3creT"));
    CHECK(mrkv::test::run_until_done(context, wrong.post("/echo", {{"msg", "x"}}, 2s)).status == 401);
    mrkv::http::client member(context.get_executor(), s.url(), with_token("s3cret"));
    auto allowed = mrkv::test::run_until_done(context, member.post("/echo", {{"msg", "x"}}, 2s));
    REQUIRE(allowed.ok());
    CHECK(allowed.body["msg"] == "x");
  }

  TEST_CASE("client: keep-alive reuses one connection; errors keep their kind") {
    running_server s(small_config());
    asio::io_context context;
    mrkv::http::client c(context.get_executor(), s.url());
    for (int i = 0; i < 20; ++i) {
      auto r = mrkv::test::run_until_done(context, c.post("/echo", {{"msg", std::to_string(i)}}, 2s));
      REQUIRE(r.ok());
      CHECK(r.body["msg"] == std::to_string(i));
    }
    CHECK(c.connections_opened() == 1);
    auto rejected = mrkv::test::run_until_done(context, c.post("/echo", {{"nope", 1}}, 2s));
    REQUIRE_FALSE(rejected.ok());
    CHECK(rejected.error->what == call_error::kind::rejected);
    CHECK(rejected.status == 400);
    CHECK(rejected.error->message == "unknown field 'nope'");
    // The server closed the idle connection meanwhile? No: it is still the same one.
    CHECK(c.connections_opened() == 1);
  }

  TEST_CASE("client: a server that never answers costs exactly the deadline") {
    asio::io_context context;
    asio::ip::tcp::acceptor silent(context, {asio::ip::make_address("127.0.0.1"), 0});
    auto url = mrkv::http::parse_url("http://127.0.0.1:" + std::to_string(silent.local_endpoint().port()));
    mrkv::http::client c(context.get_executor(), url);
    auto started = std::chrono::steady_clock::now();
    auto r = mrkv::test::run_until_done(context, c.post("/x", {{"a", 1}}, 300ms));
    auto waited = std::chrono::steady_clock::now() - started;
    REQUIRE_FALSE(r.ok());
    CHECK(r.error->what == call_error::kind::no_answer);
    CHECK(r.error->message.find("timed out") != std::string::npos);
    CHECK(waited >= 280ms);
    CHECK(waited < 2s);

    silent.close();
    auto refused = mrkv::test::run_until_done(context, c.post("/x", {{"a", 1}}, 300ms));
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error->what == call_error::kind::no_answer);
  }

  TEST_CASE("client: a 200 reply that is not JSON is a bad reply") {
    asio::io_context context;
    asio::ip::tcp::acceptor fake(context, {asio::ip::make_address("127.0.0.1"), 0});
    std::thread peer([&fake] {
      auto socket = fake.accept();
      char buffer[4096];
      socket.read_some(asio::buffer(buffer));
      std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
      asio::write(socket, asio::buffer(reply));
    });
    auto url = mrkv::http::parse_url("http://127.0.0.1:" + std::to_string(fake.local_endpoint().port()));
    mrkv::http::client c(context.get_executor(), url);
    auto r = mrkv::test::run_until_done(context, c.get("/x", 2s));
    peer.join();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error->what == call_error::kind::bad_reply);
    CHECK(r.status == 200);
  }

  TEST_CASE("stop(): in-flight requests finish, then the server exits") {
    slow_probe probe;
    running_server s(small_config(), test_routes(&probe));
    mrkv::test::raw_connection slow(s.port), idle(s.port);
    idle.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(idle.read_response(5s).find("200 OK") != std::string::npos);
    slow.send("POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}");
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (probe.started.load() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    REQUIRE(probe.started.load() == 1);
    CHECK(probe.finished.load() == 0);
    s.server.stop();
    auto reply = slow.read_until_close(5s);
    CHECK(reply.data.find(R"({"slow":true})") != std::string::npos);
    CHECK(reply.data.find("Connection: close") != std::string::npos);
    CHECK(idle.read_until_close(5s).closed);
    s.server.wait();
    CHECK(probe.finished.load() == 1);
    CHECK_THROWS(mrkv::test::raw_connection(s.port));
  }
}

TEST_SUITE("http") {
  TEST_CASE("TLS: https with a trusted CA works; an untrusted certificate or plain HTTP gets no answer") {
    mrkv::test::tls_files files;
    auto config = small_config();
    config.tls_cert_file = files.cert;
    config.tls_key_file = files.key;
    running_server s(config);
    auto url = mrkv::http::parse_url("https://127.0.0.1:" + std::to_string(s.port));
    asio::io_context context;
    mrkv::http::client_options trusting;
    trusting.tls_ca_file = files.cert;
    mrkv::http::client secure(context.get_executor(), url, trusting);
    for (int i = 0; i < 3; ++i) {
      auto r = mrkv::test::run_until_done(context, secure.post("/echo", {{"msg", "over tls"}}, 5s));
      REQUIRE(r.ok());
      CHECK(r.body["msg"] == "over tls");
    }
    CHECK(secure.connections_opened() == 1);

    mrkv::http::client untrusting(context.get_executor(), url);
    auto refused = mrkv::test::run_until_done(context, untrusting.post("/echo", {{"msg", "x"}}, 5s));
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error->what == call_error::kind::no_answer);
    CHECK(refused.error->message.find("TLS handshake") != std::string::npos);

    mrkv::http::client plain(context.get_executor(), s.url());
    auto garbled = mrkv::test::run_until_done(context, plain.post("/echo", {{"msg", "x"}}, 2s));
    CHECK_FALSE(garbled.ok());
    // The server is unharmed.
    CHECK(mrkv::test::run_until_done(context, secure.get("/healthz", 5s)).ok());
  }

  TEST_CASE("TLS: replies larger than one TLS record arrive whole") {
    mrkv::test::tls_files files;
    auto config = small_config();
    config.tls_cert_file = files.cert;
    config.tls_key_file = files.key;
    config.max_body = 1 << 20;
    running_server s(config);
    asio::io_context context;
    mrkv::http::client_options trusting;
    trusting.tls_ca_file = files.cert;
    mrkv::http::client secure(context.get_executor(), mrkv::http::parse_url("https://127.0.0.1:" + std::to_string(s.port)),
                              trusting);
    // Around the 16 KiB record and coalescing size, and far past it.
    for (std::size_t size : {100u, 16'300u, 16'384u, 17'000u, 300'000u}) {
      auto r = mrkv::test::run_until_done(context, secure.post("/echo", {{"msg", std::string(size, 'x')}}, 5s));
      REQUIRE_MESSAGE(r.ok(), size << ": " << r.error->describe());
      CHECK(r.body["msg"].get<std::string>().size() == size);
    }
  }
}
