#include "mrkv/kv/log_format.hpp"

#include "mrkv/kv/crc32c.hpp"

#include <algorithm>
#include <cstring>

namespace mrkv::kv::disk {

void put_u16(std::string& out, std::uint16_t v) {
  char b[2] = {static_cast<char>(v), static_cast<char>(v >> 8)};
  out.append(b, 2);
}

void put_u32(std::string& out, std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 4);
}

void put_u64(std::string& out, std::uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 8);
}

std::uint32_t get_u32(const char* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::uint64_t get_u64(const char* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string_view reader::bytes(std::size_t n) noexcept {
  if (failed_ || bytes_.size() - at_ < n) {
    failed_ = true;
    return {};
  }
  auto out = bytes_.substr(at_, n);
  at_ += n;
  return out;
}

std::uint8_t reader::u8() noexcept {
  auto b = bytes(1);
  return b.empty() ? 0 : static_cast<std::uint8_t>(b[0]);
}

std::uint16_t reader::u16() noexcept {
  auto b = bytes(2);
  if (b.empty()) return 0;
  return static_cast<std::uint16_t>(static_cast<unsigned char>(b[0]) | (static_cast<unsigned char>(b[1]) << 8));
}

std::uint32_t reader::u32() noexcept {
  auto b = bytes(4);
  return b.empty() ? 0 : get_u32(b.data());
}

std::uint64_t reader::u64() noexcept {
  auto b = bytes(8);
  return b.empty() ? 0 : get_u64(b.data());
}

std::size_t begin_frame(std::string& out) {
  const std::size_t start = out.size();
  out.append(frame_overhead, '\0');
  return start;
}

void finish_frame(std::string& out, std::size_t start) {
  const auto length = static_cast<std::uint32_t>(out.size() - start - frame_overhead);
  std::string len;
  put_u32(len, length);
  std::memcpy(out.data() + start, len.data(), 4);
  std::uint32_t crc = crc32c(len);
  crc = crc32c(std::string_view(out).substr(start + frame_overhead), crc);
  std::string sum;
  put_u32(sum, crc);
  std::memcpy(out.data() + start + 4, sum.data(), 4);
}

void append_frame(std::string& out, std::string_view payload) {
  const auto start = begin_frame(out);
  out.append(payload);
  finish_frame(out, start);
}

std::string make_header(std::string_view magic, std::uint64_t number) {
  std::string h(magic);
  put_u64(h, number);
  put_u32(h, crc32c(h));
  return h;
}

std::optional<std::uint64_t> read_header(std::string_view file, std::string_view magic) {
  if (file.size() < header_size || file.substr(0, magic.size()) != magic) return std::nullopt;
  if (crc32c(file.substr(0, 16)) != get_u32(file.data() + 16)) return std::nullopt;
  return get_u64(file.data() + 8);
}

frame read_frame(std::string_view file, std::size_t offset) {
  frame f;
  if (offset >= file.size()) return f;
  f.status = frame::kind::bad;
  const std::size_t left = file.size() - offset;
  if (left < frame_overhead) return f;
  const std::uint32_t length = get_u32(file.data() + offset);
  if (length > max_payload || length > left - frame_overhead) return f;
  std::uint32_t crc = crc32c(file.substr(offset, 4));
  crc = crc32c(file.substr(offset + frame_overhead, length), crc);
  if (crc != get_u32(file.data() + offset + 4)) return f;
  f.status = frame::kind::ok;
  f.payload = file.substr(offset + frame_overhead, length);
  f.next = offset + frame_overhead + length;
  return f;
}

bool valid_record_follows(std::string_view file, std::size_t offset, std::uint64_t expected_lsn) {
  // A later record carries an lsn above expected_lsn and no further above it than the records that
  // could fit in the rest of the file; checking that before the checksum keeps the scan cheap.
  const std::uint64_t most_records = (file.size() - offset) / (frame_overhead + 8) + 1;
  for (std::size_t at = offset + 1; at + frame_overhead + 8 <= file.size(); ++at) {
    const std::uint32_t length = get_u32(file.data() + at);
    if (length < 8 || length > max_payload || length > file.size() - at - frame_overhead) continue;
    const std::uint64_t lsn = get_u64(file.data() + at + frame_overhead);
    if (lsn <= expected_lsn || lsn - expected_lsn > most_records) continue;
    if (read_frame(file, at).status == frame::kind::ok) return true;
  }
  return false;
}

bool looks_unwritten(std::string_view file, std::size_t offset) {
  constexpr std::size_t sector = 512;
  if (offset >= file.size() || file.size() - offset < frame_overhead) return false;
  auto zeros = [&file](std::size_t from, std::size_t to) {
    return std::all_of(file.begin() + static_cast<std::ptrdiff_t>(from), file.begin() + static_cast<std::ptrdiff_t>(to),
                       [](char c) { return c == '\0'; });
  };
  const std::size_t sector_end = std::min(file.size(), std::max(offset + frame_overhead, (offset / sector + 1) * sector));
  if (zeros(offset, sector_end)) return true;
  const std::size_t frame_end = std::min<std::size_t>(file.size(), offset + frame_overhead + get_u32(file.data() + offset));
  for (std::size_t s = (offset / sector + 1) * sector; s < frame_end && s + sector <= file.size(); s += sector)
    if (zeros(s, s + sector)) return true;
  return false;
}

}  // namespace mrkv::kv::disk
