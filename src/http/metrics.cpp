#include "mrkv/http/metrics.hpp"

#include <malloc.h>

#include <cstdio>

namespace mrkv::http {

metrics::metrics(std::vector<std::string> routes) : routes_(std::move(routes)) {
  routes_.push_back("unmatched");
  by_route_ = std::make_unique<status_counters[]>(routes_.size());
  latency_by_route_ = std::make_unique<latency_histogram[]>(routes_.size());
  for (std::size_t r = 0; r < routes_.size(); ++r)
    for (auto& counter : by_route_[r]) counter.store(0, std::memory_order_relaxed);
}

void metrics::record_request(std::size_t route_index, unsigned status, std::chrono::nanoseconds latency) noexcept {
  if (route_index >= routes_.size()) route_index = routes_.size() - 1;
  std::size_t slot = tracked_statuses.size() - 1;  // "other"
  for (std::size_t i = 0; i + 1 < tracked_statuses.size(); ++i)
    if (tracked_statuses[i] == status) slot = i;
  by_route_[route_index][slot].fetch_add(1, std::memory_order_relaxed);
  if (route_index == routes_.size() - 1) return;  // unmatched requests have no meaningful latency
  double seconds = std::chrono::duration<double>(latency).count();
  std::size_t bucket = 0;
  while (bucket < bucket_bounds.size() && seconds > bucket_bounds[bucket]) ++bucket;
  auto& histogram = latency_by_route_[route_index];
  histogram.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  histogram.sum_ns.fetch_add(static_cast<std::uint64_t>(latency.count()), std::memory_order_relaxed);
}

std::string metrics::render(const std::string& mode) const {
  std::string out;
  out.reserve(4096);
  char line[256];
  out += "# HELP mrkv_http_requests_total HTTP requests answered, by route and status.\n";
  out += "# TYPE mrkv_http_requests_total counter\n";
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    for (std::size_t s = 0; s < tracked_statuses.size(); ++s) {
      auto n = by_route_[r][s].load(std::memory_order_relaxed);
      if (n == 0) continue;
      std::string status = tracked_statuses[s] ? std::to_string(tracked_statuses[s]) : "other";
      std::snprintf(line, sizeof line, "mrkv_http_requests_total{mode=\"%s\",route=\"%s\",status=\"%s\"} %llu\n",
                    mode.c_str(), routes_[r].c_str(), status.c_str(), static_cast<unsigned long long>(n));
      out += line;
    }
  }
  out += "# HELP mrkv_http_connections Open client connections.\n# TYPE mrkv_http_connections gauge\n";
  std::snprintf(line, sizeof line, "mrkv_http_connections{mode=\"%s\"} %lld\n", mode.c_str(),
                static_cast<long long>(connections_.load(std::memory_order_relaxed)));
  out += line;
  out += "# HELP mrkv_http_connections_refused_total Connections closed at once because of --max-connections.\n";
  out += "# TYPE mrkv_http_connections_refused_total counter\n";
  std::snprintf(line, sizeof line, "mrkv_http_connections_refused_total{mode=\"%s\"} %llu\n", mode.c_str(),
                static_cast<unsigned long long>(refused_.load(std::memory_order_relaxed)));
  out += line;
  // What the process holds, from glibc's allocator: in use, and freed but not given back to the OS
  // (fragmentation between live blocks, caches): the difference between a leak and a high-water mark.
  const auto heap = mallinfo2();
  out += "# HELP mrkv_process_heap_in_use_bytes Bytes allocated and not yet freed (malloc arenas and mmapped blocks).\n";
  out += "# TYPE mrkv_process_heap_in_use_bytes gauge\n";
  std::snprintf(line, sizeof line, "mrkv_process_heap_in_use_bytes{mode=\"%s\"} %llu\n", mode.c_str(),
                static_cast<unsigned long long>(heap.uordblks + heap.hblkhd));
  out += line;
  out += "# HELP mrkv_process_heap_free_bytes Bytes freed but still held by malloc, not returned to the OS.\n";
  out += "# TYPE mrkv_process_heap_free_bytes gauge\n";
  std::snprintf(line, sizeof line, "mrkv_process_heap_free_bytes{mode=\"%s\"} %llu\n", mode.c_str(),
                static_cast<unsigned long long>(heap.fordblks));
  out += line;
  out += "# HELP mrkv_http_request_duration_seconds Time from a whole request read to its response built, by route.\n";
  out += "# TYPE mrkv_http_request_duration_seconds histogram\n";
  for (std::size_t r = 0; r + 1 < routes_.size(); ++r) {
    const auto& histogram = latency_by_route_[r];
    const char* route = routes_[r].c_str();
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= bucket_bounds.size(); ++b) {
      cumulative += histogram.buckets[b].load(std::memory_order_relaxed);
      if (b < bucket_bounds.size())
        std::snprintf(line, sizeof line,
                      "mrkv_http_request_duration_seconds_bucket{mode=\"%s\",route=\"%s\",le=\"%g\"} %llu\n",
                      mode.c_str(), route, bucket_bounds[b], static_cast<unsigned long long>(cumulative));
      else
        std::snprintf(line, sizeof line,
                      "mrkv_http_request_duration_seconds_bucket{mode=\"%s\",route=\"%s\",le=\"+Inf\"} %llu\n",
                      mode.c_str(), route, static_cast<unsigned long long>(cumulative));
      out += line;
    }
    std::snprintf(line, sizeof line, "mrkv_http_request_duration_seconds_sum{mode=\"%s\",route=\"%s\"} %.9f\n",
                  mode.c_str(), route, static_cast<double>(histogram.sum_ns.load(std::memory_order_relaxed)) / 1e9);
    out += line;
    std::snprintf(line, sizeof line, "mrkv_http_request_duration_seconds_count{mode=\"%s\",route=\"%s\"} %llu\n",
                  mode.c_str(), route, static_cast<unsigned long long>(cumulative));
    out += line;
  }
  return out;
}

}  // namespace mrkv::http
