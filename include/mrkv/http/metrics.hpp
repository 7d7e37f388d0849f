// Counters a server keeps for GET /metrics (Prometheus text format): requests by route and status
// (requests refused before routing, 400/413/431, count under route "unmatched"), connections in flight,
// and a request latency histogram per route. Updated from every I/O thread with relaxed
// atomics; rendering reads a slightly torn but monotonic snapshot, which Prometheus tolerates.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mrkv::http {

class metrics {
 public:
  // `routes` names the label of each route index; one more slot, "unmatched", counts 404/405.
  explicit metrics(std::vector<std::string> routes);

  void record_request(std::size_t route_index, unsigned status, std::chrono::nanoseconds latency) noexcept;
  void record_unmatched(unsigned status) noexcept { record_request(routes_.size() - 1, status, {}); }
  void connection_opened() noexcept { connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_closed() noexcept { connections_.fetch_sub(1, std::memory_order_relaxed); }
  void connection_refused() noexcept { refused_.fetch_add(1, std::memory_order_relaxed); }
  std::int64_t connections() const noexcept { return connections_.load(std::memory_order_relaxed); }

  // Every series, prefixed "mrkv_", with a `mode` label on each.
  std::string render(const std::string& mode) const;

  static constexpr std::array<unsigned, 15> tracked_statuses{200, 201, 204, 400, 401, 404, 405, 409,
                                                             412, 413, 429, 431, 500, 503, 0};

 private:
  using status_counters = std::array<std::atomic<std::uint64_t>, tracked_statuses.size()>;
  static constexpr std::array<double, 16> bucket_bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                        0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};

  struct latency_histogram {
    std::array<std::atomic<std::uint64_t>, bucket_bounds.size() + 1> buckets{};
    std::atomic<std::uint64_t> sum_ns{0};
  };

  std::vector<std::string> routes_;
  std::unique_ptr<status_counters[]> by_route_;
  std::unique_ptr<latency_histogram[]> latency_by_route_;  // the "unmatched" slot stays empty
  std::atomic<std::int64_t> connections_{0};
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace mrkv::http
