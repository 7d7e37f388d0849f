#include "mrkv/kv/store.hpp"

#include "mrkv/kv/value_buffer.hpp"

#include <functional>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mrkv::kv {

namespace {

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};

// The top bits pick the shard, so they stay independent of the bits the shard's own buckets use.
std::size_t shard_of(std::string_view text) {
  static_assert(store::shard_count == 64);
  return static_cast<std::size_t>(static_cast<std::uint64_t>(string_hash{}(text)) >> 58);
}

struct client_entry {
  std::uint64_t seq = 0;  // 0: reserved for a write that has not completed (it threw)
  std::uint32_t last_seen = 0;  // seconds since the store started
  write_kind kind = write_kind::put;
  std::uint8_t reply_shard = 0;  // the key shard whose mutex guards reply's bytes
  // The reply to the latest write when it was an append to a non-empty value: the first reply_length
  // bytes of the key's buffer as it was then. Empty otherwise.
  value_buffer reply;
  std::size_t reply_length = 0;
};

// What a write lets go of, freed after its locks are released: a 10 MiB value is not free()d while
// other threads wait for the shard.
struct released {
  value_buffer old_value;
  value_buffer::outgrown_bytes outgrown;
  value_buffer old_reply;
};

}  // namespace

struct alignas(64) store::key_shard {
  mutable std::mutex mutex;
  std::unordered_map<std::string, value_buffer, string_hash, std::equal_to<>> values;
  std::size_t bytes = 0;
};

struct alignas(64) store::client_shard {
  mutable std::mutex mutex;
  std::unordered_map<std::string, client_entry, string_hash, std::equal_to<>> entries;
};

store::store(store_options options)
    : options_(options),
      start_(clock::now()),
      keys_(std::make_unique<key_shard[]>(shard_count)),
      clients_(std::make_unique<client_shard[]>(shard_count)) {
  if (options_.client_ttl.count() <= 0) throw std::invalid_argument("client TTL must be at least one second");
}

store::~store() = default;

std::uint32_t store::seconds_since_start(clock::time_point now) const {
  if (now <= start_) return 0;
  return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(now - start_).count());
}

std::string store::get(std::string_view key) const {
  auto& shard = keys_[shard_of(key)];
  std::lock_guard lock(shard.mutex);
  auto it = shard.values.find(key);
  return it == shard.values.end() ? std::string() : std::string(it->second.view());
}

write_result store::put(std::string key, std::string value, std::optional<request_id> id, clock::time_point now) {
  return write(write_kind::put, std::move(key), std::move(value), id, now);
}

write_result store::append(std::string key, std::string value, std::optional<request_id> id,
                           clock::time_point now) {
  return write(write_kind::append, std::move(key), std::move(value), id, now);
}

write_result store::write(write_kind kind, std::string key, std::string value, std::optional<request_id> id,
                          clock::time_point now) {
  if (!options_.deduplicate) id.reset();
  if (id && (id->client.empty() || id->seq == 0))
    throw std::invalid_argument("a request id needs a non-empty client and a seq of at least 1");

  write_result result;
  released garbage;  // declared before the locks, so destroyed after they are released
  const std::size_t key_index = shard_of(key);
  auto& kshard = keys_[key_index];
  // Allocations that don't need a lock are made before taking one.
  value_buffer fresh = kind == write_kind::put ? value_buffer::copy_of(value) : value_buffer();
  value_buffer reply;
  std::size_t reply_length = 0;

  // Applies the write to the map; the caller holds kshard.mutex.
  auto apply = [&] {
    auto it = kshard.values.find(key);
    if (kind == write_kind::put) {
      if (it == kshard.values.end()) {
        kshard.bytes += key.size() + fresh.size();
        kshard.values.emplace(std::move(key), std::move(fresh));
      } else {
        kshard.bytes = kshard.bytes - it->second.size() + fresh.size();
        garbage.old_value = std::exchange(it->second, std::move(fresh));
      }
      return;
    }
    if (it == kshard.values.end()) {
      kshard.bytes += key.size();
      it = kshard.values.emplace(std::move(key), value_buffer()).first;
    }
    value_buffer& current = it->second;
    result.old_value = current.view();
    if (id && !result.old_value.empty()) {
      // The block as it is now: appends only extend its value, so its first old_value.size() bytes stay
      // the reply for good, even when the append below moves the value to a bigger buffer.
      reply = current;
      reply_length = result.old_value.size();
    }
    garbage.outgrown = current.append(value);
    kshard.bytes += value.size();
  };

  if (!id) {
    std::lock_guard key_lock(kshard.mutex);
    apply();
    return result;
  }

  auto& cshard = clients_[shard_of(id->client)];
  const std::uint32_t seen = seconds_since_start(now);
  std::lock_guard client_lock(cshard.mutex);
  auto [entry_it, inserted] = cshard.entries.try_emplace(std::string(id->client));
  client_entry& entry = entry_it->second;
  if (!inserted && id->seq <= entry.seq) {
    if (id->seq < entry.seq) {
      result.outcome = write_result::status::stale;
      result.latest_seq = entry.seq;
      return result;
    }
    entry.last_seen = seen;  // a retry shows the client is alive
    if (entry.kind != kind) {
      result.outcome = write_result::status::conflict;
      result.latest_seq = entry.seq;
      return result;
    }
    result.outcome = write_result::status::replayed;
    if (entry.reply_length > 0) {
      std::lock_guard key_lock(keys_[entry.reply_shard].mutex);
      result.old_value = entry.reply.view().substr(0, entry.reply_length);
    }
    return result;
  }
  {
    std::lock_guard key_lock(kshard.mutex);
    apply();
  }
  garbage.old_reply = std::exchange(entry.reply, std::move(reply));
  entry.reply_length = reply_length;
  entry.reply_shard = static_cast<std::uint8_t>(key_index);
  entry.seq = id->seq;
  entry.last_seen = seen;
  entry.kind = kind;
  return result;
}

