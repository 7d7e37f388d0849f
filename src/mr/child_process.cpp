#include "mrkv/mr/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <system_error>

extern char** environ;

namespace mrkv::mr {
namespace {

// glibc 2.36's <sys/pidfd.h> declares pidfd_open without extern "C", so C++ can't link to it.
int open_pidfd(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

[[noreturn]] void throw_errno(const char* what, int err = errno) {
  throw std::system_error(err, std::generic_category(), what);
}

class fd_guard {
 public:
  fd_guard() = default;
  explicit fd_guard(int fd) : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() { reset(); }
  int get() const noexcept { return fd_; }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

void make_pipe(fd_guard& read_end, fd_guard& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw_errno("fcntl");
}

// The process group of the command running now (one at a time per process is what the worker and
// sequential modes do; with several, the newest), for kill_running_commands(). 0: none.
std::atomic<pid_t> running_group{0};
static_assert(std::atomic<pid_t>::is_always_lock_free);

// Kills the child's whole process group and reaps the child unless told it was reaped already.
class child_guard {
 public:
  explicit child_guard(pid_t pid) : pid_(pid) { running_group.store(pid); }
  child_guard(const child_guard&) = delete;
  child_guard& operator=(const child_guard&) = delete;
  ~child_guard() {
    pid_t expected = pid_ > 0 ? pid_ : -pid_;
    running_group.compare_exchange_strong(expected, 0);
    if (pid_ <= 0) {
      kill_rest_of_group();
      return;
    }
    kill_group();
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  void kill_group() const noexcept {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
  }
  // Reaps the child if it has exited; its wait status then.
  std::optional<int> try_reap() {
    int status = 0;
    pid_t got;
    while ((got = ::waitpid(pid_, &status, WNOHANG)) < 0)
      if (errno != EINTR) throw_errno("waitpid");
    if (got == 0) return std::nullopt;
    pid_ = -pid_;  // reaped: the destructor only clears running_group (and kills what is left)
    return status;
  }
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0)
      if (errno != EINTR) throw_errno("waitpid");
    pid_ = -pid_;
    return status;
  }
  // After the child is reaped, its number may be reused, but its group's cannot while a member lives.
  void kill_rest_of_group() const noexcept { ::kill(pid_ > 0 ? -pid_ : pid_, SIGKILL); }
  pid_t pid() const noexcept { return pid_ > 0 ? pid_ : -pid_; }

 private:
  pid_t pid_;
};

std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& x : extra)
      if (x.size() > name.size() && x.compare(0, name.size(), name) == 0 && x[name.size()] == '=') replaced = true;
    if (!replaced) out.emplace_back(entry);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

// Splits a byte stream into lines for a callback; the last line may lack its newline.
class line_splitter {
 public:
  explicit line_splitter(std::function<void(std::string_view)>& sink) : sink_(sink) {}
  void add(std::string_view bytes) {
    while (!bytes.empty()) {
      const auto nl = bytes.find('\n');
      if (nl == std::string_view::npos) {
        // A runaway line without newlines is cut rather than grown without bound.
        partial_.append(bytes.substr(0, std::min(bytes.size(), limit - std::min(limit, partial_.size()))));
        return;
      }
      if (partial_.empty()) {
        if (sink_) sink_(bytes.substr(0, nl));
      } else {
        partial_.append(bytes.substr(0, std::min(nl, limit - std::min(limit, partial_.size()))));
        if (sink_) sink_(partial_);
        partial_.clear();
      }
      bytes.remove_prefix(nl + 1);
    }
  }
  void finish() {
    if (!partial_.empty() && sink_) sink_(partial_);
    partial_.clear();
  }

