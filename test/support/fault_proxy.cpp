#include "support/fault_proxy.hpp"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <list>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>

#include "mrkv/common/log.hpp"

namespace mrkv::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view component = "fault_proxy";

void log_session_failure(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error(component, std::string("session ended by an exception: ") + ex.what());
  } catch (...) {
    log::error(component, "session ended by an unknown exception");
  }
}

// An idle kept-alive upstream connection that the server has since closed reads as EOF at once, while a
// live one has nothing to read. Forwarding on a dead one would turn into an upstream error, so check
// first. (The server can still close it right after the check; that request then fails like a drop.)
bool upstream_gone(tcp::socket& socket) {
  beast::error_code ec;
  char byte = 0;
  socket.receive(asio::buffer(&byte, 1), tcp::socket::message_peek, ec);
  return ec != asio::error::would_block;  // EOF, an error, or bytes nobody asked for
}

}  // namespace

struct fault_proxy::impl {
  // What stop() needs to reach in a live session; touched only on the proxy's thread.
  struct connection {
    beast::tcp_stream* client;
    std::optional<beast::tcp_stream>* upstream;
    asio::steady_timer* delay;

    void close() const {
      client->close();
      if (*upstream) (*upstream)->close();
      delay->cancel();
    }
  };

  // Removes a session from `connections` when its coroutine ends, however it ends.
  struct registration {
    impl* owner;
    std::list<connection>::iterator it;
    ~registration() { owner->connections.erase(it); }
  };

  explicit impl(fault_proxy_config c) : config(std::move(c)), reliable(config.reliable) {
    seed = config.seed != 0 ? config.seed : std::random_device{}() * 0x100000001ULL + std::random_device{}();
    if (seed == 0) seed = 1;
    dice.seed(seed);
  }

  // Constant after construction.
  const fault_proxy_config config;
  std::uint64_t seed = 0;

  std::atomic<bool> reliable;
  std::atomic<std::uint64_t> requests{0}, dropped_requests{0}, forwarded{0}, dropped_replies{0}, replies{0},
      upstream_errors{0};
  std::uint16_t port = 0;  // written by start() before the thread exists

  // Touched only on the proxy's thread once it runs.
  std::mt19937_64 dice;
  bool stopping = false;
  std::list<connection> connections;
  tcp::endpoint upstream;

  // Declared after everything the coroutines use, so that if the context ever destroys unfinished
  // coroutine frames, what they unregister from still exists; the acceptor goes before its context.
  asio::io_context ioc{1};
  std::optional<tcp::acceptor> acceptor;
  std::thread thread;
  bool started = false;  // start()/stop() bookkeeping; guarded by lifecycle
  std::mutex lifecycle;

