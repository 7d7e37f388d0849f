// This file contains the on-disk formats of the kvserver's durability (issue 12): the frames that every
// write-ahead log record and every snapshot entry is stored in, the headers of log segments and
// snapshots, and the reader that tells a torn tail (a crash in mid-write: cut it off) from damage
// (stop the start: nothing is silently lost). Pure: bytes in, bytes out, no I/O.
//
// A frame is  u32 length | u32 crc32c(length bytes, payload) | payload  (little-endian). The checksum
// covers the length, so a flipped bit anywhere in a frame is caught.
//
// A log segment (wal-<first lsn>.log) is a 20-byte header  "MRKVWAL1" | u64 first lsn | u32 crc32c
// followed by frames whose payload is  u64 lsn | command bytes  (encoded by kv/durable.hpp); lsns are
// consecutive across segments. A snapshot (snap-<next lsn>.snap) is  "MRKVSNP1" | u64 next lsn | u32
// crc32c  followed by entry frames and one end frame (payload: 0x00 | u64 entry count); it holds the
// state after every record below `next lsn`, and a snapshot without its end frame is not one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mrkv::kv::disk {

inline constexpr std::size_t frame_overhead = 8;
inline constexpr std::size_t header_size = 20;
// Larger than any record a request can make (bodies are at most 32 MiB), small enough to refuse a
// damaged length without reading gigabytes.
inline constexpr std::size_t max_payload = std::size_t{96} << 20;
inline constexpr std::string_view segment_magic = "MRKVWAL1";
inline constexpr std::string_view snapshot_magic = "MRKVSNP1";

void put_u16(std::string& out, std::uint16_t v);
void put_u32(std::string& out, std::uint32_t v);
void put_u64(std::string& out, std::uint64_t v);
std::uint32_t get_u32(const char* p) noexcept;
std::uint64_t get_u64(const char* p) noexcept;

// Reads fixed-width fields and length-prefixed strings from a payload; any read past the end sets
// failed() and yields zeros, so a decoder checks once at the end.
class reader {
 public:
  explicit reader(std::string_view bytes) noexcept : bytes_(bytes) {}
  std::uint8_t u8() noexcept;
  std::uint16_t u16() noexcept;
  std::uint32_t u32() noexcept;
  std::uint64_t u64() noexcept;
  std::string_view bytes(std::size_t n) noexcept;
  bool failed() const noexcept { return failed_; }
  bool at_end() const noexcept { return at_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  std::size_t at_ = 0;
  bool failed_ = false;
};

void append_frame(std::string& out, std::string_view payload);
// Appends a frame whose payload the caller writes after this call returns the frame's start, then
// seals with finish_frame (saves copying a large value into a payload string first).
std::size_t begin_frame(std::string& out);
void finish_frame(std::string& out, std::size_t start);

std::string make_header(std::string_view magic, std::uint64_t number);
// The number in a valid header with this magic; nullopt when the header is short or damaged.
std::optional<std::uint64_t> read_header(std::string_view file, std::string_view magic);

struct frame {
  enum class kind : std::uint8_t { ok, end, bad };
  kind status = kind::end;
  std::string_view payload;  // ok: the payload
  std::size_t next = 0;      // ok: the offset just past this frame
};
// The frame at `offset` of `file`: ok, end (offset is the end of the file), or bad (short, too long, or
// its checksum does not match).
frame read_frame(std::string_view file, std::size_t offset);

// After a bad frame at `offset` of a log segment whose record there should carry `expected_lsn`:
// whether any whole, valid record with a later lsn follows it. If so the log is damaged at `offset`;
// if not, everything from `offset` on is a torn tail.
bool valid_record_follows(std::string_view file, std::size_t offset, std::uint64_t expected_lsn);

// After a bad frame at `offset` that valid records follow: whether it looks never written rather than
// damaged, as a power cut leaves the unsynced end of a file whose later pages reached the disk and
// earlier ones did not (after etcd's torn-entry rule): zeros from `offset` to the end of its 512-byte
// sector (a frame header at least), or a whole zero sector among the later ones the frame its header
// claims reaches into.
bool looks_unwritten(std::string_view file, std::size_t offset);

}  // namespace mrkv::kv::disk
