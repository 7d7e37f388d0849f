#include "support/fault_proxy.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <list>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace mrkv::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

void fail_on_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    // doctest assertions are thread-safe, but must not throw out of an Asio handler.
    FAIL_CHECK("coroutine ended by an exception: " << ex.what());
  }
}

// The stand-in server: answers every request with its body, and remembers every body it received, so a
// test can tell a dropped request (never arrived) from a dropped reply (arrived, answer lost).
class echo_server {
 public:
  echo_server() : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(ioc_, accept_loop(), fail_on_exception);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~echo_server() { stop(); }
  echo_server(const echo_server&) = delete;
  echo_server& operator=(const echo_server&) = delete;

  void stop() {
    if (!thread_.joinable()) return;
    asio::post(ioc_, [this] {
      stopping_ = true;
      acceptor_.close();
      for (beast::tcp_stream* s : sessions_) s->close();
    });
    thread_.join();
  }

  std::uint16_t port() const { return port_; }

  bool received(const std::string& body) const {
    std::lock_guard lock(mutex_);
    return bodies_.count(body) != 0;
  }
  std::size_t request_count() const {
    std::lock_guard lock(mutex_);
    return bodies_.size();
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      asio::co_spawn(ioc_, session(std::move(socket)), fail_on_exception);
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    if (stopping_) co_return;
    sessions_.push_back(&stream);
    const auto me = std::prev(sessions_.end());
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      stream.expires_after(30s);
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
      if (ec) break;
      bhttp::request<bhttp::string_body> request = parser.release();
      {
        std::lock_guard lock(mutex_);
        bodies_.insert(request.body());
      }
      bhttp::response<bhttp::string_body> response{bhttp::status::ok, request.version()};
      response.keep_alive(request.keep_alive());
      response.body() = std::move(request.body());
      response.prepare_payload();
      stream.expires_after(30s);
      auto [wec, wn] = co_await bhttp::async_write(stream, response, use_tuple);
      if (wec || !response.keep_alive()) break;
    }
    sessions_.erase(me);
  }

  asio::io_context ioc_{1};
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  bool stopping_ = false;                   // server thread only
  std::list<beast::tcp_stream*> sessions_;  // server thread only
  mutable std::mutex mutex_;
  std::multiset<std::string> bodies_;  // guarded by mutex_
};

struct outcome {
  bool replied = false;
  std::string body;
  std::chrono::steady_clock::duration latency{};
};

// One client: sends requests "<prefix><i>" one at a time over a kept-alive connection, reconnecting
// after each failure as a retrying clerk would. Every wait is bounded by the stream's expiry.
asio::awaitable<void> run_client(std::uint16_t port, std::string prefix, std::vector<std::size_t> ids,
                                 std::vector<outcome>* results) {
  auto ex = co_await asio::this_coro::executor;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  for (std::size_t id : ids) {
    outcome& out = (*results)[id];
    const auto start = std::chrono::steady_clock::now();
    if (!stream) {
      stream.emplace(ex);
      buffer.clear();
      stream->expires_after(5s);
      auto [ec] = co_await stream->async_connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port),
                                                 use_tuple);
      if (ec) {
        stream.reset();
        continue;
      }
    }
    bhttp::request<bhttp::string_body> request{bhttp::verb::post, "/echo", 11};
    request.set(bhttp::field::host, "127.0.0.1");
    request.keep_alive(true);
    request.body() = prefix + std::to_string(id);
    request.prepare_payload();
    stream->expires_after(5s);
    auto [wec, wn] = co_await bhttp::async_write(*stream, request, use_tuple);
    bhttp::response<bhttp::string_body> response;
    if (!wec) {
      stream->expires_after(5s);
      auto [rec, rn] = co_await bhttp::async_read(*stream, buffer, response, use_tuple);
      out.replied = !rec;
    }
    out.latency = std::chrono::steady_clock::now() - start;
    if (out.replied) {
      out.body = response.body();
    } else {
      stream.reset();
    }
  }
}

// Spawns `clients` concurrent clients over ids 0..results->size()-1 (interleaved).
void spawn_clients(asio::io_context& ioc, std::uint16_t port, const std::string& prefix, std::size_t clients,
                   std::vector<outcome>* results) {
  for (std::size_t c = 0; c < clients; ++c) {
    std::vector<std::size_t> ids;
    for (std::size_t i = c; i < results->size(); i += clients) ids.push_back(i);
    asio::co_spawn(ioc, run_client(port, prefix, std::move(ids), results), fail_on_exception);
  }
}