 private:
  static constexpr std::size_t limit = 64 * 1024;
  std::function<void(std::string_view)>& sink_;
  std::string partial_;
};

// Debian's /bin/sh (dash) forks even for the last command of `sh -c` and waits for it. A command line
// that is a single simple command of plain words goes to it as `exec COMMAND` instead, which saves a
// fork and a process per task: 4 ms of a mawk task's 17 here, a tenth of a streaming word count. sh
// still parses the line and looks the program up; only lines whose meaning cannot change are touched:
// no operator, redirection, expansion, glob, double quote or backslash, and a first word that is no
// builtin or keyword (`exec exit 3` would look for a program named exit). A program killed by a signal
// is then reported as such, not as sh's status 128+N.
std::string shell_line(const std::string& command) {
  static constexpr std::string_view plain = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-+=:,@%^";
  static constexpr std::string_view not_programs[] = {
      ".",     ":",       "[",     "alias",  "bg",     "break", "cd",    "chdir",  "command", "continue", "echo",
      "eval",  "exec",    "exit",  "export", "false",  "fc",    "fg",    "getopts", "hash",   "jobs",     "kill",
      "local", "printf",  "pwd",   "read",   "readonly", "return", "set", "shift", "test",   "times",    "trap",
      "true",  "type",    "ulimit", "umask", "unalias", "unset", "wait", "case",   "do",     "done",     "elif",
      "else",  "esac",    "fi",    "for",    "if",     "in",    "then",  "until",  "while"};
  auto is_assignment = [](std::string_view word) {
    const auto eq = word.find('=');
    if (eq == 0 || eq == std::string_view::npos || (word[0] >= '0' && word[0] <= '9')) return false;
    return word.substr(0, eq).find_first_not_of(
               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == std::string_view::npos;
  };
  std::size_t program_at = std::string::npos;  // where the first word that is not an assignment starts
  std::size_t i = 0;
  while (i < command.size()) {
    if (command[i] == ' ' || command[i] == '\t') {
      ++i;
      continue;
    }
    const std::size_t start = i;
    bool quoted = false;
    while (i < command.size() && command[i] != ' ' && command[i] != '\t') {
      if (command[i] == '\'') {
        const auto close = command.find('\'', i + 1);
        if (close == std::string::npos) return command;
        quoted = true;
        i = close + 1;
      } else if (plain.find(command[i]) == std::string_view::npos) {
        return command;
      } else {
        ++i;
      }
    }
    const std::string_view word(command.data() + start, i - start);
    if (program_at == std::string::npos && !(!quoted && is_assignment(word))) {
      if (quoted || std::find(std::begin(not_programs), std::end(not_programs), word) != std::end(not_programs))
        return command;
      program_at = start;
    }
  }
  if (program_at == std::string::npos) return command;  // only assignments, or nothing
  return command.substr(0, program_at) + "exec " + command.substr(program_at);
}

}  // namespace

std::string command_result::describe() const {
  if (timed_out) return "did not finish in time and was killed";
  if (signal != 0) return "was killed by signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
  return "exited with status " + std::to_string(exit_status);
}

command_result run_command(const std::string& command, const std::vector<std::string>& env, command_io io,
                           std::chrono::steady_clock::time_point deadline) {
  // A child that closes its standard input early must cost an EPIPE here, not this whole process.
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { ::signal(SIGPIPE, SIG_IGN); });
  fd_guard in_read, in_write, out_read, out_write, err_read, err_write, null_in;
  const bool feeding = io.stdin_fd < 0 && static_cast<bool>(io.feed);
  if (feeding) make_pipe(in_read, in_write);
  if (io.stdin_fd < 0 && !feeding) {
    null_in.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (null_in.get() < 0) throw_errno("open /dev/null");
  }
  make_pipe(out_read, out_write);
  make_pipe(err_read, err_write);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const int child_stdin = io.stdin_fd >= 0 ? io.stdin_fd : feeding ? in_read.get() : null_in.get();
  posix_spawn_file_actions_adddup2(&actions, child_stdin, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);

  auto env_strings = child_environment(env);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh", dash_c = "-c", cmd = shell_line(command);
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};

  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw_errno("posix_spawn /bin/sh", rc);
  child_guard child(pid);
  in_read.reset();
  out_write.reset();
  err_write.reset();
  null_in.reset();
  if (feeding) set_nonblocking(in_write.get());

  // The child's exit is watched through a pidfd, so that neither a child that closes its output and
  // goes on running nor one that exits leaving a background job holding the pipes escapes the deadline.
  // Without pidfds (an old kernel or a seccomp filter) the loop looks with waitpid every 50 ms instead.
  fd_guard exit_fd(open_pidfd(child.pid()));
  constexpr auto without_pidfd_every = std::chrono::milliseconds(50);
  // Output that a background job of the command writes after the shell exited is taken for this long,
  // then the rest of the group is killed: the shell's exit is what ends the command.
  constexpr auto after_exit_grace = std::chrono::seconds(2);

  std::string chunk;       // bytes for standard input not yet written
  std::size_t written = 0;  // of chunk
  bool more_input = feeding;
  std::string buffer(64 * 1024, '\0');
  line_splitter err_lines(io.on_stderr_line);
  command_result result;
  std::optional<int> status;  // once reaped
  std::chrono::steady_clock::time_point stop_reading_at = deadline;

