// The lazyfs test filesystem keeps its promises: data written but not fsynced disappears on a drop,
// fsynced data stays; a new name (create, rename, unlink) lasts only once its directory was fsynced, and
// a new directory only once its parent was; files open across a drop go stale. Without root, /dev/fuse or
// fusepy the cases print "[mrkv-skip]" and ctest reports them as skipped.
#include "support/lazyfs.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace mrkv::test {
namespace {

namespace fs = std::filesystem;

struct mount_dir {
  fs::path path;
  mount_dir() {
    path = fs::temp_directory_path() / ("mrkv-lazyfs-" + std::to_string(::getpid()));
    ::umount2(path.c_str(), MNT_DETACH);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~mount_dir() {
    std::error_code ec;
    ::umount2(path.c_str(), MNT_DETACH);
    fs::remove_all(path, ec);
  }
};

void write_file(const fs::path& p, const std::string& bytes, bool sync) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  REQUIRE_MESSAGE(fd >= 0, p << ": " << std::strerror(errno));
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  if (sync) REQUIRE(::fdatasync(fd) == 0);
  ::close(fd);
}

void sync_dir(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::fsync(fd) == 0);
  ::close(fd);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_SUITE("lazyfs") {

TEST_CASE("lazyfs: unsynced data and names vanish on a drop, synced ones stay") {
  if (auto why = lazyfs::unavailable()) {
    MESSAGE("[mrkv-skip] no lazyfs here: " << *why);
    return;
  }
  mount_dir dir;
  lazyfs lazy(dir.path);
  const auto d = lazy.root() / "d";
  fs::create_directory(d);
  sync_dir(lazy.root());  // d itself lasts

  write_file(d / "log", "synced", true);
  write_file(d / "log", "+lost", false);
  CHECK(lazy.unsynced_bytes() == 5);
  CHECK(read_file(d / "log") == "synced+lost");
  write_file(d / "tmp", "snapshot", true);
  fs::rename(d / "tmp", d / "snap");
  write_file(d / "tmp2", "second", true);
  sync_dir(d);  // log, snap, tmp2: named on the platter from here

  write_file(d / "unnamed", "data", true);  // its data synced, its name never
  fs::rename(d / "tmp2", d / "snap2");  // renamed, directory not synced
  fs::remove(d / "snap");               // removed, directory not synced
  fs::create_directory(lazy.root() / "newdir");
  write_file(lazy.root() / "newdir" / "f", "x", true);
  sync_dir(lazy.root() / "newdir");  // its entry in the root is not synced
  const int open_fd = ::open((d / "log").c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(open_fd >= 0);

  lazy.drop();
  CHECK(lazy.unsynced_bytes() == 0);
  CHECK(read_file(d / "log") == "synced");
  CHECK(fs::exists(d / "snap"));
  CHECK(read_file(d / "snap") == "snapshot");
  CHECK_FALSE(fs::exists(d / "unnamed"));
  CHECK_FALSE(fs::exists(d / "snap2"));
  CHECK(fs::exists(d / "tmp2"));  // the rename is undone
  CHECK(read_file(d / "tmp2") == "second");
  CHECK_FALSE(fs::exists(lazy.root() / "newdir"));
  char c = 'x';
  CHECK(::write(open_fd, &c, 1) < 0);
  CHECK(errno == ESTALE);
  ::close(open_fd);

  // After the drop the filesystem works as before.
  write_file(d / "log", "+again", true);
  lazy.drop();
  CHECK(read_file(d / "log") == "synced+again");
}

TEST_CASE("lazyfs: truncation is a data change like a write") {
  if (auto why = lazyfs::unavailable()) {
    MESSAGE("[mrkv-skip] no lazyfs here: " << *why);
    return;
  }
  mount_dir dir;
  lazyfs lazy(dir.path);
  const auto f = lazy.root() / "f";
  write_file(f, "0123456789", true);
  sync_dir(lazy.root());
  fs::resize_file(f, 4);
  CHECK(read_file(f) == "0123");
  lazy.drop();
  CHECK(read_file(f) == "0123456789");
  fs::resize_file(f, 4);
  {
    const int fd = ::open(f.c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK(::fdatasync(fd) == 0);
    ::close(fd);
  }
  write_file(f, "abc", false);
  lazy.drop();
  CHECK(read_file(f) == "0123");
}

TEST_CASE("lazyfs: a torn drop keeps synced data and a random subset of the pages written since") {
  if (auto why = lazyfs::unavailable()) {
    MESSAGE("[mrkv-skip] no lazyfs here: " << *why);
    return;
  }
  mount_dir dir;
  lazyfs lazy(dir.path);
  const auto f = lazy.root() / "f";
  const std::string synced(4096 + 100, 'a');
  write_file(f, synced, true);
  sync_dir(lazy.root());
  int kept = 0, lost = 0;
  for (std::uint32_t seed = 1; seed <= 8; ++seed) {
    write_file(f, std::string(3 * 4096, 'b'), false);  // 100 bytes into page 1, pages 2 and 3, 3996 bytes of page 4
    lazy.drop_torn(seed);
    const auto after = read_file(f);
    CAPTURE(seed);
    REQUIRE(after.size() >= synced.size());
    CHECK(after.substr(0, synced.size()) == synced);
    // Each page of the unsynced write is there whole or not at all (zeros when a later one is).
    for (std::size_t at = synced.size(); at < after.size();) {
      const std::size_t end = std::min(after.size(), (at / 4096 + 1) * 4096);
      const auto piece = after.substr(at, end - at);
      const bool whole = piece == std::string(piece.size(), 'b');
      CHECK((whole || piece == std::string(piece.size(), '\0')));
      (whole ? kept : lost)++;
      at = end;
    }
    if (after.size() < synced.size() + 3 * 4096) ++lost;  // the last piece did not make it
    fs::resize_file(f, synced.size());
    const int fd = ::open(f.c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::fdatasync(fd) == 0);
    ::close(fd);
  }
  CHECK(kept > 0);
  CHECK(lost > 0);
}

}  // TEST_SUITE
}  // namespace
}  // namespace mrkv::test
