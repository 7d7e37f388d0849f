// This file contains the kvserver: the store of kv/store.hpp behind the routes of kv/protocol.hpp on the
// shared HTTP server, plus the timers that expire idle clients from the duplicate table and keys whose
// lease ran out.
//
// Routes: POST /v1/get, /v1/put, /v1/append, /v1/delete, /v1/list (see kv/protocol.hpp), and GET
// /v1/stats -> {"keys": N, "bytes": N, "clients": N} (bytes of keys and values held; entries in the
// duplicate table). A write whose seq is lower than its client's latest gets 409 {"error": ...} and
// changes nothing; so does a repeat of the latest seq with another operation (a put's seq reused for an
// append, or back). A write whose version condition fails gets 412 {"error": "version mismatch",
// "version": CURRENT}.
//
// Writes (put, append, delete, and lease expiries) go through the server's write_path
// (kv/write_path.hpp), as async routes; get and stats are synchronous and read the store; a list page
// is read and encoded on the server's listing thread (an async route), since a page of 10,000 keys is
// milliseconds of work that would hold up every other request of its I/O thread.
//
// Thread model: the HTTP server runs `threads` io_contexts, one thread each, and calls the (synchronous)
// route handlers from all of them at once. The handlers share nothing but the store, which is sharded
// under mutexes held only for the map operation (see kv/store.hpp); no lock is held across a co_await.
// The expiry timer runs on the server's context 0 and takes the same shard locks; so does the listing
// thread, one shard at a time (see "Listing" in kv/store.hpp).
#pragma once

#include "mrkv/http/router.hpp"
#include "mrkv/http/server.hpp"
#include "mrkv/kv/store.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <functional>
#include <memory>

namespace mrkv::kv {

class write_path;  // kv/write_path.hpp
// How a server makes its write path over its store (called once, before the server starts).
using write_path_factory = std::function<std::unique_ptr<write_path>(store&)>;

// The routes over `data` with writes through `writes`, and list pages read on `listing` (null: on the
// I/O thread); all must outlive the router, and the pool must be joined before the server's contexts
// and `data` are destroyed.
http::router make_routes(store& data, write_path& writes, boost::asio::thread_pool* listing = nullptr);
// The same with a memory-only write path that the router owns.
http::router make_routes(store& data);

struct server_options {
  http::server_config http;
  store_options store;
  // How often idle clients are expired; zero picks a quarter of the TTL, between 1 s and 60 s.
  std::chrono::milliseconds sweep_interval{0};
  // How often leases are checked for expiry: a key outlives its lease by up to about this much.
  std::chrono::milliseconds lease_interval{25};
  // Makes the write path over the server's store; empty: memory_write_path.
  write_path_factory make_write_path;
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
  kv::write_path& writes() noexcept;
  const http::server& http() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mrkv::kv
