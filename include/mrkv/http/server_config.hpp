// What an HTTP server is told: where to listen, how many threads, the limits and timeouts every
// connection is held to, the bearer token and the TLS files. Filled from a mode's flags (cli/options).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace mrkv::http {

struct server_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  unsigned threads = 1;
  std::size_t max_connections = 10'000;
  std::size_t max_body = 1 << 20;            // bytes; larger bodies get 413
  std::size_t max_header = 16 << 10;         // bytes; larger headers get 431
  std::chrono::milliseconds idle_timeout{60'000};   // between requests on a keep-alive connection
  std::chrono::milliseconds read_timeout{10'000};   // from a request's first byte to its last
  std::chrono::milliseconds write_timeout{10'000};  // to send one response
  std::chrono::milliseconds drain_timeout{1'000};   // in-flight requests get this long after stop()
  std::string auth_token;  // when set, every non-public route needs "Authorization: Bearer <token>"
  std::string tls_cert_file;  // PEM certificate chain; with tls_key_file, the server speaks HTTPS only
  std::string tls_key_file;   // PEM private key
  // More Prometheus lines for GET /metrics (the kvserver's write-ahead log), given the mode label.
  std::function<std::string(const std::string& mode)> extra_metrics;
};

}  // namespace mrkv::http
