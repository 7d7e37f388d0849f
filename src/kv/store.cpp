#include "mrkv/kv/store.hpp"

#include "mrkv/kv/ordered_index.hpp"
#include "mrkv/kv/value_buffer.hpp"

#include <algorithm>
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
  // The reply to the latest write when it was an executed append to a non-empty value: the first
  // reply_length bytes of the key's buffer as it was then. Empty otherwise.
  value_buffer reply;
  std::size_t reply_length = 0;
  std::uint64_t version = 0;    // the version in the reply
  std::uint32_t last_seen = 0;  // seconds since the store started
  write_kind kind = write_kind::put;
  std::uint8_t reply_shard = 0;  // the key shard whose mutex guards reply's bytes
  bool mismatch = false;         // the reply was a version mismatch
};

// The version sits in what would be padding of the map node (a 48-byte node is a 64-byte malloc chunk
// either way), so versions cost no memory per key.
struct key_entry {
  value_buffer value;
  std::uint64_t version = 0;
};

struct lease_entry {
  std::uint64_t version = 0;  // the key's version when the lease was set
  std::uint32_t lease_ms = 0;
  store::clock::time_point deadline;
};

// What a write lets go of, freed after its locks are released: a 10 MiB value is not free()d while
// other threads wait for the shard.
struct released {
  value_buffer old_value;
  value_buffer::outgrown_bytes outgrown;
  value_buffer old_reply;
};

using key_map = std::unordered_map<std::string, key_entry, string_hash, std::equal_to<>>;

}  // namespace

struct alignas(64) store::key_shard {
  mutable std::mutex mutex;
  key_map values;
  // The nodes of `values` in byte order of keys, for listings: every key of the map is in it.
  ordered_index<key_map::value_type> order;
  std::unordered_map<std::string, lease_entry, string_hash, std::equal_to<>> leases;
  std::size_t bytes = 0;
  // A cut that has not been handed all of this shard yet, and the next entry to hand it (set while
  // the hand-over is under way in pieces: nothing changes the map until the cut has it all, so the
  // iterator stays valid across the releases of the lock).
  cut_receiver* cut = nullptr;
  std::optional<key_map::const_iterator> cut_next;
};

struct alignas(64) store::client_shard {
  mutable std::mutex mutex;
  using client_map = std::unordered_map<std::string, client_entry, string_hash, std::equal_to<>>;
  client_map entries;
  cut_receiver* cut = nullptr;  // as in key_shard
  std::optional<client_map::const_iterator> cut_next;
};

namespace {

// The records of a key shard from `it`, as a visit or a cut sees them, up to `limit` of them; returns
// where it stopped. The caller holds the shard's lock.
template <class KeyShard, class Iterator, class Visit>
Iterator each_key_record(const KeyShard& shard, Iterator it, std::size_t limit, Visit&& visit) {
  for (; it != shard.values.end() && limit > 0; ++it, --limit) {
    const auto& [key, entry] = *it;
    key_record record{key, entry.value.view(), entry.version, 0};
    if (!shard.leases.empty())
      if (auto lease = shard.leases.find(key); lease != shard.leases.end() && lease->second.version == entry.version)
        record.lease_ms = lease->second.lease_ms;
    visit(record);
  }
  return it;
}

// The same for a client shard. A cached reply's bytes are read under the lock of the key shard that
// guards them (client shard, then key shard: the store's order).
template <class ClientShard, class Iterator, class KeyShards, class Visit>
Iterator each_client_record(const ClientShard& shard, Iterator it, std::size_t limit, KeyShards& keys, Visit&& visit) {
  for (; it != shard.entries.end() && limit > 0; ++it, --limit) {
    const auto& [client, entry] = *it;
    if (entry.seq == 0) continue;
    client_record record{client, entry.seq, entry.kind, entry.mismatch, entry.version, {}};
    if (entry.reply_length > 0) {
      std::lock_guard key_lock(keys[entry.reply_shard].mutex);
      record.reply = entry.reply.view().substr(0, entry.reply_length);
      visit(record);
    } else {
      visit(record);
    }
  }
  return it;
}

constexpr std::size_t everything = static_cast<std::size_t>(-1);
// What take_cut hands over per hold of a shard's lock: a read waits at most for this many copies
// (some 0.1 ms), not for a whole shard.
constexpr std::size_t cut_piece = 1024;

}  // namespace

