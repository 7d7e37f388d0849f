#include "mrkv/http/server.hpp"

#include "mrkv/common/cores.hpp"
#include "mrkv/common/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <malloc.h>
#include <unistd.h>

#include <array>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
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

bool tokens_equal(std::string_view given, std::string_view expected) {
  // Constant time in the token's content: a mismatch at byte 0 costs what a mismatch at the end does.
  if (given.size() != expected.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
  return diff == 0;
}

bool authorized(const request& req, const std::string& token) {
  auto it = req.find(bhttp::field::authorization);
  if (it == req.end()) return false;
  std::string_view value = it->value();
  constexpr std::string_view scheme = "Bearer ";
  if (value.size() < scheme.size() || value.substr(0, scheme.size()) != scheme) return false;
  return tokens_equal(value.substr(scheme.size()), token);
}

response make_response(reply r, unsigned version, bool keep_alive, bool head) {
  response res{static_cast<bhttp::status>(r.status), version};
  res.set(bhttp::field::server, "mrkv/" MRKV_VERSION);
  res.set(bhttp::field::content_type, r.content_type);
  if (r.status == 401) res.set(bhttp::field::www_authenticate, "Bearer");
  res.keep_alive(keep_alive);
  if (r.body.empty() || r.body.back() != '\n') r.body.push_back('\n');  // curl's prompt on a line of its own
  if (head) {
    res.content_length(r.body.size());
  } else {
    res.body() = std::move(r.body);
    res.prepare_payload();
  }
  return res;
}

// The response's status line and fields as bytes on the wire, in a buffer that the connection reuses;
// the body follows from the response itself in the same gathered write. Beast's serializer, which this
// replaces, cost about a third of a small request's instructions (callgrind).
void serialize_head_into(std::string& out, const response& res) {
  out.clear();
  out += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  const unsigned status = res.result_int();
  out.push_back(static_cast<char>('0' + status / 100 % 10));
  out.push_back(static_cast<char>('0' + status / 10 % 10));
  out.push_back(static_cast<char>('0' + status % 10));
  out.push_back(' ');
  out += bhttp::obsolete_reason(res.result());
  out += "\r\n";
  for (const auto& field : res) {
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  out += "\r\n";
}

// Writes a response: its head from `head` (scratch space) and its body, in one gathered write.
template <class Stream>
asio::awaitable<boost::system::error_code> write_response(Stream& stream, std::string& head, const response& res) {
  serialize_head_into(head, res);
  const std::array<asio::const_buffer, 2> pieces{asio::buffer(head), asio::buffer(res.body())};
  auto [ec, written] = co_await asio::async_write(stream, pieces, use_tuple);
  co_return ec;
}

// Incident ids name one 500 in the log: the process id keeps them apart across restarts, a counter
// within one process.
std::string next_incident_id() {
  static std::atomic<std::uint64_t> next{1};
  char id[40];
  std::snprintf(id, sizeof id, "%x-%llu", static_cast<unsigned>(::getpid()),
                static_cast<unsigned long long>(next.fetch_add(1, std::memory_order_relaxed)));
  return id;
}

bool expects_continue(const request& req) {
  auto it = req.find(bhttp::field::expect);
  return it != req.end() && beast::iequals(it->value(), "100-continue");
}

const std::string_view continue_bytes = "HTTP/1.1 100 Continue\r\n\r\n";

const std::string& refusal_bytes() {
  static const std::string bytes = [] {
    std::string body = R"({"error":"too many connections; try again later"})" "\n";
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
           "Retry-After: 1\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  return bytes;
}

}  // namespace

asio::awaitable<response> handle_request(const router& routes, const server_config& config,
                                         http::metrics& counters, request req) {
  auto started = std::chrono::steady_clock::now();
  unsigned version = req.version();
  bool keep_alive = req.keep_alive();
  bool head = req.method() == verb::head;
  auto match = routes.find(req.method(), req.target());
  if (!match.found) {
    counters.record_unmatched(match.status);
    std::string what = match.status == 404 ? "no such path: " : "method not allowed on ";
    std::string target(req.target().substr(0, 128));
    log::debug("http", std::string(req.method_string()) + " " + target + " -> " + std::to_string(match.status));
    auto res = make_response(error_reply(match.status, what + target), version, keep_alive, head);
    if (match.status == 405) res.set(bhttp::field::allow, routes.allowed_methods(req.target()));
    co_return res;
  }
  reply answer;
  if (!match.found->public_route && !config.auth_token.empty() && !authorized(req, config.auth_token)) {
    answer = error_reply(401, "missing or wrong bearer token");
  } else {
    try {
      if (auto* sync = std::get_if<sync_handler>(&match.found->handler))
        answer = (*sync)(req);
      else
        answer = co_await std::get<async_handler>(match.found->handler)(std::move(req));
    } catch (const request_error& e) {
      answer = error_reply(e.status(), e.what());
    } catch (const std::exception& e) {
      // The exception's text may name files or echo input: it goes to the log, and the client gets an
      // id to quote that finds the log line.
      const std::string incident = next_incident_id();
      log::error("http", "handler for " + match.found->path + " failed (incident " + incident + "): " + e.what());
      answer = error_reply(500, "internal error (incident " + incident + ", see the server's log)");
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  counters.record_request(match.index, answer.status, elapsed);
  if (log::enabled(log::level::debug))
    log::debug("http", std::string(bhttp::to_string(match.found->method)) + " " + match.found->path + " -> " +
                           std::to_string(answer.status) + " in " + log::duration(elapsed));
  co_return make_response(std::move(answer), version, keep_alive, head);
}

struct server::impl {
  // A connection as the stop logic sees it; touched only on its own context's thread.
  struct connection {
    beast::tcp_stream* stream;
    bool busy;  // between a request's first byte and the end of its response
  };

  server_config config;
  std::string mode;
  router routes;
  std::optional<http::metrics> counters;

  std::vector<std::list<connection>> connections;  // one list per context; outlives the contexts
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::optional<asio::ssl::context> tls;  // set when the server speaks HTTPS
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> drain_timer;
  std::optional<asio::signal_set> signals;
  std::vector<std::thread> threads;
  std::size_t next_context = 0;

  std::atomic<bool> stopping{false};
  std::atomic<bool> finished{false};
  std::atomic<std::size_t> live{0};
  std::atomic<std::size_t> peak_live{0};  // most connections open since memory was last given back

  void finish() {
    if (finished.exchange(true)) return;
    for (auto& c : contexts) c->stop();
  }

  void session_ended() {
    counters->connection_closed();
    std::size_t now_live = live.fetch_sub(1) - 1;
    if (now_live == 0 && stopping.load()) asio::post(*contexts[0], [this] { finish(); });
    // A burst of connections leaves their buffers and frames in malloc's free lists, spread over every
    // thread's arena; once most of the burst is gone, hand those pages back to the OS (rarely: only
    // after a burst of hundreds, and only when three quarters of it has closed).
    std::size_t peak = peak_live.load();
    if (peak >= 64 && now_live * 4 < peak && peak_live.compare_exchange_strong(peak, now_live))
      asio::post(*contexts[0], [] { malloc_trim(0); });
  }

  void refuse(tcp::socket socket) {
    counters->connection_refused();
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(refusal_bytes()), ignored);
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto& target = *contexts[next_context++ % contexts.size()];
      auto [ec, socket] = co_await acceptor->async_accept(asio::any_io_executor(target.get_executor()), use_tuple);
      if (stopping.load() || ec == asio::error::operation_aborted) co_return;
      if (ec) {
        // Out of descriptors or a connection reset before accept: back off a little rather than spin.
        log::warn("http", mode + " accept failed: " + ec.message());
        asio::steady_timer pause(acceptor->get_executor(), std::chrono::milliseconds(50));
        co_await pause.async_wait(use_tuple);
        continue;
      }
      if (live.load() >= config.max_connections) {
        refuse(std::move(socket));
        continue;
      }
      std::size_t now_live = live.fetch_add(1) + 1;
      if (now_live > peak_live.load()) peak_live.store(now_live);
      counters->connection_opened();
      auto executor = socket.get_executor();
      std::size_t index = (next_context - 1) % contexts.size();
      auto session = run_session(std::move(socket), index);
      asio::co_spawn(executor, std::move(session), [this](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            log::error("http", mode + " connection ended by an unexpected error: " + ex.what());
          }
        }
        session_ended();
      });
    }
  }

  // Answers a request the server refuses before routing (400, 413, 431) and closes the connection.
  template <class Stream>
  asio::awaitable<void> write_and_close(Stream& stream, unsigned status, std::string_view message) {
    counters->record_unmatched(status);
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

  asio::awaitable<void> run_session(tcp::socket socket, std::size_t context_index) {
    beast::tcp_stream tcp_stream(std::move(socket));
    boost::system::error_code ignored;
    tcp_stream.socket().set_option(tcp::no_delay(true), ignored);
    if (!tls) {
      co_await serve(tcp_stream, context_index);
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
    co_await serve(stream, context_index);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
    co_await stream.async_shutdown(use_tuple);
  }

  // The request loop of one connection, plain or TLS.
  template <class Stream>
  asio::awaitable<void> serve(Stream& stream, std::size_t context_index) {
    auto& lowest = beast::get_lowest_layer(stream);
    auto& registry = connections[context_index];
    auto self = registry.insert(registry.end(), connection{&lowest, false});
    struct unregister {
      std::list<connection>& list;
      std::list<connection>::iterator it;
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
      auto res = co_await handle_request(routes, config, *counters, parser.release());
      if (stopping.load()) res.keep_alive(false);
      bool keep_alive = res.keep_alive();
      lowest.expires_after(config.write_timeout);
      auto write_ec = co_await write_response(stream, head, res);
      if (write_ec || !keep_alive) break;
    }
  }

  void begin_stop() {
    // Runs on context 0.
    boost::system::error_code ignored;
    if (acceptor) acceptor->close(ignored);
    if (signals) signals->cancel(ignored);
    if (live.load() == 0) return finish();
    drain_timer.emplace(*contexts[0], config.drain_timeout);
    drain_timer->async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      if (live.load() > 0)
        log::warn("http", mode + " drain timeout: closing " + std::to_string(live.load()) + " connections");
      finish();
    });
    for (std::size_t i = 0; i < contexts.size(); ++i) {
      asio::post(*contexts[i], [this, i] {
        for (auto& c : connections[i])
          if (!c.busy) c.stream->cancel();
      });
    }
  }
};

