// This file contains what the kv tests share: a kvserver run in the test process on real sockets, a
// kvserver run as a child process of the built binary (for its resident set, signals and the CLI), and
// running the `mrkv` binary to completion with its output captured. Header-only, because the build takes
// only *_test.cpp from test/kv.
#pragma once

#include "mrkv/http/endpoint.hpp"
#include "mrkv/kv/server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace mrkv::kv_test {

// Resident memory is the server's own only without sanitizers (ASan's quarantine and shadow memory,
// TSan's shadow): tests print memory figures under sanitizers and check them without.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif

// A kvserver inside the test process, on 127.0.0.1 and a free port (or options.http.port), with
// `threads` I/O threads.
class local_server {
 public:
  explicit local_server(unsigned threads = 2, bool deduplicate = true)
      : local_server(options(threads, deduplicate)) {}
  explicit local_server(kv::server_options options) : server_(std::move(options)) {
    port_ = server_.start().port();
  }
  ~local_server() {
    server_.stop();
    server_.wait();
  }
  std::uint16_t port() const { return port_; }
  http::url url() const { return http::parse_url("http://127.0.0.1:" + std::to_string(port_)); }
  kv::store& data() { return server_.data(); }

 private:
  static kv::server_options options(unsigned threads, bool deduplicate) {
    kv::server_options o;
    o.http.threads = threads;
    o.http.max_body = std::size_t{32} << 20;
    o.store.deduplicate = deduplicate;
    return o;
  }

  kv::server server_;
  std::uint16_t port_ = 0;
};

inline http::url local_url(std::uint16_t port) { return http::parse_url("http://127.0.0.1:" + std::to_string(port)); }

// The child's end of the pipes is set up between fork() and exec(), where only async-signal-safe calls
// are allowed; so everything the child needs is prepared before the fork.
struct spawned {
  pid_t pid = -1;
  int stdin_fd = -1;   // write end, or -1
  int stdout_fd = -1;  // read end
  int stderr_fd = -1;  // read end, or -1 when the child's stderr is the test's
};

