#include "mrkv/kv/lock.hpp"

#include "mrkv/common/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <random>
#include <stdexcept>

namespace mrkv::kv {

namespace asio = boost::asio;

struct lock::state {
  clerk ck;
  std::string name;
  std::string holder;
  lock_options options;
  asio::steady_timer wake;  // the renewer sleeps on it; cancelled to stop it early
  asio::steady_timer pause;
  std::mt19937_64 rng{std::random_device{}()};
  bool held = false;
  bool renewing = false;
  bool stopping = false;
  std::uint64_t version = 0;

  state(asio::any_io_executor executor, http::url server, std::string lock_name, lock_options opts)
      : ck(executor, std::move(server), opts.connection),
        name(std::move(lock_name)),
        holder(opts.holder.empty() ? ck.client_id() : opts.holder),
        options(std::move(opts)),
        wake(executor),
        pause(executor) {
    if (options.lease.count() < 3) throw std::invalid_argument("a lock's lease is at least 3 ms");
  }

  write_options with_lease(std::uint64_t expected) const {
    write_options w;
    w.expected_version = expected;
    w.lease = options.lease;
    return w;
  }

  // After a write whose outcome is unknown: whether the key now says we hold it, and at which version.
  asio::awaitable<bool> check_ours() {
    auto now = co_await ck.get_versioned(name);
    if (now.version > 0 && now.value == holder) {
      version = now.version;
      co_return true;
    }
    co_return false;
  }

  asio::awaitable<void> sleep(std::chrono::milliseconds upto) {
    const auto cap = std::max<std::int64_t>(1, upto.count());
    pause.expires_after(std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(cap / 2, cap)(rng)));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
};

namespace {

asio::awaitable<void> renew(std::shared_ptr<lock::state> st) {
  try {
    while (!st->stopping) {
      st->wake.expires_after(st->options.lease / 3);
      co_await st->wake.async_wait(asio::as_tuple(asio::use_awaitable));
      if (st->stopping) break;
      auto r = co_await st->ck.put(st->name, st->holder, st->with_lease(st->version));
      bool ours = r.ok();
      if (ours) st->version = r.version;
      else if (r.result == write_outcome::status::maybe_applied) ours = co_await st->check_ours();
      if (!ours) {
        st->held = false;
        log::warn("lock", "lost lock '" + st->name + "': its lease ran out before a renewal got through");
        break;
      }
    }
  } catch (const std::exception& e) {
    st->held = false;
    log::warn("lock", "stopped renewing lock '" + st->name + "': " + e.what());
  }
  st->renewing = false;
}

}  // namespace

lock::lock(asio::any_io_executor executor, http::url server, std::string name, lock_options options)
    : state_(std::make_shared<state>(std::move(executor), std::move(server), std::move(name), std::move(options))) {}

lock::~lock() {
  state_->stopping = true;
  state_->wake.cancel();
}

asio::awaitable<void> lock::acquire() {
  auto st = state_;
  if (st->held || st->renewing) throw std::logic_error("lock '" + st->name + "' is already held by this holder");
  for (;;) {
    auto r = co_await st->ck.put(st->name, st->holder, st->with_lease(0));
    if (r.ok()) {
      st->version = r.version;
      break;
    }
    if (r.result == write_outcome::status::maybe_applied && co_await st->check_ours()) break;
    // Held by someone else: look again soon; a dead holder's lease frees it within options.lease.
    co_await st->sleep(std::min(st->options.poll, st->options.lease));
  }
  st->held = true;
  st->stopping = false;
  st->renewing = true;
  asio::co_spawn(st->wake.get_executor(), renew(st), asio::detached);
}

asio::awaitable<void> lock::release() {
  auto st = state_;
  st->stopping = true;
  st->wake.cancel();
  // The renewer may be in the middle of a renewal (the clerk runs one call at a time): let it finish.
  while (st->renewing) {
    st->pause.expires_after(std::chrono::milliseconds(5));
    co_await st->pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (st->held) {
    st->held = false;
    // A mismatch means the lease ran out and someone else may hold it now: nothing of ours to delete.
    co_await st->ck.remove(st->name, st->version);
  }
}

bool lock::holds() const noexcept { return state_->held; }
std::uint64_t lock::version() const noexcept { return state_->version; }
const std::string& lock::holder() const noexcept { return state_->holder; }
const std::string& lock::name() const noexcept { return state_->name; }

}  // namespace mrkv::kv