server::server(server_config config, std::string mode, router routes) : impl_(std::make_unique<impl>()) {
  if (config.threads == 0) config.threads = usable_cores();
  impl_->config = std::move(config);
  impl_->mode = std::move(mode);
  impl_->routes = std::move(routes);
  std::string mode_name = impl_->mode;
  impl_->routes.add_public(verb::get, "/healthz", [mode_name](const request&) {
    return json_reply({{"status", "ok"}, {"mode", mode_name}});
  });
  impl* self = impl_.get();
  impl_->routes.add(verb::get, "/metrics", [self](const request&) {
    auto text = self->counters->render(self->mode);
    if (self->config.extra_metrics) text += self->config.extra_metrics(self->mode);
    return reply{200, std::move(text), "text/plain; version=0.0.4"};
  });
  std::vector<std::string> names;
  for (const auto& r : impl_->routes.routes()) names.push_back(r.path);
  impl_->counters.emplace(std::move(names));
  impl_->connections.resize(impl_->config.threads);
  for (unsigned i = 0; i < impl_->config.threads; ++i) {
    impl_->contexts.push_back(std::make_unique<asio::io_context>(1));
    impl_->guards.push_back(asio::make_work_guard(*impl_->contexts.back()));
  }
}

server::~server() {
  stop();
  wait();
}

