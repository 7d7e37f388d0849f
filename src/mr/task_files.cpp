#include "mrkv/mr/task_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <system_error>

#include "little_endian.hpp"

namespace mrkv::mr {
namespace {

constexpr std::string_view header_magic{"mrkvint\x01", 8};
constexpr std::string_view footer_magic{"mrkvend\n", 8};
constexpr std::size_t footer_size = 24;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

void append_varint(std::string& out, std::uint64_t v) {
  char buf[10];
  std::size_t n = 0;
  do {
    auto byte = static_cast<unsigned char>(v & 0x7f);
    v >>= 7;
    if (v != 0) byte |= 0x80;
    buf[n++] = static_cast<char>(byte);
  } while (v != 0);
  out.append(buf, n);
}

// Reads a varint at s[pos]; false if it runs past the end of `s` or doesn't fit in 64 bits.
bool read_varint(std::string_view s, std::size_t& pos, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= s.size()) return false;
    const auto b = static_cast<unsigned char>(s[pos++]);
    if (shift == 63 && b > 1) return false;
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

std::uint64_t mix(std::uint64_t h) noexcept {
  // Both steps are bijections, so a change in one input word always changes the result.
  h *= 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 32);
}

std::uint64_t checksum(std::string_view bytes) noexcept {
  std::uint64_t h = mix(0x6a09e667f3bcc908ull ^ bytes.size());
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) h = mix(h ^ le::get_u64(bytes.data() + i));
  if (i < bytes.size()) {
    char tail[8] = {};
    std::memcpy(tail, bytes.data() + i, bytes.size() - i);
    h = mix(h ^ le::get_u64(tail));
  }
  return mix(h);
}

std::string random_hex() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  char buf[17];
  const auto v = engine();
  for (int i = 0; i < 16; ++i) buf[i] = "0123456789abcdef"[(v >> (4 * i)) & 0xf];
  return std::string(buf, 16);
}

// Closes the descriptor and removes the temporary file unless the write got all the way through.
class temp_file {
 public:
  temp_file(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  ~temp_file() {
    if (fd_ >= 0) ::close(fd_);
    if (!published_) ::unlink(path_.c_str());
  }

  int fd() const noexcept { return fd_; }
  const std::filesystem::path& path() const noexcept { return path_; }

  // close() reports late write errors (e.g. on NFS), so its result matters.
  int close() noexcept {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }
  void published() noexcept { published_ = true; }

 private:
  std::filesystem::path path_;
  int fd_;
  bool published_ = false;
};

// These report the failure in errno. They take only a literal and a reference, so nothing runs (and
// allocates, which may clobber errno) between the failed call and the errno read.
[[noreturn]] void throw_read_error(const char* what, const std::filesystem::path& path, int err = errno) {
  throw task_file_error(err == ENOENT ? task_file_error::kind::missing : task_file_error::kind::io,
                        std::string(what) + " " + path.string() + ": " + errno_text(err));
}

// A file that can't be written is never "missing", even when the directory is.
[[noreturn]] void throw_write_error(const char* what, const std::filesystem::path& path, int err = errno) {
  throw task_file_error(task_file_error::kind::io, std::string(what) + " " + path.string() + ": " + errno_text(err));
}

void write_all(int fd, std::string_view data, const std::filesystem::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_write_error("cannot write", path);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void sync_directory(const std::filesystem::path& parent) {
  const std::filesystem::path dir = parent.empty() ? std::filesystem::path(".") : parent;
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_write_error("cannot open directory", dir);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw_write_error("cannot fsync directory", dir, err);
}

}  // namespace

std::string output_file_name(int reduce_id) { return "mr-out-" + std::to_string(reduce_id); }

namespace {

// Creates the hidden temporary file that will be renamed over `target`; returns its descriptor.
int create_temp_for(const std::filesystem::path& target, std::filesystem::path& temp_path) {
  const std::string base = target.filename().string();
  if (base.empty() || base == "." || base == "..")
    throw task_file_error(task_file_error::kind::io, "cannot write " + target.string() + ": not a file name");
  const std::filesystem::path dir = target.parent_path();
  const std::string prefix = ".tmp-" + base + "." + std::to_string(::getpid()) + ".";
  int fd = -1;
  // O_EXCL never reuses someone else's file; a clash of 64 random bits is retried, not trusted away.
  for (int attempt = 0; attempt < 4 && fd < 0; ++attempt) {
    temp_path = dir / (prefix + random_hex());
    fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) throw_write_error("cannot create a temporary file for", target);
  return fd;
}

void rename_over(const std::filesystem::path& temp, const std::filesystem::path& target) {
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    const int err = errno;
    throw task_file_error(task_file_error::kind::io,
                          "cannot rename " + temp.string() + " to " + target.string() + ": " + errno_text(err));
  }
}

}  // namespace

atomic_file_writer::atomic_file_writer(std::filesystem::path target) : target_(std::move(target)) {
  fd_ = create_temp_for(target_, temp_path_);
}

atomic_file_writer::~atomic_file_writer() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

void atomic_file_writer::append(std::string_view bytes) {
  if (bytes.empty()) return;
  size_ += bytes.size();
  last_ = bytes.back();
  if (bytes.size() >= (1u << 16)) {
    flush();
    write_all(fd_, bytes, temp_path_);
    return;
  }
  pending_.append(bytes);
  if (pending_.size() >= (1u << 16)) flush();
}

