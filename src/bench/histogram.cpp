#include "mrkv/bench/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace mrkv::bench {

std::size_t histogram::index_of(std::uint64_t ns) noexcept {
  if (ns < (1u << sub_bits)) return static_cast<std::size_t>(ns);  // exact below 64 ns
  int octave = std::bit_width(ns) - sub_bits;                        // >= 1
  std::uint64_t sub = (ns >> (octave - 1)) - (1u << sub_bits);       // 0..63 within the octave
  std::size_t index = (static_cast<std::size_t>(octave) << sub_bits) + static_cast<std::size_t>(sub);
  return std::min(index, static_cast<std::size_t>(((octaves + 1) << sub_bits) - 1));
}

std::uint64_t histogram::upper_bound_of(std::size_t index) noexcept {
  std::size_t octave = index >> sub_bits;
  std::uint64_t sub = index & ((1u << sub_bits) - 1);
  if (octave == 0) return sub;
  return (((1u << sub_bits) + sub + 1) << (octave - 1)) - 1;
}

void histogram::record(std::chrono::nanoseconds latency) noexcept {
  auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(0, latency.count()));
  ++buckets_[index_of(ns)];
  ++count_;
  max_ = std::max(max_, ns);
  sum_ += static_cast<long double>(ns);
}

void histogram::merge(const histogram& other) noexcept {
  for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

std::chrono::nanoseconds histogram::mean() const noexcept {
  if (count_ == 0) return {};
  return std::chrono::nanoseconds(static_cast<std::int64_t>(sum_ / static_cast<long double>(count_)));
}

std::chrono::nanoseconds histogram::percentile(double fraction) const noexcept {
  if (count_ == 0) return {};
  auto wanted = static_cast<std::uint64_t>(std::ceil(std::clamp(fraction, 0.0, 1.0) * static_cast<double>(count_)));
  wanted = std::max<std::uint64_t>(wanted, 1);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= wanted) return std::chrono::nanoseconds(static_cast<std::int64_t>(std::min(upper_bound_of(i), max_)));
  }
  return std::chrono::nanoseconds(static_cast<std::int64_t>(max_));
}

}  // namespace mrkv::bench