tcp::endpoint server::start() {
  auto& ctx = *impl_->contexts[0];
  if (!impl_->config.tls_cert_file.empty() || !impl_->config.tls_key_file.empty()) {
    if (impl_->config.tls_cert_file.empty() || impl_->config.tls_key_file.empty())
      throw std::invalid_argument("TLS needs both a certificate and a key");
    impl_->tls.emplace(asio::ssl::context::tls_server);
    impl_->tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1);
    impl_->tls->use_certificate_chain_file(impl_->config.tls_cert_file);
    impl_->tls->use_private_key_file(impl_->config.tls_key_file, asio::ssl::context::pem);
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(impl_->config.host, ec);
  const std::string where = impl_->config.host + ":" + std::to_string(impl_->config.port);
  if (ec) throw std::runtime_error("cannot listen on " + where + ": not an IP address");
  tcp::endpoint endpoint(address, impl_->config.port);
  impl_->acceptor.emplace(ctx);
  // Error codes rather than exceptions: Boost's system_error text carries its source location, and a
  // person wants the address and the reason ("address already in use").
  impl_->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl_->acceptor->bind(endpoint, ec);
  if (!ec) impl_->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    impl_->acceptor.reset();
    std::string reason = ec.message();  // strerror's capital would sit mid-sentence
    if (reason.size() > 1 && std::isupper(static_cast<unsigned char>(reason[0])) &&
        std::islower(static_cast<unsigned char>(reason[1])))
      reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
    throw std::runtime_error("cannot listen on " + where + ": " + reason);
  }
  auto bound = impl_->acceptor->local_endpoint();
  impl* self = impl_.get();
  asio::co_spawn(ctx, self->accept_loop(), [self](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::error("http", self->mode + " accept loop failed: " + ex.what());
    }
  });
  for (auto& c : impl_->contexts) {
    asio::io_context* context = c.get();
    impl_->threads.emplace_back([context, self] {
      for (;;) {
        try {
          context->run();
          return;
        } catch (const std::exception& e) {
          // A handler that throws outside a coroutine must not take the process down.
          log::error("http", self->mode + " event loop error: " + e.what());
        }
      }
    });
  }
  return bound;
}

void server::stop_on_signals() {
  impl* self = impl_.get();
  impl_->signals.emplace(*impl_->contexts[0], SIGINT, SIGTERM);
  impl_->signals->async_wait([self](boost::system::error_code ec, int signal) {
    if (ec) return;
    log::info("http", self->mode + " received " + (signal == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
    if (self->stopping.exchange(true)) return;
    for (auto& g : self->guards) g.reset();
    self->begin_stop();
  });
}

void server::stop() {
  if (impl_->stopping.exchange(true)) return;
  impl* self = impl_.get();
  for (auto& g : impl_->guards) g.reset();
  asio::post(*impl_->contexts[0], [self] { self->begin_stop(); });
}

void server::wait() {
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
}

asio::io_context& server::main_context() { return *impl_->contexts[0]; }

const http::metrics& server::metrics() const { return *impl_->counters; }

const server_config& server::config() const { return impl_->config; }

}  // namespace mrkv::http
