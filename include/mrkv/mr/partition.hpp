// This file contains the partitioning function that decides which reduce task owns a key. It must match
// the lab's ihash bit for bit: the timing tests rely on which buckets end up empty or slow.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string_view>

namespace mrkv::mr {

// 32-bit FNV-1a over the key's bytes.
constexpr std::uint32_t fnv1a32(std::string_view bytes) noexcept {
  std::uint32_t h = 0x811c9dc5u;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x01000193u;  // unsigned arithmetic wraps mod 2^32, as the lab's Go code does
  }
  return h;
}

// The lab's ihash: FNV-1a with the sign bit cleared, because Go converts it to a (signed) int.
constexpr std::uint32_t ihash(std::string_view key) noexcept { return fnv1a32(key) & 0x7fffffffu; }

// The reduce task, in [0, n_reduce), that receives every pair with this key. Throws
// std::invalid_argument if n_reduce < 1.
constexpr int reduce_bucket(std::string_view key, int n_reduce) {
  if (n_reduce < 1) throw std::invalid_argument("reduce_bucket: n_reduce must be at least 1");
  return static_cast<int>(ihash(key) % static_cast<std::uint32_t>(n_reduce));
}

}  // namespace mrkv::mr
