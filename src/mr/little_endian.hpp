// This file contains the fixed-width little-endian integers of the task files' binary formats
// (intermediate images, map output indexes), private to the MapReduce layer.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

namespace mrkv::mr::le {

inline void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline std::uint64_t get_u64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

}  // namespace mrkv::mr::le