inline spawned spawn(const std::vector<std::string>& args, bool pipe_stdin, bool capture_stderr) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (pipe_stdin && pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  if (capture_stderr && pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // A child that outlives a crashed test would hold its port and memory forever.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (pipe_stdin) dup2(in[0], 0);
    else {
      int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
      dup2(null, 0);
    }
    dup2(out[1], 1);
    if (capture_stderr) dup2(err[1], 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  spawned s;
  s.pid = pid;
  if (pipe_stdin) {
    close(in[0]);
    s.stdin_fd = in[1];
  }
  close(out[1]);
  s.stdout_fd = out[0];
  if (capture_stderr) {
    close(err[1]);
    s.stderr_fd = err[0];
  }
  return s;
}

inline int wait_status(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

struct command_result {
  int status = -1;
  std::string out;
  std::string err;
};

// Runs MRKV_BINARY with `args`, feeding `input` to its stdin; kills it after `limit`.
inline command_result run_mrkv(const std::vector<std::string>& args, const std::string& input = {},
                               std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  std::vector<std::string> argv{MRKV_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  auto child = spawn(argv, true, true);
  command_result result;
  std::size_t written = 0;
  if (input.empty()) {
    close(child.stdin_fd);
    child.stdin_fd = -1;
  } else {
    fcntl(child.stdin_fd, F_SETFL, O_NONBLOCK);
  }
  auto deadline = std::chrono::steady_clock::now() + limit;
  bool killed = false;
  while (child.stdout_fd >= 0 || child.stderr_fd >= 0) {
    std::vector<pollfd> fds;
    if (child.stdout_fd >= 0) fds.push_back({child.stdout_fd, POLLIN, 0});
    if (child.stderr_fd >= 0) fds.push_back({child.stderr_fd, POLLIN, 0});
    if (child.stdin_fd >= 0) fds.push_back({child.stdin_fd, POLLOUT, 0});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      if (!killed) kill(child.pid, SIGKILL);
      killed = true;
      left = std::chrono::milliseconds(1000);
    }
    if (poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == child.stdin_fd) {
        auto n = write(p.fd, input.data() + written, input.size() - written);
        if (n > 0) written += static_cast<std::size_t>(n);
        if (n < 0 || written == input.size()) {
          close(child.stdin_fd);
          child.stdin_fd = -1;
        }
        continue;
      }
      char buffer[65536];
      auto n = read(p.fd, buffer, sizeof buffer);
      std::string& sink = p.fd == child.stdout_fd ? result.out : result.err;
      if (n > 0) {
        sink.append(buffer, static_cast<std::size_t>(n));
      } else {
        close(p.fd);
        (p.fd == child.stdout_fd ? child.stdout_fd : child.stderr_fd) = -1;
      }
    }
  }
  if (child.stdin_fd >= 0) close(child.stdin_fd);
  result.status = wait_status(child.pid);
  return result;
}

// `mrkv kvserver` as a child process, for what only a separate process shows: its resident set, its
// exit on SIGTERM, the CLI. Stops it (SIGTERM, then waits) when destroyed.
class server_process {
 public:
  explicit server_process(std::vector<std::string> extra_args = {}) {
    std::vector<std::string> argv{MRKV_BINARY, "kvserver", "--listen", "127.0.0.1:0", "--log-level", "warn"};
    // Two threads unless a test says otherwise: resident memory depends on the number of malloc
    // arenas, one per server thread, so a fixed count gives the same figures on any machine.
    if (std::find(extra_args.begin(), extra_args.end(), "--threads") == extra_args.end())
      argv.insert(argv.end(), {"--threads", "2"});
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    // MRKV_TEST_DATA_DIR=DIR runs every such server durable, on a fresh data dir under DIR (ctest runs
    // the lab's memory tests once more that way).
    if (const char* root = std::getenv("MRKV_TEST_DATA_DIR"); root != nullptr && *root != '\0') {
      static std::atomic<int> made{0};
      data_dir_ = std::string(root) + "/kv-" + std::to_string(getpid()) + "-" + std::to_string(made.fetch_add(1));
      std::filesystem::remove_all(data_dir_);
      argv.insert(argv.end(), {"--data-dir", data_dir_});
    }
    child_ = spawn(argv, false, false);
    auto line = read_first_line(std::chrono::seconds(30));
    const std::string prefix = "mrkv kvserver listening on ";
    const std::string address = "127.0.0.1:";
    const auto scheme_end = line.find("://");
    if (line.rfind(prefix, 0) != 0 || scheme_end == std::string::npos ||
        line.compare(scheme_end + 3, address.size(), address) != 0) {
      stop();
      throw std::runtime_error("kvserver did not announce itself; its first line: '" + line + "'");
    }
    announcement_ = line;
    scheme_ = line.substr(prefix.size(), scheme_end - prefix.size());
    port_ = static_cast<std::uint16_t>(std::stoi(line.substr(scheme_end + 3 + address.size())));
  }
  ~server_process() {
    stop();
    if (!data_dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(data_dir_, ec);
    }
  }
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  std::uint16_t port() const { return port_; }
  http::url url() const { return http::parse_url(scheme_ + "://127.0.0.1:" + std::to_string(port_)); }
  pid_t pid() const { return child_.pid; }
  const std::string& announcement() const { return announcement_; }

  // VmRSS from /proc/PID/status, in bytes.
  std::size_t rss() const {
    std::ifstream status("/proc/" + std::to_string(child_.pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
    }
    throw std::runtime_error("no VmRSS for the kvserver process");
  }

  // SIGTERM and wait; returns the exit status (128 + signal if killed by one). Idempotent.
  int stop(int signal = SIGTERM) {
    if (child_.pid > 0) {
      kill(child_.pid, signal);
      status_ = wait_status(child_.pid);
      child_.pid = -1;
      close(child_.stdout_fd);
    }
    return status_;
  }

 private:
  std::string data_dir_;  // set when MRKV_TEST_DATA_DIR made it durable
  std::string read_first_line(std::chrono::milliseconds limit) {
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (line.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{child_.stdout_fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char c[256];
      auto n = read(child_.stdout_fd, c, sizeof c);
      if (n <= 0) break;
      line.append(c, static_cast<std::size_t>(n));
    }
    return line.substr(0, line.find('\n'));
  }

  spawned child_;
  std::uint16_t port_ = 0;
  std::string scheme_;
  int status_ = -1;
  std::string announcement_;
};

// A TCP port that accepts connections (the kernel completes the handshake) but never answers: a hung server.
class silent_listener {
 public:
  silent_listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(fd_, 16) != 0)
      throw std::runtime_error("cannot listen on 127.0.0.1");
    socklen_t length = sizeof address;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~silent_listener() { close(fd_); }
  silent_listener(const silent_listener&) = delete;
  silent_listener& operator=(const silent_listener&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace mrkv::kv_test
