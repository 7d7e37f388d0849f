// This file contains the kvserver's durable write path (issue 12): every write is encoded as one
// command, handed to the write-ahead log (kv/write_ahead_log.hpp), and executed on the store only once
// the log says it is durable; the awaiting request is then completed on its own executor. Recovery
// replays the same commands through the same execute function, so the state after a restart, duplicate
// table included, is the state that was acknowledged.
//
// Command (a log record's bytes):  u8 kind (1 put, 2 append) | u64 seq | u16 client length | client |
//                                  u32 key length | key | value (the rest)
// Snapshot entry:  0x01 | u32 key length | key | value            one key
//                  0x02 | u8 kind | u64 seq | u16 length | client | reply   one duplicate-table entry
#pragma once

#include "mrkv/kv/store.hpp"
#include "mrkv/kv/write_ahead_log.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace mrkv::kv {

std::string encode_write(write_kind kind, std::string_view key, std::string_view value,
                         std::optional<std::string_view> client, std::uint64_t seq);
// Executes an encoded command on `data`; throws std::runtime_error for bytes that are not a command.
write_result execute_write(store& data, std::string_view command);

// Thrown by durable_log::write when the write could not be made durable (the kvserver answers 503).
struct not_durable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class durable_log {
 public:
  // Recovers `data` (which must be empty) from options.dir, then logs every write made through this.
  durable_log(store& data, wal_options options);
  ~durable_log();

  // Completes once the write is durable as the policy promises and executed (not before: no read sees
  // it earlier); throws not_durable when it could not be written, having changed nothing.
  boost::asio::awaitable<write_result> write(write_kind kind, std::string key, std::string value,
                                             std::optional<std::string> client, std::uint64_t seq);

  write_ahead_log& wal() noexcept { return *wal_; }

 private:
  store& data_;
  std::unique_ptr<write_ahead_log> wal_;
};

}  // namespace mrkv::kv
