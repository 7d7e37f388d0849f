// This file contains CRC-32C (Castagnoli), the checksum on every write-ahead log record and snapshot
// frame (kv/log_format.hpp). The SSE4.2 instruction is used when the CPU has it, a table otherwise;
// both give the same value, which is the standard one (crc32c("123456789") == 0xE3069283).
#pragma once

#include <cstdint>
#include <string_view>

namespace mrkv::kv {

// `seed` is a previous result, to checksum a sequence piece by piece.
std::uint32_t crc32c(std::string_view bytes, std::uint32_t seed = 0) noexcept;

}  // namespace mrkv::kv
