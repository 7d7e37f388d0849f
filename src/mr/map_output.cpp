#include "mrkv/mr/map_output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "little_endian.hpp"

namespace mrkv::mr {
namespace {

constexpr std::string_view trailer_magic{"mrkvidx\n", 8};
constexpr std::size_t entry_size = 24;
constexpr std::size_t trailer_size = 24;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

task_file_error corrupt(const std::filesystem::path& path, const std::string& why) {
  return task_file_error(task_file_error::kind::corrupt, "corrupt map output " + path.string() + ": " + why);
}

// Reads exactly `length` bytes at `offset`; false when the file ends first.
bool read_at(int fd, std::uint64_t offset, char* out, std::size_t length, const std::filesystem::path& path) {
  while (length > 0) {
    const ssize_t n = ::pread(fd, out, length, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw task_file_error(task_file_error::kind::io, "cannot read " + path.string() + ": " + errno_text(err));
    }
    if (n == 0) return false;
    out += n;
    offset += static_cast<std::uint64_t>(n);
    length -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

std::string map_output_file_name(int map_id) { return "mr-" + std::to_string(map_id) + ".map"; }

map_output_writer::map_output_writer(std::filesystem::path target) : file_(std::move(target)) {}

void map_output_writer::add_partition(std::string_view image) {
  extents_.push_back({file_.size(), image.size(), intermediate_checksum(image)});
  file_.append(image);
}

void map_output_writer::commit() {
  std::string index;
  index.reserve(extents_.size() * entry_size + trailer_size);
  for (const auto& e : extents_) {
    le::put_u64(index, e.offset);
    le::put_u64(index, e.length);
    le::put_u64(index, e.checksum);
  }
  le::put_u64(index, extents_.size());
  le::put_u64(index, intermediate_checksum(index));
  index.append(trailer_magic);
  file_.append(index);
  file_.commit();
}

map_output_reader::map_output_reader(std::filesystem::path path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    const int err = errno;
    throw task_file_error(err == ENOENT ? task_file_error::kind::missing : task_file_error::kind::io,
                          "cannot open " + path_.string() + ": " + errno_text(err));
  }
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      throw task_file_error(task_file_error::kind::io, "cannot stat " + path_.string() + ": " + errno_text(err));
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size < trailer_size) throw corrupt(path_, std::to_string(size) + " bytes, too short for an index");
    char trailer[trailer_size];
    if (!read_at(fd_, size - trailer_size, trailer, trailer_size, path_)) throw corrupt(path_, "truncated");
    if (std::string_view(trailer + 16, 8) != trailer_magic) throw corrupt(path_, "no index trailer");
    const std::uint64_t count = le::get_u64(trailer);
    if (count > (size - trailer_size) / entry_size)
      throw corrupt(path_, "the trailer claims " + std::to_string(count) + " partitions in " + std::to_string(size) +
                               " bytes");
    const std::uint64_t index_at = size - trailer_size - count * entry_size;
    std::string index(static_cast<std::size_t>(count * entry_size + 8), '\0');
    if (!read_at(fd_, index_at, index.data(), index.size(), path_)) throw corrupt(path_, "truncated index");
    if (intermediate_checksum(index) != le::get_u64(trailer + 8)) throw corrupt(path_, "index checksum mismatch");
    extents_.resize(static_cast<std::size_t>(count));
    for (std::size_t i = 0; i < extents_.size(); ++i) {
      const char* p = index.data() + i * entry_size;
      auto& e = extents_[i];
      e = {le::get_u64(p), le::get_u64(p + 8), le::get_u64(p + 16)};
      if (e.offset > index_at || e.length > index_at - e.offset)
        throw corrupt(path_, "partition " + std::to_string(i) + " lies outside the file");
    }
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

map_output_reader::~map_output_reader() { ::close(fd_); }

const partition_extent& map_output_reader::extent(int partition) const {
  if (partition < 0 || partition >= partitions())
    throw std::out_of_range(path_.string() + " has no partition " + std::to_string(partition) + " (it has " +
                            std::to_string(partitions()) + ")");
  return extents_[static_cast<std::size_t>(partition)];
}

std::string map_output_reader::read(int partition) const {
  const auto& e = extent(partition);
  std::string bytes(static_cast<std::size_t>(e.length), '\0');
  if (!read_at(fd_, e.offset, bytes.data(), bytes.size(), path_)) throw corrupt(path_, "truncated");
  if (intermediate_checksum(bytes) != e.checksum)
    throw corrupt(path_, "partition " + std::to_string(partition) + " checksum mismatch");
  return bytes;
}

}  // namespace mrkv::mr
