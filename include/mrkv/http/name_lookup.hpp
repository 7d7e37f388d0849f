// Looking up a host name with a deadline on the wait. getaddrinfo can block for many seconds (a DNS
// server that drops packets, a container whose resolver went away) and Asio 1.81 cannot interrupt it:
// cancelling a resolver only discards the answer once getaddrinfo returns. So each lookup runs on a
// thread of its own that nobody joins, and the caller stops waiting at its deadline; the next wait for
// the same name picks up the lookup still in flight instead of starting another beside it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace mrkv::http {

class name_lookup {
 public:
  using results = boost::asio::ip::tcp::resolver::results_type;
  // What runs on the lookup thread: blocking, and allowed to take as long as it likes.
  using blocking_resolver = std::function<results(const std::string& host, const std::string& service,
                                                  boost::system::error_code& ec)>;

  // `resolve` defaults to Asio's synchronous resolver (getaddrinfo); tests pass their own.
  name_lookup(std::string host, std::string service, blocking_resolver resolve = {});
  ~name_lookup();  // a lookup still running finishes on its own thread and is then dropped
  name_lookup(const name_lookup&) = delete;
  name_lookup& operator=(const name_lookup&) = delete;

  // The addresses, the lookup's own error, or boost::beast::error::timeout once `deadline` passes with
  // the lookup still running (it goes on, for the next wait). Must be awaited on one executor at a time.
  boost::asio::awaitable<std::pair<boost::system::error_code, results>> wait(
      std::chrono::steady_clock::time_point deadline);

 private:
  struct attempt;  // shared with the lookup thread
  std::string host_;
  std::string service_;
  blocking_resolver resolve_;
  std::shared_ptr<attempt> running_;
};

}  // namespace mrkv::http
