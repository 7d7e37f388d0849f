// Child processes for tests that run the real mrkv binary: spawn with posix_spawn in a chosen
// directory and environment, collect everything the child writes to stdout and stderr (merged, as a
// person reading its log would see it), wait for a line of output or for the exit with a deadline,
// send signals. A process object that is destroyed while its child still runs kills it (SIGKILL) and
// reaps it, so a failing test never leaks a process.
//
// Waiting uses pidfds (poll() wakes when the child exits) and a reader thread per child that signals a
// condition variable on new output, so nothing here sleeps in a loop to find out what happened.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace mrkv::test {

struct spawn_options {
  std::vector<std::string> argv;   // argv[0] is the program's path
  std::filesystem::path cwd;       // empty: the test's own
  std::vector<std::string> env;    // "NAME=value" entries added to (or replacing) the test's environment
  std::filesystem::path log_file;  // when set, the child's output is also appended here as it arrives
};

class process {
 public:
  // Throws std::runtime_error if the child can't be started.
  explicit process(spawn_options options);
  ~process();
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  pid_t pid() const noexcept { return pid_; }

  // Waits until the output so far contains `text`; false if `limit` passed first or the child closed
  // its output without writing it.
  bool wait_for_output(std::string_view text, std::chrono::milliseconds limit);
  // Everything the child has written so far.
  std::string output() const;
  // The first line of output that starts with `prefix`, without the prefix and the newline; waits up to
  // `limit` for it to be complete.
  std::optional<std::string> line_after(std::string_view prefix, std::chrono::milliseconds limit);

  // The exit status (0-255), or 128 + the signal that ended it; nullopt if still running at `limit`.
  // Once it has exited, output() holds all it wrote (unless a process it started still holds its
  // output open 2 s later).
  std::optional<int> wait_for(std::chrono::milliseconds limit);
  bool running();
  void signal(int sig);
  // SIGKILL and reap (no-op if it already ended); returns as wait_for().
  int kill_now();

  int exit_fd() const noexcept { return pidfd_; }  // readable once the child has exited; -1 if unsupported

 private:
  void read_output();
  bool reap(bool block);

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int output_fd_ = -1;
  std::optional<int> status_;
  std::filesystem::path log_file_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string output_;
  bool output_closed_ = false;
  std::thread reader_;
};

// Waits until one of `children` has exited and returns its index; nullopt after `limit`. Children that
// had exited before the call count at once.
std::optional<std::size_t> wait_any(std::span<process* const> children, std::chrono::milliseconds limit);

// Runs a child to its end; throws std::runtime_error if it takes longer than `limit` (after killing it).
int run_to_end(spawn_options options, std::chrono::milliseconds limit);

// A port on 127.0.0.1 that nothing listened on a moment ago.
std::uint16_t unused_port();

}  // namespace mrkv::test
