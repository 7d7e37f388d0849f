#include "mrkv/http/server.hpp"

#include "mrkv/common/cores.hpp"
#include "mrkv/common/log.hpp"
#include "session.hpp"
#include "wire.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <malloc.h>

#include <atomic>
#include <cctype>
#include <list>
#include <optional>
#include <thread>
#include <vector>

namespace mrkv::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

struct server::impl {
  server_config config;
  std::string mode;
  router routes;
  std::optional<http::metrics> counters;

  std::vector<std::list<connection_slot>> connections;  // one list per context; outlives the contexts
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
      session_services services{config, mode, routes, *counters, tls ? &*tls : nullptr, stopping, connections[index]};
      auto session = run_session(std::move(socket), services);
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
