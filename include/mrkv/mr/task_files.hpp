// This file contains the files that map and reduce tasks leave in the job's work directory: the name
// of the outputs ("mr-out-R"), the atomic write that publishes files, and the binary format of one
// partition of a map task's output (an intermediate image; map_output.hpp puts a map task's partitions
// in one file) with a validating decoder.
//
// Intermediate image format (all integers little-endian; varint = unsigned LEB128, at most 10 bytes):
//   header   8 bytes   "mrkvint" followed by the format version byte 0x01
//   records  per pair: varint key length, key bytes, varint value length, value bytes
//   footer  24 bytes   u64 record count, u64 checksum of every byte before the checksum (header,
//                      records and count), then "mrkvend\n"
// Keys and values are arbitrary bytes. The checksum is a 64-bit multiply/xorshift hash over 8-byte words
// (not cryptographic) that is certain to catch any corruption confined to one aligned 8-byte word.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mrkv::mr {

// A task's file couldn't be read or written, or is corrupt. The message is one line naming the file.
class task_file_error : public std::runtime_error {
 public:
  enum class kind {
    missing,  // the file does not exist (e.g. the output of a map task that never completed)
    io,       // any other failure to read, create, write or rename
    corrupt,  // an intermediate image or a map output file that fails validation
  };

  task_file_error(kind k, const std::string& what) : std::runtime_error(what), kind_(k) {}
  kind why() const noexcept { return kind_; }

 private:
  kind kind_;
};

// "mr-out-<reduce_id>", the output of reduce task reduce_id.
std::string output_file_name(int reduce_id);

enum class sync_mode {
  none,   // survives the writer process crashing, which is all a MapReduce task needs
  fsync,  // also survives the machine crashing: fsync the file before the rename, the directory after
};

// Publishes `contents` as `target` so that readers see either the old file or the complete new one,
// never a partial file: writes a temporary file in the same directory, then rename()s it over
// `target`. The temporary name is ".tmp-<target file name>.<pid>.<random hex>", hidden and never
// matching "mr-out*" or "mr-*", so a writer that dies midway leaves nothing a job's glob can pick up.
// On failure the temporary file is removed and task_file_error (kind io) is thrown. Safe to call
// from several threads or processes for the same target: the last rename wins, and MapReduce tasks
// that race this way write identical contents.
void write_file_atomically(const std::filesystem::path& target, std::string_view contents,
                           sync_mode sync = sync_mode::none);

// A file written piece by piece and published like write_file_atomically(): the pieces go to a hidden
// temporary file beside `target`, and commit() renames it over `target`. Destroyed without commit(), it
// removes the temporary file, so a task that fails midway publishes nothing. Throws task_file_error
// (kind io). For outputs too large to build in memory (a streaming reducer's).
class atomic_file_writer {
 public:
  explicit atomic_file_writer(std::filesystem::path target);
  ~atomic_file_writer();
  atomic_file_writer(const atomic_file_writer&) = delete;
  atomic_file_writer& operator=(const atomic_file_writer&) = delete;

  void append(std::string_view bytes);
  std::uint64_t size() const noexcept { return size_; }
  // The last byte appended (nullopt-like '\0' with size() == 0).
  char last_byte() const noexcept { return last_; }
  void commit();

 private:
  void flush();
  std::filesystem::path target_;
  std::filesystem::path temp_path_;
  int fd_ = -1;
  std::string pending_;
  std::uint64_t size_ = 0;
  char last_ = '\0';
  bool committed_ = false;
};

// The whole contents of a file. Throws task_file_error (kind missing or io).
std::string read_whole_file(const std::filesystem::path& path);

// One pair, as views into the buffer it was decoded from.
struct kv_view {
  std::string_view key;
  std::string_view value;
};

// Builds an intermediate file image in memory, one pair at a time.
class intermediate_encoder {
 public:
  intermediate_encoder();

  void add(std::string_view key, std::string_view value);
  std::uint64_t records() const noexcept { return records_; }

  // Appends the footer and returns the complete image; the encoder is then empty again.
  std::string finish();

 private:
  std::string buffer_;
  std::uint64_t records_ = 0;
};

// Validates `image`, the whole contents of an intermediate file, and appends its pairs, in file
// order, to `out` as views into `image`. Throws task_file_error (kind corrupt) naming `source` if the
// image is truncated, has trailing bytes, fails the checksum or is not an intermediate file at all;
// `out` is then left as it was. Never reads outside `image`, and reserves memory only in proportion
// to image.size(), whatever the image claims.
void decode_intermediate(std::string_view image, std::string_view source, std::vector<kv_view>& out);

// The checksum stored in an intermediate file's footer, computed over `bytes`. Public so that tests
// and fuzzers can build images that pass the checksum and reach the record parser.
std::uint64_t intermediate_checksum(std::string_view bytes) noexcept;
// True when `image` ends in an intermediate footer whose checksum matches: the check a fetched
// partition passes before it is used (decode_intermediate() validates the rest).
bool intermediate_intact(std::string_view image) noexcept;

}  // namespace mrkv::mr
