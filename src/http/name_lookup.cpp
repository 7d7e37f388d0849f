#include "mrkv/http/name_lookup.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

#include <algorithm>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

namespace mrkv::http {

struct name_lookup::attempt {
  std::mutex mutex;
  std::optional<std::pair<boost::system::error_code, results>> answer;  // set once, by the lookup thread
};

name_lookup::name_lookup(std::string host, std::string service, blocking_resolver resolve)
    : host_(std::move(host)), service_(std::move(service)), resolve_(std::move(resolve)) {
  if (!resolve_) {
    resolve_ = [](const std::string& host, const std::string& service, boost::system::error_code& ec) {
      boost::asio::io_context private_context;  // synchronous resolve runs getaddrinfo on this thread
      boost::asio::ip::tcp::resolver resolver(private_context);
      return resolver.resolve(host, service, ec);
    };
  }
}

name_lookup::~name_lookup() = default;

boost::asio::awaitable<std::pair<boost::system::error_code, name_lookup::results>> name_lookup::wait(
    std::chrono::steady_clock::time_point deadline) {
  if (!running_) {
    auto fresh = std::make_shared<attempt>();
    try {
      // The thread owns copies of everything it touches, so it may outlive this object and its caller.
      std::thread([fresh, resolve = resolve_, host = host_, service = service_] {
        boost::system::error_code ec;
        auto found = resolve(host, service, ec);
        std::lock_guard lock(fresh->mutex);
        fresh->answer.emplace(ec, std::move(found));
      }).detach();
    } catch (const std::system_error& e) {
      co_return std::pair{boost::system::error_code(e.code().value(), boost::system::generic_category()), results()};
    }
    running_ = std::move(fresh);
  }
  // The lookup thread must never touch an executor that may be gone by the time it finishes, so this
  // side looks for the answer on a short timer: from 1 ms (most lookups are answered from a cache or
  // /etc/hosts by then) doubling up to 20 ms.
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  auto step = std::chrono::milliseconds(1);
  for (;;) {
    std::optional<std::pair<boost::system::error_code, results>> answer;
    {
      // `running_` itself stays untouched while its mutex is held: resetting it there could free the
      // mutex before the lock lets go of it.
      std::lock_guard lock(running_->mutex);
      answer = std::move(running_->answer);
    }
    if (answer) {
      running_.reset();  // the next wait looks the name up afresh
      co_return std::move(*answer);
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) co_return std::pair{boost::system::error_code(boost::beast::error::timeout), results()};
    timer.expires_at(std::min(now + step, deadline));
    boost::system::error_code ignored;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
    step = std::min(step * 2, std::chrono::milliseconds(20));
  }
}

}  // namespace mrkv::http
