// This file contains run_command(), which runs one shell command line as a child process with its
// standard input, output and error connected to the caller, as Hadoop Streaming runs a mapper or a
// reducer: the caller feeds standard input and takes standard output as it comes, through pipes that
// are served by one poll() loop, so neither side can deadlock on a full pipe and nothing is held in
// memory beyond a chunk in flight. The command runs through /bin/sh -c (one simple command as `exec
// COMMAND`, sparing a fork) in its own process group, and that whole group is killed with SIGKILL at
// the deadline or when the caller gives up (an exception from a callback), so a pipeline in the
// command line does not outlive its task.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mrkv::mr {

struct command_io {
  // Standard input, either an open descriptor handed to the child as it is (a map task's input file;
  // the caller keeps ownership) or, when stdin_fd < 0, whatever `feed` appends to its argument at each
  // call: it returns false once there is nothing more, and standard input is then closed. With neither,
  // standard input is /dev/null. A child that stops reading is not an error by itself: feeding stops
  // and its exit status decides.
  int stdin_fd = -1;
  std::function<bool(std::string&)> feed;
  // Standard output, in chunks as read (not split into lines).
  std::function<void(std::string_view)> on_stdout;
  // Each complete line of standard error, without its newline (a last line without one included).
  std::function<void(std::string_view)> on_stderr_line;
};

struct command_result {
  int exit_status = 0;  // when exited
  int signal = 0;       // when killed by a signal (SIGKILL after a time out)
  bool timed_out = false;
  bool ok() const noexcept { return !timed_out && signal == 0 && exit_status == 0; }
  // "exited with status 1", "was killed by signal 11 (Segmentation fault)", "did not finish within 5 s".
  std::string describe() const;
};

// Runs `command` through /bin/sh -c in the current directory with the current environment plus `env`
// ("NAME=value" entries, replacing variables of the same name), until it exits and its output pipes
// are closed, or until `deadline`. Once the shell has exited, whatever is left of its process group (a
// background job still holding the pipes) has 2 s to finish its output and is then killed; a command
// that closes its output but goes on running is killed at the deadline like any other. SIGPIPE has its default action in the child. Throws
// std::system_error when the child can't be started; any exception from a callback kills the child's
// process group, reaps it, and propagates.
command_result run_command(const std::string& command, const std::vector<std::string>& env, command_io io,
                           std::chrono::steady_clock::time_point deadline);

// Sends SIGKILL to the process group of the command run_command() is running now, if any. Async-signal
// safe: a worker's SIGTERM handler calls it so that its mapper does not outlive it.
void kill_running_commands() noexcept;

// The last lines of a stream, at most `max_lines` and about `max_bytes`: what a failed command's
// message shows of its standard error.
class line_tail {
 public:
  explicit line_tail(std::size_t max_lines = 10, std::size_t max_bytes = 2048)
      : max_lines_(max_lines), max_bytes_(max_bytes) {}
  void add(std::string_view line);
  // The lines joined with " | ", oldest first; empty when there were none.
  std::string text() const;

 private:
  std::size_t max_lines_;
  std::size_t max_bytes_;
  std::vector<std::string> lines_;
};

}  // namespace mrkv::mr
