// A latency histogram for the load generator: log-linear buckets (64 per power of two, so any
// percentile is within ~1.6% of the truth), fixed memory, cheap to record, mergeable across threads.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace mrkv::bench {

class histogram {
 public:
  void record(std::chrono::nanoseconds latency) noexcept;
  void merge(const histogram& other) noexcept;

  std::uint64_t count() const noexcept { return count_; }
  std::chrono::nanoseconds max() const noexcept { return std::chrono::nanoseconds(max_); }
  std::chrono::nanoseconds mean() const noexcept;
  // The smallest recorded latency such that a `fraction` (0..1] of all samples are at or below it
  // (reported as its bucket's upper bound, capped by the true maximum).
  std::chrono::nanoseconds percentile(double fraction) const noexcept;

 private:
  static constexpr int sub_bits = 6;  // 64 sub-buckets per octave
  static constexpr int octaves = 40;  // up to 2^40 ns, about 18 minutes
  static std::size_t index_of(std::uint64_t ns) noexcept;
  static std::uint64_t upper_bound_of(std::size_t index) noexcept;

  std::array<std::uint64_t, (octaves + 1) << sub_bits> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace mrkv::bench