std::vector<outcome> run_clients(std::uint16_t port, const std::string& prefix, std::size_t n,
                                 std::size_t clients) {
  asio::io_context ioc;
  std::vector<outcome> results(n);
  spawn_clients(ioc, port, prefix, clients, &results);
  ioc.run();
  return results;
}

// One request on a fresh connection; `*reply` gets the reply body if one arrives.
asio::awaitable<void> send_once(std::uint16_t port, std::string body, std::optional<std::string>* reply) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(20s);
  auto [ec] =
      co_await stream.async_connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port), use_tuple);
  if (ec) co_return;
  bhttp::request<bhttp::string_body> request{bhttp::verb::put, "/big", 11};
  request.body() = std::move(body);
  request.prepare_payload();
  auto [wec, wn] = co_await bhttp::async_write(stream, request, use_tuple);
  if (wec) co_return;
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
  if (!rec) *reply = parser.release().body();
}

// Connects and sends nothing; `*closed_after` gets how long until the peer closed the connection, or
// duration::max() if something else ended the wait.
asio::awaitable<void> sit_idle(std::uint16_t port, std::atomic<bool>* connected,
                               std::chrono::steady_clock::duration* closed_after) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(10s);
  auto [ec] =
      co_await stream.async_connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port), use_tuple);
  if (ec) co_return;
  *connected = true;
  const auto start = std::chrono::steady_clock::now();
  char byte = 0;
  auto [rec, n] = co_await stream.async_read_some(asio::buffer(&byte, 1), use_tuple);
  const bool closed = n == 0 && (rec == asio::error::eof || rec == asio::error::connection_reset);
  *closed_after =
      closed ? std::chrono::steady_clock::now() - start : std::chrono::steady_clock::duration::max();
}

