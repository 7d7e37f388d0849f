// This file contains a lock built on the kvserver's conditional writes, as the lab's `lock` package
// and `etcdctl lock`: the lock NAME is held by whoever created the key NAME (a put with version 0),
// with a lease that the holder renews (a put with the version it holds) while it holds the lock. A
// holder that dies stops renewing, the lease runs out, the key disappears, and the next acquirer gets
// it. release() deletes the key if it still has the holder's version.
//
// A lock owns its clerk (with its own request ids), so its renewals never interleave with the caller's
// own calls. acquire() and release() are called from one coroutine at a time; the renewal runs on the
// same executor in between. Not thread-safe. The lock must not be destroyed while held: release() first
// (the destructor stops renewing, and the lease then frees the key).
//
// Holding a lock is a lease, not a guarantee: a holder cut off from the server for longer than the
// lease loses it, and holds() then turns false (after the failed renewal) while the holder may still be
// working. Use a lease far longer than the longest pause a holder can suffer.
#pragma once

#include "mrkv/http/endpoint.hpp"
#include "mrkv/kv/clerk.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace mrkv::kv {

struct lock_options {
  std::chrono::milliseconds lease{10'000};  // renewed every third of it
  // How often a waiting acquirer looks again (with jitter); its wait is also bounded by the lease.
  std::chrono::milliseconds poll{50};
  std::string holder;  // the key's value while held; empty: the clerk's client id
  clerk_options connection;  // deadline 0: each call retries until it is answered
};

class lock {
 public:
  lock(boost::asio::any_io_executor executor, http::url server, std::string name, lock_options options = {});
  ~lock();
  lock(const lock&) = delete;
  lock& operator=(const lock&) = delete;

  // Waits until this holder has the lock; then keeps it renewed until release().
  boost::asio::awaitable<void> acquire();
  // Stops renewing and deletes the key if this holder still has it.
  boost::asio::awaitable<void> release();

  // Whether the lock is held: false before acquire(), after release(), and once a renewal found the
  // lock taken over (the lease ran out first).
  bool holds() const noexcept;
  std::uint64_t version() const noexcept;  // of the key while held
  const std::string& holder() const noexcept;
  const std::string& name() const noexcept;

  struct state;  // shared with the renewal coroutine, which may outlive a call

 private:
  std::shared_ptr<state> state_;
};

}  // namespace mrkv::kv
