#include "mrkv/kv/durable.hpp"

#include "mrkv/http/reply.hpp"
#include "mrkv/kv/log_format.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <stdexcept>

namespace mrkv::kv {

namespace asio = boost::asio;

std::string encode_command(const write_command& c) {
  std::string out;
  out.reserve(1 + 1 + 8 + 8 + 4 + 2 + c.client.size() + 4 + c.key.size() + c.value.size());
  out.push_back(static_cast<char>(c.kind));
  out.push_back(static_cast<char>((c.expected_version ? 1 : 0) | (c.lease_ms ? 2 : 0)));
  disk::put_u64(out, c.seq);
  disk::put_u64(out, c.expected_version.value_or(0));
  disk::put_u32(out, c.lease_ms.value_or(0));
  disk::put_u16(out, static_cast<std::uint16_t>(c.client.size()));
  out.append(c.client);
  disk::put_u32(out, static_cast<std::uint32_t>(c.key.size()));
  out.append(c.key);
  out.append(c.value);
  return out;
}

write_command decode_command(std::string_view bytes) {
  disk::reader r(bytes);
  write_command c;
  const auto kind = r.u8();
  const auto flags = r.u8();
  c.seq = r.u64();
  const auto expected = r.u64();
  const auto lease = r.u32();
  c.client = std::string(r.bytes(r.u16()));
  const auto key = r.bytes(r.u32());
  if (r.failed() || kind > static_cast<std::uint8_t>(write_kind::expire) || flags > 3)
    throw std::runtime_error("a log record that is not a write command");
  c.kind = static_cast<write_kind>(kind);
  if (flags & 1) c.expected_version = expected;
  if (flags & 2) c.lease_ms = lease;
  c.key = std::string(key);
  c.value = std::string(bytes.substr(1 + 1 + 8 + 8 + 4 + 2 + c.client.size() + 4 + key.size()));
  return c;
}

namespace {

struct outcome {
  write_result result;
  std::string error;  // set: not durable (or not executable)
  unsigned status = 0;
};

write_result execute_record(store& data, std::string_view record) {
  return data.execute(decode_command(record), store::clock::now());
}

template <class Handler>
class awaited_write final : public pending_write {
 public:
  awaited_write(std::string record, store& data, Handler handler)
      : pending_write(std::move(record)), data_(data), handler_(std::move(handler)) {}

  void apply() noexcept override {
    outcome o;
    try {
      o.result = execute_record(data_, record());
    } catch (const std::exception& e) {
      o.error = e.what();
      o.status = 500;
    }
    complete(std::move(o));
  }
  void fail(const std::string& why) noexcept override { complete(outcome{{}, why, 503}); }

 private:
  void complete(outcome o) noexcept {
    auto ex = asio::get_associated_executor(handler_);
    asio::post(ex, [h = std::move(handler_), o = std::move(o)]() mutable { std::move(h)(std::move(o)); });
  }

  store& data_;
  Handler handler_;
};

// The state at one point of the log, while service goes on. The log calls the constructor under its
// mutex, after applying every record below the snapshot's lsn and before applying any record at or
// above it (writes are applied only under that mutex, in log order); the constructor only marks the
// store's shards (store::begin_cut, O(shard_count)). Each shard is then copied, as it was at that
// point, by the first write that would change it or by write() on the snapshot thread, whichever
// comes first (store.hpp, "Snapshots", says why that copy is the shard at the cut). So the snapshot
// is exactly the state after the records below its lsn, keys and duplicate table alike, which is what
// recovery assumes: it loads the snapshot and replays the records from that lsn on, as before (the
// file format did not change). A read waits at most for a piece of about a thousand records, a write
// at most for one shard's copy (1/64 of the store), where the copy of the whole store used to hold up
// every write, and the reads of each shard in turn.
//
// A shard is copied already encoded, into one buffer per shard (u32 length | entry, repeated): no
// allocation per key while a shard's lock is held, and a 16-byte value costs its bytes, not a string.
class store_cut final : public snapshot_cut, private cut_receiver {
 public:
  store_cut(store& data, const durable_write_path::shard_written_hook& on_shard_written)
      : data_(data), on_shard_written_(on_shard_written) {
    data_.begin_cut(*this);
  }
  ~store_cut() override { data_.end_cut(); }
  store_cut(const store_cut&) = delete;
  store_cut& operator=(const store_cut&) = delete;

  void write(const std::function<void(std::string_view)>& emit) override {
    for (std::size_t i = 0; i < store::shard_count; ++i) {
      data_.take_cut(i);  // from here on the shard's buffers are ours alone
      emit_all(keys_[i], emit);
      emit_all(clients_[i], emit);
      if (on_shard_written_) on_shard_written_(i + 1);
    }
  }

