// This file contains the kvserver's write path: the one interface through which every write reaches
// the store, client writes and lease expiries alike, so that a durable implementation (a write-ahead
// log that answers once a record is on disk) can replace the memory-only one without the routes
// changing. Reads do not come through here: they read the store directly.
//
// The memory-only path executes the command at once and never suspends. A durable path must execute
// commands on the store in the order it logs them (see store::execute: replaying the log in that order
// rebuilds the store), and may suspend (co_await a sync) before answering; it must not hold a lock
// across that co_await. It may refuse a write by throwing http::request_error (503 when the write
// cannot be made durable), and the write must then not have been applied.
#pragma once

#include "mrkv/kv/store.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>

namespace mrkv::kv {

class write_path {
 public:
  virtual ~write_path() = default;
  // Executes `command` on the store and returns its result. Called from any of the server's threads
  // at once.
  virtual boost::asio::awaitable<write_result> execute(write_command command) = 0;
};

// Executes at once on `data`, which must outlive it.
class memory_write_path final : public write_path {
 public:
  explicit memory_write_path(store& data) : data_(data) {}
  boost::asio::awaitable<write_result> execute(write_command command) override;

 private:
  store& data_;
};

}  // namespace mrkv::kv
