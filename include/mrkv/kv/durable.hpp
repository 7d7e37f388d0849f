// This file contains the kvserver's durable write path (issue 12): a kv::write_path (kv/write_path.hpp)
// that encodes every write_command as one record of the write-ahead log (kv/write_ahead_log.hpp) and
// executes it on the store (store::execute) only once the log says it is durable, in log order; the
// awaiting request is then resumed on its own executor. Recovery replays the same commands through
// the same store::execute, so the state after a restart, duplicate table included, is the state that
// was acknowledged; leases run again for their full length from the restart.
//
// Command (a log record's bytes):  u8 kind (0 put, 1 append, 2 remove, 3 expire) | u8 flags (1: an
//   expected version, 2: a lease) | u64 seq | u64 expected version | u32 lease ms |
//   u16 client length | client | u32 key length | key | value (the rest)
// Snapshot entry:  0x01 | u64 version | u32 lease ms | u32 key length | key | value        one key
//                  0x02 | u8 kind | u8 mismatch | u64 seq | u64 version | u16 length | client | reply
#pragma once

#include "mrkv/kv/store.hpp"
#include "mrkv/kv/write_ahead_log.hpp"
#include "mrkv/kv/write_path.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace mrkv::kv {

std::string encode_command(const write_command& command);
// Throws std::runtime_error for bytes that are not a command.
write_command decode_command(std::string_view bytes);

class durable_write_path final : public write_path {
 public:
  // Called on the snapshot thread each time a snapshot has written out another of the store's shards,
  // with how many it has written (1 .. store::shard_count); lets a test run writes at a chosen point
  // of a snapshot. Empty: nothing is called.
  using shard_written_hook = std::function<void(std::size_t shards_written)>;

  // Recovers `data` (which must be empty) from options.dir, then logs every write made through this.
  durable_write_path(store& data, wal_options options, shard_written_hook on_shard_written = {});
  ~durable_write_path() override;

  // Completes once the write is durable as the policy promises and executed (not before: no read sees
  // it earlier); throws http::request_error(503) when it could not be written, having changed nothing.
  boost::asio::awaitable<write_result> execute(write_command command) override;

  write_ahead_log& wal() noexcept { return *wal_; }

 private:
  store& data_;
  shard_written_hook on_shard_written_;
  std::unique_ptr<write_ahead_log> wal_;
};

}  // namespace mrkv::kv
