// This file contains a map task's output file: every partition of one map attempt in one file, with an
// index, so a reducer reads (or fetches over HTTP from the mapper, map_output_server.hpp) exactly its
// partition, and a map task creates one file instead of one per reduce task (on ext4 the inode
// allocation for M x R small files was 40 % of a worker's time, scripts/bench/PROFILES.md).
//
// Layout ("mr-<M>.map"; integers little-endian):
//   partitions  back to back, partition 0 first, each an intermediate image (task_files.hpp), which
//               carries its own record count and checksum
//   index       per partition: u64 offset, u64 length, u64 checksum (intermediate_checksum of the
//               partition's bytes, so a fetcher can check a partition without parsing it)
//   trailer     u64 partition count, u64 checksum of the index entries and the count, "mrkvidx\n"
// The file is published whole or not at all (atomic_file_writer), so a reader never sees a map
// output in the making.
#pragma once

#include "mrkv/mr/task_files.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace mrkv::mr {

// "mr-<map_id>.map".
std::string map_output_file_name(int map_id);

struct partition_extent {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::uint64_t checksum = 0;
};

// Writes a map output file partition by partition. Throws task_file_error (kind io).
class map_output_writer {
 public:
  explicit map_output_writer(std::filesystem::path target);
  // The next partition's intermediate image (partition 0 first).
  void add_partition(std::string_view image);
  // Writes the index and publishes the file.
  void commit();

 private:
  atomic_file_writer file_;
  std::vector<partition_extent> extents_;
};

// The index of a map output file, read and checked when constructed. Throws task_file_error: missing
// (no such file), io, or corrupt (a bad trailer or index, naming the file).
class map_output_reader {
 public:
  explicit map_output_reader(std::filesystem::path path);
  ~map_output_reader();
  map_output_reader(const map_output_reader&) = delete;
  map_output_reader& operator=(const map_output_reader&) = delete;

  int partitions() const noexcept { return static_cast<int>(extents_.size()); }
  // Throws std::out_of_range for a partition the file does not have.
  const partition_extent& extent(int partition) const;
  // The partition's bytes, checked against the index's checksum (task_file_error kind corrupt).
  std::string read(int partition) const;
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::vector<partition_extent> extents_;
};

}  // namespace mrkv::mr
