// A plain blocking TCP client on POSIX sockets for tests that must send broken or partial HTTP, or
// watch exactly when a server closes. Every read has a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace mrkv::test {

class raw_connection {
 public:
  // Connects to 127.0.0.1:port; throws std::runtime_error on failure.
  explicit raw_connection(std::uint16_t port);
  ~raw_connection();
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  void send(std::string_view bytes);

  struct read_result {
    std::string data;
    bool closed = false;  // the peer closed (EOF or reset) before the deadline
  };
  // Reads until the peer closes or `limit` passes.
  read_result read_until_close(std::chrono::milliseconds limit);
  // Reads one whole HTTP response (headers + Content-Length body) or what came before `limit`.
  std::string read_response(std::chrono::milliseconds limit);

 private:
  int fd_ = -1;
  std::string pending_;
};

}  // namespace mrkv::test
