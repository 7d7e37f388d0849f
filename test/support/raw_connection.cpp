#include "support/raw_connection.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace mrkv::test {

raw_connection::raw_connection(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    int err = errno;
    ::close(fd_);
    throw std::runtime_error(std::string("connect: ") + std::strerror(err));
  }
}

raw_connection::~raw_connection() {
  if (fd_ >= 0) ::close(fd_);
}

void raw_connection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

raw_connection::read_result raw_connection::read_until_close(std::chrono::milliseconds limit) {
  read_result out;
  out.data = std::move(pending_);
  pending_.clear();
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return out;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      out.closed = true;
      return out;
    }
    out.data.append(chunk, static_cast<std::size_t>(n));
  }
}

std::string raw_connection::read_response(std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::string data = std::move(pending_);
  pending_.clear();
  for (;;) {
    auto header_end = data.find("\r\n\r\n");
    if (header_end != std::string::npos) {
      std::size_t length = 0;
      auto at = data.find("Content-Length: ");
      if (at != std::string::npos && at < header_end) length = std::stoul(data.substr(at + 16));
      std::size_t total = header_end + 4 + length;
      if (data.size() >= total) {
        pending_ = data.substr(total);
        return data.substr(0, total);
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return data;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return data;
    data.append(chunk, static_cast<std::size_t>(n));
  }
}

}  // namespace mrkv::test