  while (out_read.get() >= 0 || err_read.get() >= 0 || !status) {
    if (in_write.get() >= 0 && written == chunk.size()) {
      chunk.clear();
      written = 0;
      while (more_input && chunk.size() < (64u << 10)) more_input = io.feed(chunk);
      if (chunk.empty() && !more_input) in_write.reset();  // EOF for the child
    }
    pollfd fds[4];
    nfds_t n = 0;
    int in_slot = -1, out_slot = -1, err_slot = -1, exit_slot = -1;
    if (in_write.get() >= 0) {
      in_slot = static_cast<int>(n);
      fds[n++] = {in_write.get(), POLLOUT, 0};
    }
    if (out_read.get() >= 0) {
      out_slot = static_cast<int>(n);
      fds[n++] = {out_read.get(), POLLIN, 0};
    }
    if (err_read.get() >= 0) {
      err_slot = static_cast<int>(n);
      fds[n++] = {err_read.get(), POLLIN, 0};
    }
    if (!status && exit_fd.get() >= 0) {
      exit_slot = static_cast<int>(n);
      fds[n++] = {exit_fd.get(), POLLIN, 0};
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline && !status) {
      result.timed_out = true;
      child.kill_group();
      break;
    }
    if (now >= stop_reading_at) {
      child.kill_rest_of_group();
      break;
    }
    auto left = std::min(deadline, stop_reading_at) - now;
    if (!status && exit_fd.get() < 0) left = std::min<std::chrono::steady_clock::duration>(left, without_pidfd_every);
    const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    const int ready = ::poll(fds, n, static_cast<int>(std::min<long long>(wait_ms, 60'000)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (!status && (exit_fd.get() < 0 || (exit_slot >= 0 && fds[exit_slot].revents != 0))) {
      status = child.try_reap();
      if (status) stop_reading_at = std::min(deadline, std::chrono::steady_clock::now() + after_exit_grace);
    }
    if (ready == 0) continue;
    if (in_slot >= 0 && fds[in_slot].revents != 0) {
      const ssize_t w = ::write(in_write.get(), chunk.data() + written, chunk.size() - written);
      if (w >= 0) {
        written += static_cast<std::size_t>(w);
      } else if (errno == EPIPE || (fds[in_slot].revents & (POLLERR | POLLHUP)) != 0) {
        // The child closed its standard input: it has read all it wants.
        in_write.reset();
        more_input = false;
      } else if (errno != EAGAIN && errno != EINTR) {
        throw_errno("write to child");
      }
    }
    auto drain = [&](fd_guard& fd, int slot, bool is_out) {
      if (slot < 0 || fds[slot].revents == 0) return;
      const ssize_t r = ::read(fd.get(), buffer.data(), buffer.size());
      if (r > 0) {
        const std::string_view bytes(buffer.data(), static_cast<std::size_t>(r));
        if (is_out) {
          if (io.on_stdout) io.on_stdout(bytes);
        } else {
          err_lines.add(bytes);
        }
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        fd.reset();
      }
    };
    drain(out_read, out_slot, true);
    drain(err_read, err_slot, false);
  }
  err_lines.finish();
  in_write.reset();
  if (!status) status = child.wait();  // killed at the deadline just now
  // The group may hold more than the shell (a pipeline's other stages, a background job): gone too.
  child.kill_rest_of_group();
  if (!result.timed_out) {
    if (WIFEXITED(*status)) result.exit_status = WEXITSTATUS(*status);
    if (WIFSIGNALED(*status)) result.signal = WTERMSIG(*status);
  } else {
    result.signal = SIGKILL;
  }
  return result;
}

void kill_running_commands() noexcept {
  const pid_t group = running_group.load();
  if (group > 0) ::kill(-group, SIGKILL);
}

void line_tail::add(std::string_view line) {
  if (line.size() > max_bytes_) line = line.substr(0, max_bytes_);
  lines_.emplace_back(line);
  std::size_t bytes = 0;
  for (const auto& l : lines_) bytes += l.size();
  while (lines_.size() > max_lines_ || (lines_.size() > 1 && bytes > max_bytes_)) {
    bytes -= lines_.front().size();
    lines_.erase(lines_.begin());
  }
}

std::string line_tail::text() const {
  std::string out;
  for (const auto& l : lines_) {
    if (!out.empty()) out += " | ";
    out += l;
  }
  return out;
}

}  // namespace mrkv::mr
