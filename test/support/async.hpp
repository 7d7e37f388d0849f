// Running coroutines to completion from a test: a private io_context, a hard time limit, and the
// coroutine's exception rethrown in the test's thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <future>
#include <stdexcept>

namespace mrkv::test {

// Runs `work` (made on `context`) until it completes; throws if it takes longer than `limit`, which
// means an operation without a timeout leaked.
template <class T>
T run_until_done(boost::asio::io_context& context, boost::asio::awaitable<T> work,
                 std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  auto result = boost::asio::co_spawn(context, std::move(work), boost::asio::use_future);
  context.restart();
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (result.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("coroutine did not finish in time");
    context.run_one_for(std::chrono::milliseconds(50));
  }
  return result.get();
}

}  // namespace mrkv::test