void atomic_file_writer::flush() {
  write_all(fd_, pending_, temp_path_);
  pending_.clear();
}

void atomic_file_writer::commit() {
  flush();
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) throw_write_error("cannot write", temp_path_);
  rename_over(temp_path_, target_);
  committed_ = true;
}

void write_file_atomically(const std::filesystem::path& target, std::string_view contents, sync_mode sync) {
  const std::filesystem::path dir = target.parent_path();
  std::filesystem::path temp_path;
  const int fd = create_temp_for(target, temp_path);
  temp_file temp(std::move(temp_path), fd);

  write_all(temp.fd(), contents, temp.path());
  if (sync == sync_mode::fsync && ::fsync(temp.fd()) != 0) throw_write_error("cannot fsync", temp.path());
  if (temp.close() != 0) throw_write_error("cannot write", temp.path());
  rename_over(temp.path(), target);
  temp.published();
  if (sync == sync_mode::fsync) sync_directory(dir);
}

std::string read_whole_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_read_error("cannot open", path);
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_on_exit{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_read_error("cannot stat", path);
  // The size is only a hint (the file may change, /proc files report 0): read until end of file.
  // One spare byte lets the final read see EOF without growing the buffer.
  std::string out;
  out.resize(st.st_size > 0 ? static_cast<std::size_t>(st.st_size) + 1 : 4096);
  std::size_t used = 0;
  for (;;) {
    if (used == out.size()) out.resize(out.size() * 2);
    const ssize_t n = ::read(fd, out.data() + used, out.size() - used);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_read_error("cannot read", path);
    }
    used += static_cast<std::size_t>(n);
  }
  out.resize(used);
  return out;
}

intermediate_encoder::intermediate_encoder() { buffer_.append(header_magic); }

void intermediate_encoder::add(std::string_view key, std::string_view value) {
  append_varint(buffer_, key.size());
  buffer_.append(key);
  append_varint(buffer_, value.size());
  buffer_.append(value);
  ++records_;
}

std::string intermediate_encoder::finish() {
  le::put_u64(buffer_, records_);
  le::put_u64(buffer_, checksum(buffer_));
  buffer_.append(footer_magic);
  std::string image = std::move(buffer_);
  buffer_.clear();
  buffer_.append(header_magic);
  records_ = 0;
  return image;
}

void decode_intermediate(std::string_view image, std::string_view source, std::vector<kv_view>& out) {
  auto corrupt = [&](const std::string& why) {
    return task_file_error(task_file_error::kind::corrupt,
                           "corrupt intermediate file " + std::string(source) + ": " + why);
  };
  if (image.size() < header_magic.size() + footer_size)
    throw corrupt(std::to_string(image.size()) + " bytes, too short for a header and a footer");
  if (image.substr(0, header_magic.size() - 1) != header_magic.substr(0, header_magic.size() - 1))
    throw corrupt("bad magic, not an mrkv intermediate file");
  if (image[header_magic.size() - 1] != header_magic.back())
    throw corrupt("format version " + std::to_string(static_cast<unsigned char>(image[header_magic.size() - 1])) +
                  ", expected " + std::to_string(static_cast<unsigned char>(header_magic.back())));
  const std::size_t footer_at = image.size() - footer_size;
  if (image.substr(footer_at + 16) != footer_magic) throw corrupt("no end marker, the file is truncated");
  const std::uint64_t count = le::get_u64(image.data() + footer_at);
  if (checksum(image.substr(0, footer_at + 8)) != le::get_u64(image.data() + footer_at + 8))
    throw corrupt("checksum mismatch");

  const std::string_view body = image.substr(header_magic.size(), footer_at - header_magic.size());
  // Every record takes at least two bytes, which bounds the reservation below by the file's size.
  if (count > body.size() / 2)
    throw corrupt("the footer claims " + std::to_string(count) + " records in " + std::to_string(body.size()) +
                  " bytes");

  const std::size_t old_size = out.size();
  try {
    out.reserve(old_size + static_cast<std::size_t>(count));
    std::size_t pos = 0;
    auto field = [&](std::uint64_t record, const char* what) {
      const std::size_t at = pos;
      std::uint64_t len = 0;
      if (!read_varint(body, pos, len) || len > body.size() - pos)
        throw corrupt("record " + std::to_string(record) + ": bad " + what + " length at offset " +
                      std::to_string(header_magic.size() + at));
      const std::string_view s = body.substr(pos, static_cast<std::size_t>(len));
      pos += static_cast<std::size_t>(len);
      return s;
    };
    for (std::uint64_t r = 0; r < count; ++r) {
      const std::string_view key = field(r, "key");
      const std::string_view value = field(r, "value");
      out.push_back({key, value});
    }
    if (pos != body.size())
      throw corrupt(std::to_string(body.size() - pos) + " stray bytes after the last of " + std::to_string(count) +
                    " records");
  } catch (...) {
    out.resize(old_size);
    throw;
  }
}

std::uint64_t intermediate_checksum(std::string_view bytes) noexcept { return checksum(bytes); }

bool intermediate_intact(std::string_view image) noexcept {
  if (image.size() < header_magic.size() + footer_size) return false;
  const std::size_t footer_at = image.size() - footer_size;
  return image.substr(footer_at + 16) == footer_magic &&
         checksum(image.substr(0, footer_at + 8)) == le::get_u64(image.data() + footer_at + 8);
}

}  // namespace mrkv::mr