std::size_t store::expire_idle_clients(clock::time_point now) {
  const std::uint32_t now_s = seconds_since_start(now);
  const auto ttl = static_cast<std::uint64_t>(options_.client_ttl.count());
  std::size_t expired = 0;
  std::vector<value_buffer> garbage;
  for (std::size_t i = 0; i < shard_count; ++i) {
    auto& shard = clients_[i];
    {
      std::lock_guard lock(shard.mutex);
      for (auto it = shard.entries.begin(); it != shard.entries.end();) {
        // Strictly more than the TTL in whole seconds: last_seen is rounded down, so this guarantees a
        // client idle for at least the TTL is never dropped early.
        if (now_s >= it->second.last_seen && now_s - it->second.last_seen > ttl) {
          if (it->second.reply_length > 0) garbage.push_back(std::move(it->second.reply));
          it = shard.entries.erase(it);
          ++expired;
        } else {
          ++it;
        }
      }
    }
    garbage.clear();
  }
  return expired;
}

void store::copy_shard(std::size_t shard, shard_image& out) const {
  {
    auto& k = keys_[shard];
    std::lock_guard lock(k.mutex);
    out.values.reserve(out.values.size() + k.values.size());
    for (const auto& [key, value] : k.values) out.values.emplace_back(key, std::string(value.view()));
  }
  auto& c = clients_[shard];
  std::lock_guard lock(c.mutex);
  for (const auto& [name, entry] : c.entries) {
    if (entry.seq == 0) continue;
    client_image image{name, entry.seq, entry.kind, {}};
    if (entry.reply_length > 0) {
      std::lock_guard key_lock(keys_[entry.reply_shard].mutex);
      image.reply = std::string(entry.reply.view().substr(0, entry.reply_length));
    }
    out.clients.push_back(std::move(image));
  }
}

void store::load_value(std::string key, std::string_view value) {
  auto& shard = keys_[shard_of(key)];
  std::lock_guard lock(shard.mutex);
  auto fresh = value_buffer::copy_of(value);
  auto [it, inserted] = shard.values.try_emplace(std::move(key));
  if (inserted) shard.bytes += it->first.size();
  shard.bytes = shard.bytes - it->second.size() + fresh.size();
  it->second = std::move(fresh);
}

void store::load_client(const client_image& image, clock::time_point now) {
  const std::size_t index = shard_of(image.client);
  auto& shard = clients_[index];
  std::lock_guard lock(shard.mutex);
  client_entry& entry = shard.entries[image.client];
  entry.seq = image.seq;
  entry.kind = image.kind;
  entry.last_seen = seconds_since_start(now);
  // A private copy: nothing appends to it, so any shard's mutex guards it.
  entry.reply = value_buffer::copy_of(image.reply);
  entry.reply_length = image.reply.size();
  entry.reply_shard = static_cast<std::uint8_t>(index);
}

store_stats store::stats() const {
  store_stats s;
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::lock_guard lock(keys_[i].mutex);
    s.keys += keys_[i].values.size();
    s.bytes += keys_[i].bytes;
  }
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::lock_guard lock(clients_[i].mutex);
    s.clients += clients_[i].entries.size();
  }
  return s;
}

}  // namespace mrkv::kv
