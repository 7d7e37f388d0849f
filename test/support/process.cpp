#include "support/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

extern char** environ;

namespace mrkv::test {

namespace {

using steady = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what, int error) {
  throw std::runtime_error(what + ": " + std::strerror(error));
}

int poll_ms(steady::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
  return static_cast<int>(std::max<long long>(0, std::min<long long>(left, 60'000)));
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return static_cast<int>(fd);
  }
#endif
  return -1;  // old kernel or a sandbox without pidfd_open: wait_for() falls back to short naps
}

// The test's environment with `extra` entries added, replacing same-named ones.
std::vector<std::string> merged_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('=') + 1);
    bool replaced = false;
    for (const auto& x : extra) replaced = replaced || x.rfind(name, 0) == 0;
    if (!replaced) env.emplace_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

process::process(spawn_options options) : log_file_(std::move(options.log_file)) {
  if (options.argv.empty()) throw std::runtime_error("process: empty argv");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe2", errno);
  output_fd_ = fds[0];

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());

  // The child starts with default dispositions and nothing blocked, whatever the test runner did.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&defaults, s);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  auto args = options.argv;
  auto env = merged_environment(options.env);
  auto argv = pointers(args);
  auto envp = pointers(env);
  const int error = ::posix_spawn(&pid_, args[0].c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (error != 0) {
    ::close(output_fd_);
    fail("cannot start " + args[0], error);
  }
  pidfd_ = open_pidfd(pid_);
  reader_ = std::thread([this] { read_output(); });
}

process::~process() {
  kill_now();
  if (reader_.joinable()) reader_.join();
  if (output_fd_ >= 0) ::close(output_fd_);
  if (pidfd_ >= 0) ::close(pidfd_);
}

void process::read_output() {
  std::ofstream log;
  if (!log_file_.empty()) log.open(log_file_, std::ios::app);
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(output_fd_, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (log) log.write(buffer, n).flush();
    std::lock_guard lock(mutex_);
    output_.append(buffer, static_cast<std::size_t>(n));
    changed_.notify_all();
  }
  std::lock_guard lock(mutex_);
  output_closed_ = true;
  changed_.notify_all();
}

bool process::wait_for_output(std::string_view text, std::chrono::milliseconds limit) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, limit, [&] {
    return output_.find(text) != std::string::npos || output_closed_;
  }) && output_.find(text) != std::string::npos;
}

std::string process::output() const {
  std::lock_guard lock(mutex_);
  return output_;
}

std::optional<std::string> process::line_after(std::string_view prefix, std::chrono::milliseconds limit) {
  std::optional<std::string> found;
  auto look = [&] {
    for (std::size_t at = 0; at < output_.size();) {
      const auto end = output_.find('\n', at);
      if (end == std::string::npos) return false;
      std::string_view line(output_.data() + at, end - at);
      if (line.substr(0, prefix.size()) == prefix) {
        found = std::string(line.substr(prefix.size()));
        return true;
      }
      at = end + 1;
    }
    return false;
  };
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, limit, [&] { return look() || output_closed_; });
  return found;
}

bool process::reap(bool block) {
  if (status_) return true;
  int raw = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &raw, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return false;
  status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  return true;
}

std::optional<int> process::wait_for(std::chrono::milliseconds limit) {
  const auto deadline = steady::now() + limit;
  while (!reap(false)) {
    if (steady::now() >= deadline) return std::nullopt;
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      ::poll(&p, 1, poll_ms(deadline));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  // The reader thread may not have drained the pipe yet when the exit is seen (a slow TSan run lost a
  // whole error message this way): wait for its end of output, but not forever, as a grandchild that
  // outlives the child may still hold the pipe.
  const auto drained_by = std::min(deadline, steady::now() + std::chrono::seconds(2));
  std::unique_lock lock(mutex_);
  changed_.wait_until(lock, drained_by, [&] { return output_closed_; });
  return status_;
}

bool process::running() { return !reap(false); }

void process::signal(int sig) {
  if (!reap(false)) ::kill(pid_, sig);
}

int process::kill_now() {
  if (pid_ > 0 && !reap(false)) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
  return status_.value_or(-1);
}

std::optional<std::size_t> wait_any(std::span<process* const> children, std::chrono::milliseconds limit) {
  const auto deadline = steady::now() + limit;
  for (;;) {
    for (std::size_t i = 0; i < children.size(); ++i)
      if (!children[i]->running()) return i;
    if (steady::now() >= deadline) return std::nullopt;
    std::vector<pollfd> fds;
    for (auto* c : children)
      if (c->exit_fd() >= 0) fds.push_back(pollfd{c->exit_fd(), POLLIN, 0});
    if (fds.size() == children.size())
      ::poll(fds.data(), fds.size(), poll_ms(deadline));
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int run_to_end(spawn_options options, std::chrono::milliseconds limit) {
  const std::string name = options.argv.empty() ? "" : options.argv[0];
  process child(std::move(options));
  auto status = child.wait_for(limit);
  if (!status) {
    child.kill_now();
    throw std::runtime_error(name + " did not finish in time; its output:\n" + child.output());
  }
  return *status;
}

std::uint16_t unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket", errno);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const int error = errno;
    ::close(fd);
    fail("bind", error);
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace mrkv::test
