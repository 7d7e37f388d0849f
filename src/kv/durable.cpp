#include "mrkv/kv/durable.hpp"

#include "mrkv/http/reply.hpp"
#include "mrkv/kv/log_format.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <stdexcept>
#include <vector>

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

struct owned_key {
  std::string key, value;
  std::uint64_t version = 0;
  std::uint32_t lease_ms = 0;
};
struct owned_client {
  std::string client, reply;
  std::uint64_t seq = 0, version = 0;
  write_kind kind = write_kind::put;
  bool version_mismatch = false;
};

// Copied under the log's mutex (no write executes meanwhile), so all shards are at one point of the
// log; written out by the snapshot thread.
class store_cut final : public snapshot_cut {
 public:
  explicit store_cut(const store& data) {
    for (std::size_t i = 0; i < store::shard_count; ++i) {
      data.visit_keys(i, [&](const key_record& k) {
        keys_.push_back(owned_key{std::string(k.key), std::string(k.value), k.version, k.lease_ms});
      });
      data.visit_clients(i, [&](const client_record& c) {
        clients_.push_back(owned_client{std::string(c.client), std::string(c.reply), c.seq, c.version, c.kind,
                                        c.version_mismatch});
      });
    }
  }
  void write(const std::function<void(std::string_view)>& emit) override {
    std::string entry;
    for (auto& k : keys_) {
      entry.clear();
      entry.push_back('\x01');
      disk::put_u64(entry, k.version);
      disk::put_u32(entry, k.lease_ms);
      disk::put_u32(entry, static_cast<std::uint32_t>(k.key.size()));
      entry.append(k.key);
      entry.append(k.value);
      emit(entry);
      std::string().swap(k.value);
    }
    for (const auto& c : clients_) {
      entry.clear();
      entry.push_back('\x02');
      entry.push_back(static_cast<char>(c.kind));
      entry.push_back(c.version_mismatch ? '\x01' : '\x00');
      disk::put_u64(entry, c.seq);
      disk::put_u64(entry, c.version);
      disk::put_u16(entry, static_cast<std::uint16_t>(c.client.size()));
      entry.append(c.client);
      entry.append(c.reply);
      emit(entry);
    }
  }

 private:
  std::vector<owned_key> keys_;
  std::vector<owned_client> clients_;
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

durable_write_path::durable_write_path(store& data, wal_options options) : data_(data) {
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
                                           [&data] { return std::make_unique<store_cut>(data); });
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
