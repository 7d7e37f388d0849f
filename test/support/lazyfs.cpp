#include "support/lazyfs.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace mrkv::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Debian's fusepy is a module of the system's Python, not of whatever python3 comes first on PATH.
constexpr const char* python = "/usr/bin/python3";

fs::path script() { return fs::path(MRKV_SOURCE_DIR) / "test" / "support" / "lazyfs.py"; }
fs::path control(const fs::path& mountpoint) { return mountpoint / ".lazyfs"; }

// Runs argv to its end; its status and output.
std::pair<int, std::string> run(std::vector<std::string> argv, std::chrono::milliseconds limit) {
  process child(spawn_options{std::move(argv), {}, {}, {}});
  auto status = child.wait_for(limit);
  if (!status) child.kill_now();
  return {status.value_or(-1), child.output()};
}

std::optional<std::string> find_reason() {
  if (::geteuid() != 0) return "mounting a FUSE filesystem needs root";
  if (::access("/dev/fuse", R_OK | W_OK) != 0) return std::string("/dev/fuse: ") + std::strerror(errno);
  if (::access(python, X_OK) != 0) return std::string(python) + ": " + std::strerror(errno);
  auto [installed, why] = run({(fs::path(MRKV_SOURCE_DIR) / "scripts" / "deps.sh").string(), "python3-fusepy"}, 600s);
  if (installed != 0) return "scripts/deps.sh python3-fusepy failed: " + why;
  auto [imported, error] = run({python, "-c", "import fusepy"}, 60s);
  if (imported != 0) return "python3-fusepy does not import: " + error;
  return std::nullopt;
}

}  // namespace

std::optional<std::string> lazyfs::unavailable() {
  static std::once_flag once;
  static std::optional<std::string> reason;
  std::call_once(once, [] { reason = find_reason(); });
  return reason;
}

lazyfs::lazyfs(fs::path mountpoint) : mountpoint_(std::move(mountpoint)) {
  process_ = std::make_unique<process>(spawn_options{{python, script().string(), mountpoint_.string()}, {}, {}, {}});
  if (!process_->wait_for_output("lazyfs: mounted", 30s) || !fs::exists(control(mountpoint_))) {
    const auto out = process_->output();
    ::umount2(mountpoint_.c_str(), MNT_DETACH);
    process_->kill_now();
    throw std::runtime_error("lazyfs did not mount on " + mountpoint_.string() + ": " + out);
  }
}

lazyfs::~lazyfs() {
  if (::umount2(mountpoint_.c_str(), 0) != 0) ::umount2(mountpoint_.c_str(), MNT_DETACH);
  // Unmounted, fuse_main returns and the process ends by itself.
  if (!process_->wait_for(10s)) process_->kill_now();
}

void lazyfs::drop() { command("drop\n"); }

void lazyfs::drop_torn(std::uint32_t seed) { command("drop torn " + std::to_string(seed) + "\n"); }

void lazyfs::command(const std::string& line) {
  const int fd = ::open(control(mountpoint_).c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open the lazyfs control file: " + std::string(std::strerror(errno)));
  const auto written = ::write(fd, line.data(), line.size());
  const int error = errno;
  ::close(fd);
  if (written != static_cast<ssize_t>(line.size()))
    throw std::runtime_error("lazyfs " + line.substr(0, line.size() - 1) + " failed: " + std::strerror(error));
}

std::uint64_t lazyfs::unsynced_bytes() const {
  std::ifstream in(control(mountpoint_));
  std::string word;
  std::uint64_t drops = 0, unsynced = 0;
  if (!(in >> word >> drops >> word >> unsynced) || word != "unsynced_bytes")
    throw std::runtime_error("lazyfs control file unreadable");
  return unsynced;
}

}  // namespace mrkv::test
