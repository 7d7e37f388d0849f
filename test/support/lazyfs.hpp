// A lazyfs mount for power-loss tests (issue 12): test/support/lazyfs.py on FUSE, a filesystem that keeps
// written data in memory and on its "platter" only once fsynced (a directory's entries once the directory
// is fsynced), and that throws away everything unsynced on `drop()`, as a power cut would.
//
// Mounting needs root, /dev/fuse and Debian's python3-fusepy (installed through scripts/deps.sh when
// missing); `unavailable()` says why it cannot be had here, so a test can report itself as skipped.
#pragma once

#include "support/process.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace mrkv::test {

class lazyfs {
 public:
  // Why no lazyfs can be mounted on this machine, or nullopt if it can. Installs python3-fusepy on the
  // first call if it is missing; the answer is kept for the rest of the test run.
  static std::optional<std::string> unavailable();

  // Mounts an empty lazyfs on `mountpoint` (an existing empty directory); throws std::runtime_error with
  // the filesystem's output if it does not come up.
  explicit lazyfs(std::filesystem::path mountpoint);
  // Unmounts and reaps the filesystem's process (killing it if it does not end).
  ~lazyfs();
  lazyfs(const lazyfs&) = delete;
  lazyfs& operator=(const lazyfs&) = delete;

  const std::filesystem::path& root() const noexcept { return mountpoint_; }

  // The power cut: every byte and name not synced is gone when this returns; open files go stale.
  void drop();
  // The same, after a random half (chosen by `seed`) of the 4 KiB pages that unsynced writes touched
  // reached the platter first, each whole, in no order: holes of zeros where a later page made it and
  // an earlier one did not.
  void drop_torn(std::uint32_t seed);
  // Bytes written since their file's last fsync.
  std::uint64_t unsynced_bytes() const;
  // What the filesystem process has printed (its errors, if any).
  std::string output() const { return process_->output(); }

 private:
  void command(const std::string& line);

  std::filesystem::path mountpoint_;
  std::unique_ptr<process> process_;
};

}  // namespace mrkv::test