bool store::hand_over_keys(std::size_t index, key_shard& shard, std::size_t limit) const {
  if (shard.cut == nullptr) return true;
  cut_receiver& cut = *shard.cut;
  auto it = shard.cut_next.value_or(shard.values.cbegin());
  it = each_key_record(shard, it, limit, [&](const key_record& r) { cut.take_key(index, r); });
  if (it != shard.values.cend()) {
    shard.cut_next = it;
    return false;
  }
  shard.cut = nullptr;
  shard.cut_next.reset();
  return true;
}

bool store::hand_over_clients(std::size_t index, client_shard& shard, std::size_t limit) const {
  if (shard.cut == nullptr) return true;
  cut_receiver& cut = *shard.cut;
  auto it = shard.cut_next.value_or(shard.entries.cbegin());
  it = each_client_record(shard, it, limit, keys_, [&](const client_record& r) { cut.take_client(index, r); });
  if (it != shard.entries.cend()) {
    shard.cut_next = it;
    return false;
  }
  shard.cut = nullptr;
  shard.cut_next.reset();
  return true;
}

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
  return it == shard.values.end() ? std::string() : std::string(it->second.value.view());
}

versioned_value store::read(std::string_view key) const {
  auto& shard = keys_[shard_of(key)];
  std::lock_guard lock(shard.mutex);
  auto it = shard.values.find(key);
  if (it == shard.values.end()) return {};
  return versioned_value{std::string(it->second.value.view()), it->second.version};
}

write_result store::put(std::string key, std::string value, std::optional<request_id> id, clock::time_point now) {
  return wrap(write_kind::put, std::move(key), std::move(value), id, now);
}

write_result store::append(std::string key, std::string value, std::optional<request_id> id,
                           clock::time_point now) {
  return wrap(write_kind::append, std::move(key), std::move(value), id, now);
}

write_result store::wrap(write_kind kind, std::string key, std::string value, std::optional<request_id> id,
                         clock::time_point now) {
  if (id && (id->client.empty() || id->seq == 0))
    throw std::invalid_argument("a request id needs a non-empty client and a seq of at least 1");
  write_command command;
  command.kind = kind;
  command.key = std::move(key);
  command.value = std::move(value);
  if (id) {
    command.client = std::string(id->client);
    command.seq = id->seq;
  }
  return execute(std::move(command), now);
}

