// One connection, served by one coroutine that never leaves its context: the TLS handshake when the
// server speaks HTTPS, then the request loop under the idle, read and write timeouts (server_config),
// with 100 Continue, the refusals made before routing (400, 413, 431, each answered and followed by a
// lingering close) and handle_request for the rest. Private to the http layer; server.cpp accepts the
// connections and owns what a session borrows.
#pragma once

#include "mrkv/http/metrics.hpp"
#include "mrkv/http/router.hpp"
#include "mrkv/http/server_config.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <atomic>
#include <list>
#include <string>

namespace mrkv::http {

// A connection as the server's stop logic sees it; touched only on its own context's thread.
struct connection_slot {
  boost::beast::tcp_stream* stream;
  bool busy;  // between a request's first byte and the end of its response
};

// What a session borrows from the server that accepted it, all of which outlives every session.
struct session_services {
  const server_config& config;
  const std::string& mode;
  const router& routes;
  http::metrics& counters;
  boost::asio::ssl::context* tls;  // null for plain HTTP
  const std::atomic<bool>& stopping;
  std::list<connection_slot>& registry;  // the connections of this session's context
};

boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket socket, session_services services);

}  // namespace mrkv::http