  bool roll(double p) { return p > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(dice) < p; }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor->async_accept(use_tuple);
      if (ec) {
        // Retrying a failing accept (out of descriptors, say) would spin; a test is better off seeing
        // refused connections and this line.
        if (!stopping && ec != asio::error::operation_aborted) {
          log::error(component, "accept failed, no longer listening: " + ec.message());
        }
        co_return;
      }
      asio::co_spawn(ioc, run_session(std::move(socket)), log_session_failure);
    }
  }

  // `this` outlives the io_context's work: stop() joins the thread only after every session has ended.
  asio::awaitable<void> run_session(tcp::socket socket) {
    beast::tcp_stream client(std::move(socket));
    std::optional<beast::tcp_stream> upstream_stream;
    asio::steady_timer delay(ioc);
    if (stopping) co_return;
    connections.push_back(connection{&client, &upstream_stream, &delay});
    const registration registered{this, std::prev(connections.end())};

    beast::flat_buffer client_buffer;
    beast::flat_buffer upstream_buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> request_parser;
      request_parser.body_limit(config.body_limit);
      client.expires_after(config.idle_timeout);
      auto [read_ec, read_n] = co_await bhttp::async_read(client, client_buffer, request_parser, use_tuple);
      if (read_ec || stopping) break;
      ++requests;
      bhttp::request<bhttp::string_body> request = request_parser.release();

      // One decision per request, even if the mode flips while it is in flight.
      const bool lossy = !reliable.load();
      if (lossy && config.max_delay.count() > 0) {
        delay.expires_after(std::chrono::milliseconds(
            std::uniform_int_distribution<std::int64_t>(0, config.max_delay.count())(dice)));
        auto [wait_ec] = co_await delay.async_wait(use_tuple);
        if (wait_ec || stopping) break;
      }
      if (lossy && roll(config.p_drop_request)) {
        ++dropped_requests;
        break;
      }

      if (upstream_stream && upstream_gone(upstream_stream->socket())) {
        upstream_stream.reset();
        upstream_buffer.clear();
      }
      if (!upstream_stream) {
        // A fresh stream each time: one whose timer has fired must not be reused.
        upstream_stream.emplace(ioc);
        upstream_stream->expires_after(config.upstream_timeout);
        auto [connect_ec] = co_await upstream_stream->async_connect(upstream, use_tuple);
        if (connect_ec || stopping) {
          if (!stopping) ++upstream_errors;
          break;
        }
        beast::error_code ignored;
        upstream_stream->socket().non_blocking(true, ignored);  // for upstream_gone's peek
      }
      upstream_stream->expires_after(config.upstream_timeout);
      auto [forward_ec, forward_n] = co_await bhttp::async_write(*upstream_stream, request, use_tuple);
      if (forward_ec || stopping) {
        if (!stopping) ++upstream_errors;
        break;
      }
      ++forwarded;

      bhttp::response_parser<bhttp::string_body> response_parser;
      response_parser.body_limit(config.body_limit);
      upstream_stream->expires_after(config.upstream_timeout);
      auto [reply_ec, reply_n] =
          co_await bhttp::async_read(*upstream_stream, upstream_buffer, response_parser, use_tuple);
      if (reply_ec || stopping) {
        if (!stopping) ++upstream_errors;
        break;
      }
      bhttp::response<bhttp::string_body> response = response_parser.release();
      if (lossy && roll(config.p_drop_reply)) {
        ++dropped_replies;
        break;
      }

      const bool keep_alive = request.keep_alive() && response.keep_alive();
      client.expires_after(config.client_write_timeout);
      auto [answer_ec, answer_n] = co_await bhttp::async_write(client, response, use_tuple);
      if (answer_ec) break;
      ++replies;  // even while stopping: the client has this reply, and stats() must say so
      if (stopping || !keep_alive) break;
    }

    // Dropping a message means the client's connection just ends, as when a server dies mid-request.
    beast::error_code ignored;
    client.socket().shutdown(tcp::socket::shutdown_both, ignored);
    client.close();
    if (upstream_stream) upstream_stream->close();
  }

  void close_everything() {
    stopping = true;
    beast::error_code ignored;
    acceptor->close(ignored);
    for (const connection& c : connections) c.close();
  }
};

fault_proxy::fault_proxy(fault_proxy_config config) : impl_(std::make_unique<impl>(std::move(config))) {}

fault_proxy::~fault_proxy() {
  stop();
}

void fault_proxy::start() {
  std::lock_guard lock(impl_->lifecycle);
  if (impl_->started) throw std::logic_error("fault_proxy::start called twice");
  impl_->upstream =
      tcp::endpoint(asio::ip::make_address(impl_->config.upstream_host), impl_->config.upstream_port);
  impl_->acceptor.emplace(impl_->ioc, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
  impl_->port = impl_->acceptor->local_endpoint().port();
  impl_->started = true;
  asio::co_spawn(impl_->ioc, impl_->accept_loop(), log_session_failure);
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
  log::debug(component, "listening on " + address() + ", forwarding to " + impl_->config.upstream_host + ":" +
                            std::to_string(impl_->config.upstream_port));
}

void fault_proxy::stop() {
  std::lock_guard lock(impl_->lifecycle);
  if (!impl_->thread.joinable()) return;
  // Closing every socket and timer completes every pending operation, so each coroutine unwinds and
  // run() returns for lack of work; no io_context::stop(), which would skip the unwinding.
  asio::post(impl_->ioc, [p = impl_.get()] { p->close_everything(); });
  impl_->thread.join();
}

std::uint16_t fault_proxy::port() const {
  return impl_->port;
}

std::string fault_proxy::address() const {
  return "127.0.0.1:" + std::to_string(impl_->port);
}

void fault_proxy::set_reliable(bool reliable) {
  impl_->reliable.store(reliable);
}

bool fault_proxy::reliable() const {
  return impl_->reliable.load();
}

fault_proxy_stats fault_proxy::stats() const {
  return fault_proxy_stats{impl_->requests.load(),  impl_->dropped_requests.load(),
                           impl_->forwarded.load(), impl_->dropped_replies.load(),
                           impl_->replies.load(),   impl_->upstream_errors.load()};
}

std::uint64_t fault_proxy::seed() const {
  return impl_->seed;
}

}  // namespace mrkv::test