// Polls `done` until it holds or 5 s pass; for counters updated on another thread.
template <class Predicate>
bool eventually(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

fault_proxy_config config_for(const echo_server& server) {
  fault_proxy_config config;
  config.upstream_port = server.port();
  return config;
}

TEST_SUITE("fault_proxy") {
  TEST_CASE("drops requests and replies at the configured rates") {
    echo_server server;
    fault_proxy proxy(config_for(server));
    proxy.start();
    CHECK(proxy.port() != 0);
    CHECK(proxy.address() == "127.0.0.1:" + std::to_string(proxy.port()));
    MESSAGE("dice seed " << proxy.seed());

    constexpr std::size_t n = 500;
    const std::vector<outcome> results = run_clients(proxy.port(), "lossy-", n, 4);
    proxy.stop();
    server.stop();

    std::size_t replied = 0, lost_requests = 0, lost_replies = 0;
    double replied_ms = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::string body = "lossy-" + std::to_string(i);
      if (results[i].replied) {
        ++replied;
        replied_ms += std::chrono::duration<double, std::milli>(results[i].latency).count();
        CHECK(results[i].body == body);
        CHECK(server.received(body));
      } else if (server.received(body)) {
        ++lost_replies;  // executed, but the client never learned it
      } else {
        ++lost_requests;
      }
    }
    const fault_proxy_stats s = proxy.stats();
    MESSAGE(n << " requests: " << replied << " answered, " << lost_requests << " dropped before the server, "
              << lost_replies << " dropped after it; mean latency of answered ones "
              << replied_ms / static_cast<double>(replied) << " ms");
    CHECK(s.requests == n);
    CHECK(s.dropped_requests == lost_requests);
    CHECK(s.dropped_replies == lost_replies);
    CHECK(s.forwarded == server.request_count());
    CHECK(s.forwarded == n - lost_requests);
    CHECK(s.replies == replied);
    CHECK(s.upstream_errors == 0);
    const double request_rate = static_cast<double>(lost_requests) / static_cast<double>(n);
    const double reply_rate = static_cast<double>(lost_replies) / static_cast<double>(s.forwarded);
    CHECK(request_rate >= 0.04);
    CHECK(request_rate <= 0.18);
    CHECK(reply_rate >= 0.04);
    CHECK(reply_rate <= 0.18);
    // Uniform 0..26 ms averages 13 ms; well below that means the delay is missing.
    CHECK(replied_ms / static_cast<double>(replied) >= 6.0);
  }

  TEST_CASE("reliable mode forwards everything, without delay") {
    echo_server server;
    fault_proxy_config config = config_for(server);
    config.p_drop_request = 0.5;
    config.p_drop_reply = 0.5;
    fault_proxy proxy(config);
    proxy.start();
    CHECK_FALSE(proxy.reliable());
    proxy.set_reliable(true);
    CHECK(proxy.reliable());

    constexpr std::size_t n = 300;
    const std::vector<outcome> results = run_clients(proxy.port(), "reliable-", n, 4);
    double total_ms = 0;
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(results[i].replied);
      CHECK(results[i].body == "reliable-" + std::to_string(i));
      total_ms += std::chrono::duration<double, std::milli>(results[i].latency).count();
    }
    // The proxy counts a reply once its write completes, which can be just after the client has it.
    CHECK(eventually([&proxy] { return proxy.stats().replies == n; }));
    const fault_proxy_stats s = proxy.stats();
    CHECK(s.requests == n);
    CHECK(s.forwarded == n);
    CHECK(s.replies == n);
    CHECK(s.dropped_requests == 0);
    CHECK(s.dropped_replies == 0);
    CHECK(server.request_count() == n);
    MESSAGE("reliable: mean latency " << total_ms / n << " ms");

    // And back: with p = 0.5 each way, a few requests are enough to see losses.
    proxy.set_reliable(false);
    const std::vector<outcome> lossy = run_clients(proxy.port(), "flip-", 40, 1);
    CHECK(std::count_if(lossy.begin(), lossy.end(), [](const outcome& o) { return !o.replied; }) > 0);
  }

  TEST_CASE("large bodies pass through intact") {
    echo_server server;
    fault_proxy_config config = config_for(server);
    config.reliable = true;
    fault_proxy proxy(config);
    proxy.start();

    asio::io_context ioc;
    std::string body(8 * 1024 * 1024, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + (i * 7919) % 26);
    std::optional<std::string> echoed;
    asio::co_spawn(ioc, send_once(proxy.port(), body, &echoed), fail_on_exception);
    ioc.run();
    REQUIRE(echoed.has_value());
    CHECK(echoed->size() == body.size());
    CHECK(*echoed == body);
  }

  TEST_CASE("an unreachable upstream closes the client's connection") {
    std::uint16_t dead_port = 0;
    {
      // A port that was just free and is now closed: connecting to it is refused.
      asio::io_context ioc;
      tcp::acceptor probe(ioc, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
      dead_port = probe.local_endpoint().port();
    }
    fault_proxy_config config;
    config.upstream_port = dead_port;
    config.reliable = true;
    fault_proxy proxy(config);
    proxy.start();
    const std::vector<outcome> results = run_clients(proxy.port(), "nowhere-", 3, 1);
    for (const outcome& o : results) CHECK_FALSE(o.replied);
    CHECK(eventually([&proxy] { return proxy.stats().upstream_errors == 3; }));
    CHECK(proxy.stats().forwarded == 0);
  }

  TEST_CASE("stop ends idle and busy connections promptly") {
    // A listener that never accepts: connections to it complete in the kernel, requests are written into
    // its buffers, and replies never come, so forwarded requests hang on the upstream read.
    asio::io_context hole_ioc;
    tcp::acceptor hole(hole_ioc, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
    fault_proxy_config config;
    config.upstream_port = hole.local_endpoint().port();
    config.reliable = true;
    fault_proxy proxy(config);
    proxy.start();

    asio::io_context client_ioc;
    std::vector<outcome> results(4);
    std::atomic<bool> idle_connected{false};
    std::chrono::steady_clock::duration idle_closed_after{};
    asio::co_spawn(client_ioc, sit_idle(proxy.port(), &idle_connected, &idle_closed_after),
                   fail_on_exception);
    spawn_clients(client_ioc, proxy.port(), "stuck-", 4, &results);
    std::thread clients([&client_ioc] { client_ioc.run(); });
    CHECK(eventually([&] { return proxy.stats().forwarded == 4 && idle_connected; }));
    const auto start = std::chrono::steady_clock::now();
    proxy.stop();
    const auto took = std::chrono::steady_clock::now() - start;
    clients.join();
    CHECK(took < 1s);
    for (const outcome& o : results) {
      CHECK_FALSE(o.replied);
      CHECK(o.latency < 5s);
    }
    CHECK(idle_connected);
    CHECK(idle_closed_after < 5s);
    CHECK(proxy.stats().upstream_errors == 0);  // abandoned by stop(), not failed
    proxy.stop();                               // idempotent

    fault_proxy never_started(config);
    never_started.stop();
  }

  TEST_CASE("start refuses a second call and a non-numeric upstream") {
    fault_proxy_config config;
    config.upstream_port = 1;
    fault_proxy proxy(config);
    proxy.start();
    CHECK_THROWS_AS(proxy.start(), std::logic_error);

    config.upstream_host = "localhost";
    fault_proxy by_name(config);
    CHECK_THROWS(by_name.start());
  }
}

}  // namespace
}  // namespace mrkv::test
