#include "session.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/http/request_handling.hpp"
#include "wire.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <array>
#include <tuple>
#include <type_traits>
#include <vector>

namespace mrkv::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool expects_continue(const request& req) {
  auto it = req.find(bhttp::field::expect);
  return it != req.end() && beast::iequals(it->value(), "100-continue");
}

class session {
 public:
  explicit session(session_services services)
      : config(services.config), mode(services.mode), routes(services.routes), counters(services.counters),
        tls(services.tls), stopping(services.stopping), registry(services.registry) {}

  asio::awaitable<void> run(tcp::socket socket) {
    beast::tcp_stream tcp_stream(std::move(socket));
    boost::system::error_code ignored;
    tcp_stream.socket().set_option(tcp::no_delay(true), ignored);
    if (!tls) {
      co_await serve(tcp_stream);
      tcp_stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *tls);
    beast::get_lowest_layer(stream).expires_after(config.read_timeout);
    auto [handshake_ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (handshake_ec) {
      log::debug("http", mode + " TLS handshake failed: " + handshake_ec.message());
      co_return;
    }
    co_await serve(stream);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
    co_await stream.async_shutdown(use_tuple);
  }

 private:
  const server_config& config;
  const std::string& mode;
  const router& routes;
  http::metrics& counters;
  asio::ssl::context* tls;
  const std::atomic<bool>& stopping;
  std::list<connection_slot>& registry;

  // Answers a request the server refuses before routing (400, 413, 431) and closes the connection.
  template <class Stream>
  asio::awaitable<void> write_and_close(Stream& stream, unsigned status, std::string_view message) {
    counters.record_unmatched(status);
    log::debug("http", mode + " refused a request: " + std::to_string(status) + " " + std::string(message));
    auto res = make_response(error_reply(status, message), 11, false, false);
    std::string head;
    beast::get_lowest_layer(stream).expires_after(config.write_timeout);
    if (co_await write_response(stream, head, res)) co_return;
    co_await linger(stream);
  }

  // A client that sends its whole body before reading (Python's http.client, node's fetch: most
  // libraries without Expect: 100-continue) would see a reset instead of the answer if the socket were
  // closed with its bytes unread, as the kernel answers unread data with RST. So, as nginx's lingering
  // close does, half-close and read what still comes, for a bounded time and size, before closing. A
  // separate coroutine so that its buffer lives only while it runs, never in an idle session's frame.
  template <class Stream>
  asio::awaitable<void> linger(Stream& stream) {
    constexpr std::size_t max_discarded = 64 << 20;
    constexpr auto max_time = std::chrono::seconds(5);
    constexpr auto quiet_time = std::chrono::seconds(1);
    auto& lowest = beast::get_lowest_layer(stream);
    boost::system::error_code ignored;
    // TLS has no half-close without ending the session; a plain connection gets FIN after the answer.
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) lowest.socket().shutdown(tcp::socket::shutdown_send, ignored);
    const auto give_up = std::chrono::steady_clock::now() + max_time;
    std::vector<char> sink(16 * 1024);
    std::size_t discarded = 0;
    while (discarded < max_discarded && std::chrono::steady_clock::now() < give_up) {
      lowest.expires_after(std::min<std::chrono::steady_clock::duration>(quiet_time, give_up - std::chrono::steady_clock::now()));
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
      if (ec) break;
      discarded += n;
    }
  }

  // The request loop of one connection, plain or TLS.
  template <class Stream>
  asio::awaitable<void> serve(Stream& stream) {
    auto& lowest = beast::get_lowest_layer(stream);
    auto self = registry.insert(registry.end(), connection_slot{&lowest, false});
    struct unregister {
      std::list<connection_slot>& list;
      std::list<connection_slot>::iterator it;
      ~unregister() { list.erase(it); }
    } guard{registry, self};

    beast::flat_buffer buffer;
    std::string head;  // a response's head; its capacity carries over to the next one
    // The idle wait reads into this, in the coroutine's frame, so that a connection that sends nothing
    // holds no buffer of its own (5,000 idle connections: 8.2 KB each before, see flood_test.cpp).
    std::array<char, 512> first_bytes;
    while (!stopping.load()) {
      if (buffer.size() == 0) {
        // Idle: wait for the first bytes of the next request under the (long) idle timeout. A buffer
        // grown for a big request is not kept while the connection idles.
        self->busy = false;
        if (buffer.capacity() > 64 * 1024) buffer.shrink_to_fit();
        lowest.expires_after(config.idle_timeout);
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(first_bytes), use_tuple);
        if (ec) break;
        asio::buffer_copy(buffer.prepare(n), asio::buffer(first_bytes.data(), n));
        buffer.commit(n);
      }
      self->busy = true;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(config.max_body);
      parser.header_limit(static_cast<std::uint32_t>(config.max_header));
      lowest.expires_after(config.read_timeout);
      // The head first, so that a request can be refused, or invited to send its body, before the body.
      auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
      if (!ec) {
        const auto& req = parser.get();
        if (req.version() >= 11 && req.find(bhttp::field::host) == req.end()) {
          co_await write_and_close(stream, 400, "HTTP/1.1 request without a Host header");
          break;
        }
        // curl waits a second for this before it sends any body over 1 MiB.
        if (!parser.is_done() && req.version() >= 11 && expects_continue(req)) {
          auto [continue_ec, written] =
              co_await asio::async_write(stream, asio::buffer(continue_bytes.data(), continue_bytes.size()), use_tuple);
          if (continue_ec) break;
        }
        if (!parser.is_done()) std::tie(ec, n) = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
      }
      if (ec == bhttp::error::body_limit) {
        co_await write_and_close(stream, 413, "body larger than " + std::to_string(config.max_body) + " bytes");
        break;
      }
      if (ec == bhttp::error::header_limit) {
        co_await write_and_close(stream, 431, "header larger than " + std::to_string(config.max_header) + " bytes");
        break;
      }
      if (ec && ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
          ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
        co_await write_and_close(stream, 400, "malformed HTTP request: " + ec.message());
        break;
      }
      if (ec) {
        if (ec == beast::error::timeout)
          log::debug("http", mode + " closed a connection whose request did not arrive within the read timeout");
        break;
      }
      auto res = co_await handle_request(routes, config, counters, parser.release());
      if (stopping.load()) res.keep_alive(false);
      bool keep_alive = res.keep_alive();
      lowest.expires_after(config.write_timeout);
      auto write_ec = co_await write_response(stream, head, res);
      if (write_ec || !keep_alive) break;
    }
  }
};

}  // namespace

asio::awaitable<void> run_session(tcp::socket socket, session_services services) {
  session one(services);
  co_await one.run(std::move(socket));
}

}  // namespace mrkv::http