 private:
  void take_key(std::size_t shard, const key_record& k) override {
    std::string& out = keys_[shard];
    disk::put_u32(out, static_cast<std::uint32_t>(1 + 8 + 4 + 4 + k.key.size() + k.value.size()));
    out.push_back('\x01');
    disk::put_u64(out, k.version);
    disk::put_u32(out, k.lease_ms);
    disk::put_u32(out, static_cast<std::uint32_t>(k.key.size()));
    out.append(k.key);
    out.append(k.value);
  }
  void take_client(std::size_t shard, const client_record& c) override {
    std::string& out = clients_[shard];
    disk::put_u32(out, static_cast<std::uint32_t>(1 + 1 + 1 + 8 + 8 + 2 + c.client.size() + c.reply.size()));
    out.push_back('\x02');
    out.push_back(static_cast<char>(c.kind));
    out.push_back(c.version_mismatch ? '\x01' : '\x00');
    disk::put_u64(out, c.seq);
    disk::put_u64(out, c.version);
    disk::put_u16(out, static_cast<std::uint16_t>(c.client.size()));
    out.append(c.client);
    out.append(c.reply);
  }
  static void emit_all(std::string& entries, const std::function<void(std::string_view)>& emit) {
    const std::string_view all = entries;
    for (std::size_t at = 0; at + 4 <= all.size();) {
      const std::size_t length = disk::get_u32(all.data() + at);
      emit(all.substr(at + 4, length));
      at += 4 + length;
    }
    std::string().swap(entries);  // written: its memory goes back now, not at the end of the snapshot
  }

  store& data_;
  const durable_write_path::shard_written_hook& on_shard_written_;  // the write path's, which outlives the log
  std::array<std::string, store::shard_count> keys_, clients_;
};

void load_entry(store& data, std::string_view entry) {
  disk::reader r(entry);
  const auto type = r.u8();
  const auto now = store::clock::now();
  if (type == 1) {
    key_record k;
    k.version = r.u64();
    k.lease_ms = r.u32();
    k.key = r.bytes(r.u32());
    if (r.failed()) throw std::runtime_error("a damaged key entry in the snapshot");
    k.value = entry.substr(1 + 8 + 4 + 4 + k.key.size());
    data.load(k, now);
    return;
  }
  if (type == 2) {
    client_record c;
    const auto kind = r.u8();
    c.version_mismatch = r.u8() != 0;
    c.seq = r.u64();
    c.version = r.u64();
    c.client = r.bytes(r.u16());
    if (r.failed() || kind > static_cast<std::uint8_t>(write_kind::expire))
      throw std::runtime_error("a damaged client entry in the snapshot");
    c.kind = static_cast<write_kind>(kind);
    c.reply = entry.substr(1 + 1 + 1 + 8 + 8 + 2 + c.client.size());
    data.load(c, now);
    return;
  }
  throw std::runtime_error("an unknown entry type in the snapshot");
}

}  // namespace

durable_write_path::durable_write_path(store& data, wal_options options, shard_written_hook on_shard_written)
    : data_(data), on_shard_written_(std::move(on_shard_written)) {
  wal_recovery recovery;
  recovery.load_entry = [&data](std::string_view entry) { load_entry(data, entry); };
  recovery.replay = [&data](std::string_view command) {
    try {
      execute_record(data, command);
    } catch (const std::invalid_argument&) {
      // It was refused the same way when it was first executed, and changed nothing then either.
    }
  };
  wal_ = std::make_unique<write_ahead_log>(std::move(options), recovery,
                                           [this] { return std::make_unique<store_cut>(data_, on_shard_written_); });
}

durable_write_path::~durable_write_path() = default;

asio::awaitable<write_result> durable_write_path::execute(write_command command) {
  std::string record = encode_command(command);
  command = write_command();  // the record holds the bytes now; a 10 MiB value is not kept twice
  outcome o = co_await asio::async_initiate<decltype(asio::use_awaitable), void(outcome)>(
      [this, &record](auto handler) {
        using handler_type = std::decay_t<decltype(handler)>;
        wal_->submit(std::make_unique<awaited_write<handler_type>>(std::move(record), data_, std::move(handler)));
      },
      asio::use_awaitable);
  if (o.status == 503) throw http::request_error(503, o.error + "; nothing was changed");
  if (!o.error.empty()) throw std::runtime_error(o.error);
  co_return o.result;
}

}  // namespace mrkv::kv