write_result store::execute(write_command command, clock::time_point now) {
  const write_kind kind = command.kind;
  if (!options_.deduplicate) command.client.clear();
  const bool has_id = !command.client.empty();
  if (has_id && command.seq == 0)
    throw std::invalid_argument("a request id needs a non-empty client and a seq of at least 1");
  if (kind == write_kind::expire && (has_id || !command.expected_version))
    throw std::invalid_argument("an expiry names the version it expires and carries no request id");
  if (command.lease_ms && (*command.lease_ms == 0 || kind != write_kind::put))
    throw std::invalid_argument("a lease is at least 1 ms and set by a put");

  std::string& key = command.key;
  const std::string& value = command.value;
  write_result result;
  released garbage;  // declared before the locks, so destroyed after they are released
  const std::size_t key_index = shard_of(key);
  auto& kshard = keys_[key_index];
  // Allocations that don't need a lock are made before taking one.
  value_buffer fresh = kind == write_kind::put ? value_buffer::copy_of(value) : value_buffer();
  value_buffer reply;
  std::size_t reply_length = 0;

  // Sets, renews or drops the key's lease after a write that left it at `version`; under kshard.mutex.
  auto set_lease = [&](std::uint64_t version) {
    if (command.lease_ms && version > 0) {
      auto deadline = now + std::chrono::milliseconds(*command.lease_ms);
      auto [it, inserted] = kshard.leases.try_emplace(key);
      it->second = lease_entry{version, *command.lease_ms, deadline};
      if (inserted) leases_.fetch_add(1, std::memory_order_relaxed);
    } else if (!kshard.leases.empty() && kshard.leases.erase(key) > 0) {
      leases_.fetch_sub(1, std::memory_order_relaxed);
    }
  };

  // Applies the write to the map; the caller holds kshard.mutex.
  auto apply = [&] {
    auto it = kshard.values.find(key);
    const std::uint64_t current = it == kshard.values.end() ? 0 : it->second.version;
    if (command.expected_version && *command.expected_version != current) {
      result.outcome = write_result::status::version_mismatch;
      result.version = current;
      return;
    }
    switch (kind) {
      case write_kind::remove:
      case write_kind::expire:
        if (it != kshard.values.end()) {
          kshard.bytes -= it->first.size() + it->second.value.size();
          garbage.old_value = std::move(it->second.value);
          kshard.order.erase(&*it);
          kshard.values.erase(it);
        }
        set_lease(0);
        result.version = 0;
        return;
      case write_kind::put:
        result.version = current + 1;
        set_lease(result.version);
        if (it == kshard.values.end()) {
          kshard.bytes += key.size() + fresh.size();
          kshard.order.insert(&*kshard.values.emplace(std::move(key), key_entry{std::move(fresh), result.version}).first);
        } else {
          kshard.bytes = kshard.bytes - it->second.value.size() + fresh.size();
          garbage.old_value = std::exchange(it->second.value, std::move(fresh));
          it->second.version = result.version;
        }
        return;
      case write_kind::append:
        break;
    }
    result.version = current + 1;
    set_lease(result.version);
    if (it == kshard.values.end()) {
      kshard.bytes += key.size();
      it = kshard.values.emplace(std::move(key), key_entry{}).first;
      kshard.order.insert(&*it);
    }
    key_entry& entry = it->second;
    entry.version = result.version;
    result.old_value = entry.value.view();
    if (has_id && !result.old_value.empty()) {
      // The block as it is now: appends only extend its value, so its first old_value.size() bytes stay
      // the reply for good, even when the append below moves the value to a bigger buffer.
      reply = entry.value;
      reply_length = result.old_value.size();
    }
    garbage.outgrown = entry.value.append(value);
    kshard.bytes += value.size();
  };

  if (!has_id) {
    std::lock_guard key_lock(kshard.mutex);
    hand_over_keys(key_index, kshard, everything);
    apply();
    return result;
  }

  const std::size_t client_index = shard_of(command.client);
  auto& cshard = clients_[client_index];
  const std::uint32_t seen = seconds_since_start(now);
  std::lock_guard client_lock(cshard.mutex);
  hand_over_clients(client_index, cshard, everything);
  auto [entry_it, inserted] = cshard.entries.try_emplace(command.client);
  client_entry& entry = entry_it->second;
  if (!inserted && command.seq <= entry.seq) {
    if (command.seq < entry.seq) {
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
    result.version = entry.version;
    if (entry.mismatch) {
      result.outcome = write_result::status::version_mismatch;
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
    hand_over_keys(key_index, kshard, everything);
    apply();
  }
  garbage.old_reply = std::exchange(entry.reply, std::move(reply));
  entry.reply_length = reply_length;
  entry.reply_shard = static_cast<std::uint8_t>(key_index);
  entry.seq = command.seq;
  entry.last_seen = seen;
  entry.kind = kind;
  entry.version = result.version;
  entry.mismatch = result.outcome == write_result::status::version_mismatch;
  return result;
}

std::vector<write_command> store::due_leases(clock::time_point now) const {
  std::vector<write_command> due;
  if (leases_.load(std::memory_order_relaxed) == 0) return due;
  for (std::size_t i = 0; i < shard_count; ++i) {
    auto& shard = keys_[i];
    std::lock_guard lock(shard.mutex);
    for (const auto& [key, lease] : shard.leases) {
      if (lease.deadline > now) continue;
      write_command expiry;
      expiry.kind = write_kind::expire;
      expiry.key = key;
      expiry.expected_version = lease.version;
      due.push_back(std::move(expiry));
    }
  }
  return due;
}

std::optional<store::clock::time_point> store::next_lease_deadline() const {
  std::optional<clock::time_point> earliest;
  if (leases_.load(std::memory_order_relaxed) == 0) return earliest;
  for (std::size_t i = 0; i < shard_count; ++i) {
    auto& shard = keys_[i];
    std::lock_guard lock(shard.mutex);
    for (const auto& entry : shard.leases)
      if (!earliest || entry.second.deadline < *earliest) earliest = entry.second.deadline;
  }
  return earliest;
}

namespace {

// One key a listing has read from its shard: its value as a handle to the buffer plus the length it
// had, so the bytes are copied only for the keys that make the page (see list()).
struct listed_key {
  std::string key;
  value_buffer value;
  std::size_t length = 0;
  std::uint64_t version = 0;
  std::size_t shard = 0;
};

// A shard's keys in a listing, read a batch at a time from where the previous batch ended.
struct shard_cursor {
  std::vector<listed_key> batch;
  std::size_t next = 0;
  std::size_t batch_size = 0;
  bool drained = false;  // the shard has no key of the listing past this batch
  bool empty() const noexcept { return next == batch.size(); }
  const std::string& key() const noexcept { return batch[next].key; }
};

bool starts_with(std::string_view text, std::string_view prefix) noexcept {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

list_page store::list(std::string_view prefix, std::optional<std::string_view> after, std::size_t limit) const {
  list_page page;
  if (limit == 0) return page;
  // The keys with the prefix are one run of each shard's order, starting at the prefix itself; a
  // listing after a key inside or past that run starts right after that key instead.
  const bool after_counts = after && !unsigned_less(*after, prefix);
  const std::string first(after_counts ? *after : prefix);

  // Reads the next batch of shard i's keys after `from` (from `first` when starting), under its lock.
  auto read_batch = [&](std::size_t i, shard_cursor& cursor, std::string_view from, bool exclusive) {
    cursor.batch.clear();
    cursor.next = 0;
    auto& shard = keys_[i];
    std::lock_guard lock(shard.mutex);
    shard.order.visit_from(from, exclusive, [&](const key_map::value_type* node) {
      if (!starts_with(node->first, prefix)) return false;
      const key_entry& entry = node->second;
      cursor.batch.push_back(listed_key{node->first, entry.value, entry.value.size(), entry.version, i});
      return cursor.batch.size() < cursor.batch_size;
    });
    cursor.drained = cursor.batch.size() < cursor.batch_size;
  };

  // A k-way merge of the shards' orders. The keys are spread evenly over the shards by their hash, so
  // a first batch of twice a shard's share of the page nearly always suffices; a shard that runs out
  // reads a batch twice as big, after its last key.
  const std::size_t want = limit + 1;  // one more than the page tells whether anything follows
  const std::size_t first_batch = std::min(want, std::max<std::size_t>(8, 2 * want / shard_count + 1));
  std::vector<shard_cursor> cursors(shard_count);
  auto later = [&](std::size_t a, std::size_t b) { return unsigned_less(cursors[b].key(), cursors[a].key()); };
  std::vector<std::size_t> heap;  // shards with a key to take, the smallest key on top
  for (std::size_t i = 0; i < shard_count; ++i) {
    cursors[i].batch_size = first_batch;
    read_batch(i, cursors[i], first, after_counts);
    if (!cursors[i].empty()) heap.push_back(i);
  }
  std::make_heap(heap.begin(), heap.end(), later);
  std::vector<listed_key> chosen;
  chosen.reserve(std::min<std::size_t>(limit, 4096));
  while (!heap.empty() && chosen.size() < limit) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const std::size_t i = heap.back();
    auto& cursor = cursors[i];
    chosen.push_back(std::move(cursor.batch[cursor.next++]));
    if (cursor.empty() && !cursor.drained) {
      cursor.batch_size = std::min(want, cursor.batch_size * 2);
      read_batch(i, cursor, chosen.back().key, true);
    }
    if (cursor.empty()) heap.pop_back();
    else std::push_heap(heap.begin(), heap.end(), later);
  }
  page.more = !heap.empty();

  // The bytes of the chosen values, shard by shard under its lock (a value's buffer may be appended to
  // meanwhile, but only past the length read with its key, which is what the page shows).
  page.items.resize(chosen.size());
  std::vector<std::size_t> by_shard(chosen.size());
  for (std::size_t n = 0; n < chosen.size(); ++n) by_shard[n] = n;
  std::sort(by_shard.begin(), by_shard.end(), [&](std::size_t a, std::size_t b) { return chosen[a].shard < chosen[b].shard; });
  for (std::size_t at = 0; at < by_shard.size();) {
    const std::size_t shard = chosen[by_shard[at]].shard;
    std::lock_guard lock(keys_[shard].mutex);
    for (; at < by_shard.size() && chosen[by_shard[at]].shard == shard; ++at) {
      auto& from = chosen[by_shard[at]];
      auto& item = page.items[by_shard[at]];
      item.value.assign(from.value.view().substr(0, from.length));
      item.version = from.version;
    }
  }
  for (std::size_t n = 0; n < chosen.size(); ++n) page.items[n].key = std::move(chosen[n].key);
  return page;
}

void store::visit_keys(std::size_t shard_index, const std::function<void(const key_record&)>& visit) const {
  auto& shard = keys_.get()[shard_index];
  std::lock_guard lock(shard.mutex);
  each_key_record(shard, shard.values.cbegin(), everything, visit);
}

void store::visit_clients(std::size_t shard_index, const std::function<void(const client_record&)>& visit) const {
  auto& shard = clients_.get()[shard_index];
  std::lock_guard lock(shard.mutex);
  each_client_record(shard, shard.entries.cbegin(), everything, keys_, visit);
}

void store::begin_cut(cut_receiver& receiver) {
  // Checked before anything is marked, so a refused call leaves the running cut as it was; no write
  // executes meanwhile (the caller's promise), so nothing can hand a shard over in between.
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::scoped_lock lock(keys_[i].mutex, clients_[i].mutex);
    if (keys_[i].cut != nullptr || clients_[i].cut != nullptr) throw std::logic_error("a cut of the store is already under way");
  }
  for (std::size_t i = 0; i < shard_count; ++i) {
    {
      std::lock_guard lock(keys_[i].mutex);
      keys_[i].cut = &receiver;
    }
    std::lock_guard lock(clients_[i].mutex);
    clients_[i].cut = &receiver;
  }
}

void store::take_cut(std::size_t shard_index) {
  auto& kshard = keys_.get()[shard_index];
  for (bool done = false; !done;) {
    std::lock_guard lock(kshard.mutex);
    done = hand_over_keys(shard_index, kshard, cut_piece);
  }
  auto& cshard = clients_.get()[shard_index];
  for (bool done = false; !done;) {
    std::lock_guard lock(cshard.mutex);
    done = hand_over_clients(shard_index, cshard, cut_piece);
  }
}

void store::end_cut() {
  for (std::size_t i = 0; i < shard_count; ++i) {
    {
      std::lock_guard lock(keys_[i].mutex);
      keys_[i].cut = nullptr;
      keys_[i].cut_next.reset();
    }
    std::lock_guard lock(clients_[i].mutex);
    clients_[i].cut = nullptr;
    clients_[i].cut_next.reset();
  }
}

void store::load(const key_record& record, clock::time_point now) {
  if (record.version == 0) throw std::invalid_argument("a stored key has a version of at least 1");
  released garbage;
  value_buffer fresh = value_buffer::copy_of(record.value);
  const std::size_t index = shard_of(record.key);
  auto& shard = keys_[index];
  std::lock_guard lock(shard.mutex);
  hand_over_keys(index, shard, everything);
  auto [it, inserted] = shard.values.try_emplace(std::string(record.key));
  if (inserted) shard.order.insert(&*it);
  else shard.bytes -= it->first.size() + it->second.value.size();
  shard.bytes += it->first.size() + fresh.size();
  garbage.old_value = std::exchange(it->second.value, std::move(fresh));
  it->second.version = record.version;
  if (record.lease_ms > 0) {
    auto [lease, added] = shard.leases.try_emplace(std::string(record.key));
    lease->second = lease_entry{record.version, record.lease_ms, now + std::chrono::milliseconds(record.lease_ms)};
    if (added) leases_.fetch_add(1, std::memory_order_relaxed);
  } else if (auto lease = shard.leases.find(record.key); lease != shard.leases.end()) {
    shard.leases.erase(lease);
    leases_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void store::load(const client_record& record, clock::time_point now) {
  if (record.client.empty() || record.seq == 0)
    throw std::invalid_argument("a client entry needs a non-empty client and a seq of at least 1");
  released garbage;
  // The reply gets a block of its own, in key shard 0's care (any shard's mutex will do: no key holds it).
  value_buffer reply = value_buffer::copy_of(record.reply);
  const std::size_t index = shard_of(record.client);
  auto& shard = clients_[index];
  std::lock_guard lock(shard.mutex);
  hand_over_clients(index, shard, everything);
  client_entry& entry = shard.entries[std::string(record.client)];
  {
    std::lock_guard key_lock(keys_[0].mutex);
    garbage.old_reply = std::exchange(entry.reply, std::move(reply));
  }
  entry.reply_length = record.reply.size();
  entry.reply_shard = 0;
  entry.seq = record.seq;
  entry.kind = record.kind;
  entry.mismatch = record.version_mismatch;
  entry.version = record.version;
  entry.last_seen = seconds_since_start(now);
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
      hand_over_clients(i, shard, everything);
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
