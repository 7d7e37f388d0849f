// The key/value load generator behind `mrkv bench kv`: N keep-alive connections, each a coroutine
// issuing get/put/append in a given mix over K keys as fast as replies come back. Every reply is
// checked; an error is counted as an error, never as an operation.
#pragma once

#include "mrkv/bench/histogram.hpp"
#include "mrkv/http/client.hpp"
#include "mrkv/http/endpoint.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace mrkv::bench {

struct kv_load_config {
  http::url server;
  http::client_options client;  // token and TLS trust
  unsigned clients = 50;
  unsigned threads = 1;  // load-generator threads (connections are spread over them)
  std::chrono::milliseconds duration{10'000};
  std::chrono::milliseconds warmup{1'000};  // run, but don't record, this long first
  std::chrono::milliseconds request_timeout{5'000};
  std::uint64_t keys = 1000;
  std::size_t value_size = 16;
  unsigned get_weight = 1, put_weight = 1, append_weight = 0;
  bool preload = false;  // put every key once before measuring
};

struct kv_load_report {
  std::uint64_t operations = 0;  // successful, checked replies in the measured window
  std::uint64_t errors = 0;      // no answer, 4xx/5xx or a reply of the wrong shape
  std::uint64_t gets = 0, puts = 0, appends = 0;
  double seconds = 0;
  histogram latency;
  std::string first_error;  // one example, for the person reading the report
  double ops_per_second() const { return seconds > 0 ? static_cast<double>(operations) / seconds : 0; }
};

// Parses "get:put:append" weights such as "1:1:0" or "9:1". Throws std::invalid_argument.
void parse_mix(const std::string& mix, kv_load_config& config);

// Runs the load; blocks for warmup + duration (+ preload). Throws std::runtime_error when the server
// can't be reached at all.
kv_load_report run_kv_load(const kv_load_config& config);

}  // namespace mrkv::bench
