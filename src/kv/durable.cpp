#include "mrkv/kv/durable.hpp"

#include "mrkv/kv/log_format.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <stdexcept>
#include <vector>

namespace mrkv::kv {

namespace asio = boost::asio;

std::string encode_write(write_kind kind, std::string_view key, std::string_view value,
                         std::optional<std::string_view> client, std::uint64_t seq) {
  std::string out;
  out.reserve(1 + 8 + 2 + (client ? client->size() : 0) + 4 + key.size() + value.size());
  out.push_back(kind == write_kind::put ? '\x01' : '\x02');
  disk::put_u64(out, client ? seq : 0);
  disk::put_u16(out, static_cast<std::uint16_t>(client ? client->size() : 0));
  if (client) out.append(*client);
  disk::put_u32(out, static_cast<std::uint32_t>(key.size()));
  out.append(key);
  out.append(value);
  return out;
}

write_result execute_write(store& data, std::string_view command) {
  disk::reader r(command);
  const auto kind = r.u8();
  const auto seq = r.u64();
  const auto client = r.bytes(r.u16());
  const auto key = r.bytes(r.u32());
  if (r.failed() || (kind != 1 && kind != 2) || client.empty() != (seq == 0))
    throw std::runtime_error("a log record that is not a write command");
  const std::string_view value = command.substr(1 + 8 + 2 + client.size() + 4 + key.size());
  std::optional<request_id> id;
  if (!client.empty()) id = request_id{client, seq};
  return kind == 1 ? data.put(std::string(key), std::string(value), id)
                   : data.append(std::string(key), std::string(value), id);
}

namespace {

struct outcome {
  write_result result;
  std::string error;  // set: not durable
};

template <class Handler>
class awaited_write final : public pending_write {
 public:
  awaited_write(std::string record, store& data, Handler handler)
      : pending_write(std::move(record)), data_(data), handler_(std::move(handler)) {}

  void apply() noexcept override {
    outcome o;
    try {
      o.result = execute_write(data_, record());
    } catch (const std::exception& e) {
      o.error = e.what();
    }
    complete(std::move(o));
  }
  void fail(const std::string& why) noexcept override { complete(outcome{{}, why}); }

 private:
  void complete(outcome o) noexcept {
    auto ex = asio::get_associated_executor(handler_);
    asio::post(ex, [h = std::move(handler_), o = std::move(o)]() mutable { std::move(h)(std::move(o)); });
  }

  store& data_;
  Handler handler_;
};

class store_cut final : public snapshot_cut {
 public:
  explicit store_cut(const store& data) {
    for (std::size_t i = 0; i < store::shard_count; ++i) data.copy_shard(i, image_);
  }
  void write(const std::function<void(std::string_view)>& emit) override {
    std::string entry;
    for (auto& [key, value] : image_.values) {
      entry.clear();
      entry.push_back('\x01');
      disk::put_u32(entry, static_cast<std::uint32_t>(key.size()));
      entry.append(key);
      entry.append(value);
      emit(entry);
      std::string().swap(value);
    }
    for (const auto& c : image_.clients) {
      entry.clear();
      entry.push_back('\x02');
      entry.push_back(c.kind == write_kind::put ? '\x01' : '\x02');
      disk::put_u64(entry, c.seq);
      disk::put_u16(entry, static_cast<std::uint16_t>(c.client.size()));
      entry.append(c.client);
      entry.append(c.reply);
      emit(entry);
    }
  }

 private:
  shard_image image_;
};

void load_entry(store& data, std::string_view entry) {
  disk::reader r(entry);
  const auto type = r.u8();
  if (type == 1) {
    const auto key = r.bytes(r.u32());
    if (r.failed()) throw std::runtime_error("a damaged key entry in the snapshot");
    data.load_value(std::string(key), entry.substr(1 + 4 + key.size()));
    return;
  }
  if (type == 2) {
    client_image image;
    const auto kind = r.u8();
    image.seq = r.u64();
    image.client = std::string(r.bytes(r.u16()));
    if (r.failed() || (kind != 1 && kind != 2)) throw std::runtime_error("a damaged client entry in the snapshot");
    image.kind = kind == 1 ? write_kind::put : write_kind::append;
    image.reply = std::string(entry.substr(1 + 1 + 8 + 2 + image.client.size()));
    data.load_client(image);
    return;
  }
  throw std::runtime_error("an unknown entry type in the snapshot");
}

}  // namespace

durable_log::durable_log(store& data, wal_options options) : data_(data) {
  wal_recovery recovery;
  recovery.load_entry = [&data](std::string_view entry) { load_entry(data, entry); };
  recovery.replay = [&data](std::string_view command) { execute_write(data, command); };
  wal_ = std::make_unique<write_ahead_log>(std::move(options), recovery,
                                           [&data] { return std::make_unique<store_cut>(data); });
}

durable_log::~durable_log() = default;

asio::awaitable<write_result> durable_log::write(write_kind kind, std::string key, std::string value,
                                                 std::optional<std::string> client, std::uint64_t seq) {
  std::string record = encode_write(kind, key, value, client ? std::optional<std::string_view>(*client) : std::nullopt, seq);
  key.clear();
  value.clear();
  value.shrink_to_fit();
  outcome o = co_await asio::async_initiate<decltype(asio::use_awaitable), void(outcome)>(
      [this, &record](auto handler) {
        using handler_type = std::decay_t<decltype(handler)>;
        wal_->submit(std::make_unique<awaited_write<handler_type>>(std::move(record), data_, std::move(handler)));
      },
      asio::use_awaitable);
  if (!o.error.empty()) throw not_durable(o.error);
  co_return o.result;
}

}  // namespace mrkv::kv
