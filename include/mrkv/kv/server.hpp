// This file contains the kvserver: the store of kv/store.hpp behind the routes of kv/protocol.hpp on the
// shared HTTP server, plus the timer that expires idle clients from the duplicate table.
//
// Routes: POST /v1/get, /v1/put, /v1/append (see kv/protocol.hpp), and GET /v1/stats ->
// {"keys": N, "bytes": N, "clients": N} (bytes of keys and values held; entries in the duplicate table).
// A write whose seq is lower than its client's latest gets 409 {"error": ...} and changes nothing; so does
// a repeat of the latest seq with the other operation (a put's seq reused for an append, or back).
//
// Thread model: the HTTP server runs `threads` io_contexts, one thread each, and calls the (synchronous)
// route handlers from all of them at once. The handlers share nothing but the store, which is sharded
// under mutexes held only for the map operation (see kv/store.hpp); no lock is held across a co_await.
// The expiry timer runs on the server's context 0 and takes the same shard locks.
//
// Durability (server_options::durability, kv/durable.hpp): the constructor recovers the store from the
// data directory before anything is served; writes are then async handlers that await the log.
#pragma once

#include "mrkv/http/router.hpp"
#include "mrkv/http/server.hpp"
#include "mrkv/kv/store.hpp"
#include "mrkv/kv/write_ahead_log.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <memory>
#include <optional>

namespace mrkv::kv {

class durable_log;

// The four routes over `data`, which must outlive the router. With `durable`, writes go through its log
// and are answered once durable (503 when they cannot be).
http::router make_routes(store& data, durable_log* durable = nullptr);

struct server_options {
  http::server_config http;
  store_options store;
  // How often idle clients are expired; zero picks a quarter of the TTL, between 1 s and 60 s.
  std::chrono::milliseconds sweep_interval{0};
  // Set: keys and the duplicate table are recovered from and logged to durability->dir (issue 12).
  std::optional<wal_options> durability;
};

class server {
 public:
  explicit server(server_options options);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // As http::server: bind, listen, start the threads (and the expiry timer); returns the bound endpoint.
  boost::asio::ip::tcp::endpoint start();
  void stop_on_signals();
  void stop();
  void wait();

  kv::store& data() noexcept;
  durable_log* durable() noexcept;  // null when memory-only
  const http::server& http() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mrkv::kv
