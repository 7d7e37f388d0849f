// This file contains the key/value state machine: a map from string keys to string values plus the
// duplicate table that makes retried writes execute at most once. It is pure (no I/O, no Asio), so it is
// tested without sockets; the HTTP routes in kv/routes.hpp are a thin layer over it.
//
// Semantics (lab 2, issue 4):
//   get(k)          the value, "" when k was never written. Leaves no trace: no per-client state.
//   put(k, v)       installs or replaces.
//   append(k, v)    appends; returns the value before the append ("" for a missing key).
// A write may carry a request id (client, seq). Per client only the latest seq and the reply to that
// latest write are kept: a repeat of the latest seq gets the first execution's reply without executing
// again, a lower seq is refused (stale) and changes nothing, a higher seq executes and replaces the
// entry. A write without an id executes every time it is called.
//
// Memory: a put's reply is empty, so a put caches nothing. An append's reply is the old value, which is
// always a prefix of the key's value buffer at the time (appends only extend a buffer, a put installs a
// new buffer). So the table keeps a reference to that buffer plus the old length instead of a copy
// (kv/value_buffer.hpp): a cached append reply costs a few bytes, not the size of the value, and an
// append that moves the value to a bigger buffer frees the old bytes at once. A value that a put has
// replaced stays alive (unchanged from then on) while some client's cached reply still points into it,
// i.e. until that client's next write or the expiry of its entry: at most one old value per client, as
// the lab allows one cached old value.
//
// Expiry: a client's entry is dropped once it has been idle (no write with its id) for `client_ttl`;
// the owner calls expire_idle_clients() periodically. A retry that arrives after its client's entry
// expired executes again, so the TTL must be far longer than any clerk keeps retrying one request
// while unable to reach the server (default: one hour).
//
// Thread model: every member function may be called from any number of threads at once. Keys are
// spread over `shard_count` shards by hash, and client entries over as many shards of their own; each
// shard has one std::mutex, held only while the map operation itself runs (never while waiting for
// I/O). A write with an id locks its client's shard and then its key's shard, always in that order,
// and holds both from the duplicate check to the recording of the reply; so concurrent retries of one
// (client, seq) on different threads execute it once, and the replay of an append reply (which reads
// the key's buffer) locks the key's shard under the client's shard too. Every other operation holds
// one lock at a time. Values that are replaced or cut loose are freed after the locks are released.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mrkv::kv {

// Identifies one write of one clerk.
struct request_id {
  std::string_view client;  // 1 to 64 characters (checked by the protocol layer)
  std::uint64_t seq = 0;    // >= 1, raised by one for each new operation of the clerk
};

enum class write_kind : std::uint8_t { put, append };

struct write_result {
  enum class status : std::uint8_t {
    executed,  // applied now
    replayed,  // a repeat of the client's latest seq: not applied again, reply of the first execution
    stale,     // seq lower than the client's latest: nothing changed
    conflict,  // the client's latest seq was a write of the other kind: nothing changed
  };
  status outcome = status::executed;
  std::string old_value;        // append (executed or replayed): the value before the append
  std::uint64_t latest_seq = 0; // stale/conflict: the client's latest seq

  bool answered() const noexcept { return outcome == status::executed || outcome == status::replayed; }
};

struct store_options {
  // A client entry idle this long is dropped by expire_idle_clients().
  std::chrono::seconds client_ttl{3600};
  // Only tests turn this off, to show what the duplicate table prevents: ids are then ignored and every
  // request executes.
  bool deduplicate = true;
};

struct store_stats {
  std::size_t keys = 0;
  std::size_t bytes = 0;    // key and value bytes held by the map
  std::size_t clients = 0;  // entries in the duplicate table
};

// One shard's state copied out for a snapshot (kv/durable.hpp) and loaded back at recovery.
struct client_image {
  std::string client;
  std::uint64_t seq = 0;
  write_kind kind = write_kind::put;
  std::string reply;  // the cached append reply ("" for a put)
};
struct shard_image {
  std::vector<std::pair<std::string, std::string>> values;
  std::vector<client_image> clients;
};

class store {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t shard_count = 64;

  explicit store(store_options options = {});
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  std::string get(std::string_view key) const;

  // `now` stamps the client's entry for expiry. Throws std::invalid_argument for an id with an empty
  // client or seq 0.
  write_result put(std::string key, std::string value, std::optional<request_id> id = std::nullopt,
                   clock::time_point now = clock::now());
  write_result append(std::string key, std::string value, std::optional<request_id> id = std::nullopt,
                      clock::time_point now = clock::now());

  // Drops client entries idle for longer than the TTL at `now` (by at most two seconds more, as times
  // are kept in whole seconds); returns how many.
  std::size_t expire_idle_clients(clock::time_point now = clock::now());

  // Snapshot hooks: copies key shard `shard` and client shard `shard` (each under its own lock), and
  // loads entries into a store at recovery (before it serves; the client's idle time starts at `now`).
  void copy_shard(std::size_t shard, shard_image& out) const;
  void load_value(std::string key, std::string_view value);
  void load_client(const client_image& entry, clock::time_point now = clock::now());

  // A snapshot summed shard by shard (not atomic across shards).
  store_stats stats() const;
  const store_options& options() const noexcept { return options_; }

 private:
  struct key_shard;
  struct client_shard;

  write_result write(write_kind kind, std::string key, std::string value, std::optional<request_id> id,
                     clock::time_point now);
  std::uint32_t seconds_since_start(clock::time_point now) const;

  const store_options options_;
  const clock::time_point start_;
  std::unique_ptr<key_shard[]> keys_;
  std::unique_ptr<client_shard[]> clients_;
};

}  // namespace mrkv::kv
