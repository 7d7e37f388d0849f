// The HTTP/1.1 JSON server every mode runs.
//
// Thread model: `threads` io_contexts, each run by exactly one thread. One acceptor (on context 0)
// hands accepted connections round-robin to the contexts, and each connection is served by one
// coroutine that never leaves its context. So a handler runs on one thread at a time per connection,
// and handlers of different connections may run at once on different threads: state shared between
// connections must be thread-safe (the kv store shards it under mutexes) or the server must run one
// thread (the coordinator does, and keeps its tables lock-free on context 0).
//
// Every connection has an idle timeout (waiting for a request to begin), a read timeout (a begun
// request must arrive whole), and a write timeout; a connection over --max-connections is answered 503
// and closed at once. stop() stops accepting, closes idle connections, lets in-flight requests finish
// for at most `drain_timeout`, then stops the threads.
#pragma once

#include "mrkv/http/metrics.hpp"
#include "mrkv/http/router.hpp"
#include "mrkv/http/server_config.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace mrkv::http {

class server {
 public:
  // `mode` names the server in /healthz, /metrics and logs ("kvserver", "coordinator").
  // GET /healthz and GET /metrics are added to `routes` here.
  server(server_config config, std::string mode, router routes);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds, listens and starts the threads. Returns the bound endpoint (the real port when port was 0).
  // Throws std::runtime_error "cannot listen on HOST:PORT: reason" when the address can't be bound, and
  // boost::system::system_error when the TLS files can't be loaded.
  boost::asio::ip::tcp::endpoint start();

  // Makes SIGINT and SIGTERM call stop(). Call before start().
  void stop_on_signals();

  // Graceful stop (see the file comment). Thread-safe, idempotent, returns at once.
  void stop();

  // Blocks until every thread has ended (after stop()).
  void wait();

  // Context 0: where the acceptor lives, and where a single-threaded service keeps its state.
  boost::asio::io_context& main_context();

  const http::metrics& metrics() const;
  const server_config& config() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mrkv::http
