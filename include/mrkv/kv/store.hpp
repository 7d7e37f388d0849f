// This file contains the key/value state machine: a map from string keys to versioned string values
// (with optional leases) plus the duplicate table that makes retried writes execute at most once. It is
// pure (no I/O, no Asio), so it is tested without sockets; the HTTP routes (kv/server.hpp) are a thin
// layer over it.
//
// Semantics (lab 2, issues 4 and 13):
//   get(k)          the value, "" when k is missing. Leaves no trace: no per-client state.
//   put(k, v)       installs or replaces.
//   append(k, v)    appends; returns the value before the append ("" for a missing key).
//   remove(k)       makes k missing again (a missing key is not an error).
// Every key has a version: 0 while it is missing, one more for each executed put or append; a remove
// (or a lease running out) returns it to 0. A write may name the version it expects: it executes only
// if the key's version is exactly that (0: only if missing), and otherwise changes nothing and answers
// version_mismatch with the current version.
//
// Writes: every change goes through execute(write_command, now), which decides everything (duplicate
// table, version condition, lease) from the store's state and the command alone; `now` only stamps
// times (a client's last write, a lease's deadline). So executing the same commands in the same order
// on an empty store rebuilds the same keys, values, versions and duplicate table, which is how a log of
// commands is replayed; leases then run again for their full length from the replay's `now`.
// put()/append() are thin wrappers kept for the issue-4 callers.
//
// A write may carry a request id (client, seq). Per client only the latest seq and the reply to that
// latest write are kept: a repeat of the latest seq gets the first execution's reply (a version
// mismatch included) without executing again, a lower seq is refused (stale) and changes nothing, a
// higher seq executes and replaces the entry. A write without an id executes every time it is called.
//
// Leases: a put with lease_ms makes the key disappear lease_ms after that write unless a later write
// renews it (any put or append without lease_ms makes the key permanent again). The store never drops
// a key by itself: due_leases(now) lists the expiries that are due as write_commands of kind `expire`
// (expected_version = the version the lease was set at), which the owner executes through the same
// write path as client writes; a write in between raises the version, so the expiry then finds a
// mismatch and changes nothing. That keeps expiry linearizable with every other operation and
// loggable like any write.
//
// Memory: a put's reply is its version, so a put caches a number only. An append's reply is the old
// value, which is always a prefix of the key's value buffer at the time (appends only extend a buffer, a
// put installs a new buffer). So the table keeps a reference to that buffer plus the old length instead
// of a copy (kv/value_buffer.hpp): a cached append reply costs a few bytes, not the size of the value,
// and an append that moves the value to a bigger buffer frees the old bytes at once. A value that a put
// has replaced stays alive (unchanged from then on) while some client's cached reply still points into
// it, i.e. until that client's next write or the expiry of its entry: at most one old value per client,
// as the lab allows one cached old value. A key costs its map node (the version sits in the node's
// padding: no growth over issue 4) and its place in the shard's ordered index (see "Listing"); only
// keys with a lease have an entry in a second, per-shard map.
//
// Listing: each key shard keeps its keys in byte order as well (kv/ordered_index.hpp: pointers to the
// map's nodes in sorted blocks, 8 to 11 bytes a key), kept up to date by every write that adds or
// drops a key, under the shard's lock. list() merges the 64 shards' orders: it reads from each shard,
// under its lock, a small batch of keys (with a handle to each value's buffer and its length, not the
// bytes) starting where the page starts, takes the smallest, reads a further batch from a shard whose
// batch ran out, and finally copies the bytes of the values that make the page, one lock per shard. So
// a page costs about its own length plus a batch per shard, whatever the size of the store (under a
// millisecond for 100 keys of a million), and another request waits at its shard's lock at most while
// one batch is read or copied.
// Every item is as it was at one moment during the call (value and version together), and a key
// present for the whole call is listed if it matches; a page is not a snapshot across shards.
//
// Expiry of clients: a client's entry is dropped once it has been idle (no write with its id) for
// `client_ttl`; the owner calls expire_idle_clients() periodically. A retry that arrives after its
// client's entry expired executes again, so the TTL must be far longer than any clerk keeps retrying
// one request while unable to reach the server (default: one hour).
//
// Thread model: every member function may be called from any number of threads at once. Keys are
// spread over `shard_count` shards by hash, and client entries over as many shards of their own; each
// shard has one std::mutex, held only while the map operation itself runs (never while waiting for
// I/O). A write with an id locks its client's shard and then its key's shard, always in that order,
// and holds both from the duplicate check to the recording of the reply; so concurrent retries of one
// (client, seq) on different threads execute it once, and the replay of an append reply (which reads
// the key's buffer) locks the key's shard under the client's shard too. Every other operation holds
// one lock at a time. Values that are replaced or cut loose are freed after the locks are released.
//
// Snapshots (for durability): visit_keys(i, f) and visit_clients(i, f) call f for every record of
// shard i under that shard's lock, and load() puts such records into a store at recovery (before any
// write executes). A visit sees each shard as it is at that moment, not all shards at one instant.
//
// A cut is the whole store at one instant, copied shard by shard while service goes on. begin_cut()
// only marks every shard (O(shard_count)); the caller keeps writes out for that moment alone, and
// that moment is the cut's instant. From then on each shard is handed to the cut_receiver exactly
// once, under that shard's lock, by whoever touches it first: a write (or load, or idle-client expiry)
// about to change a marked shard hands it over before it changes anything, and take_cut(i) hands over
// whatever is still marked. Why every shard is handed over as it was at the instant: a shard's mark is
// set and cleared under its lock, and every change to a shard happens under its lock after checking
// the mark; so until the hand-over nothing has changed the shard since begin_cut(). Why the key shards
// and the client shards agree with each other (exactly-once across a restart): both are as of the same
// instant, so a client entry is in the cut exactly when the write it records is. A client entry's
// cached append reply is read at its hand-over from the key buffer it points into, possibly changed
// since, but only past the reply's length: appends only extend a buffer, so its prefix is the same.
// take_cut hands a shard over in pieces of about a thousand records, releasing the lock in between
// (nothing can change the shard meanwhile: that would first hand over the rest), so a read waits at
// most for one piece; a write to a shard not yet handed over copies what is left of that shard first,
// so it waits at most for one shard's copy (1/shard_count of the store).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mrkv::kv {

// Identifies one write of one clerk.
struct request_id {
  std::string_view client;  // 1 to 64 characters (checked by the protocol layer)
  std::uint64_t seq = 0;    // >= 1, raised by one for each new operation of the clerk
};

// remove: a client's delete. expire: a lease running out (see due_leases); never carries a request id.
enum class write_kind : std::uint8_t { put, append, remove, expire };

// One write, owning its bytes, as it arrives from a client or from the lease timer; what a log records.
struct write_command {
  write_kind kind = write_kind::put;
  std::string key;
  std::string value;   // put and append; empty otherwise
  std::string client;  // empty: no request id
  std::uint64_t seq = 0;  // >= 1 with a client
  // Execute only if the key's version is this (0: only if the key is missing). Required for expire.
  std::optional<std::uint64_t> expected_version;
  // put only: the key disappears this long after the write unless renewed (>= 1).
  std::optional<std::uint32_t> lease_ms;
};

struct write_result {
  enum class status : std::uint8_t {
    executed,  // applied now
    replayed,  // a repeat of the client's latest seq: not applied again, reply of the first execution
    stale,     // seq lower than the client's latest: nothing changed
    conflict,  // the client's latest seq was a write of another kind: nothing changed
    version_mismatch,  // the expected version was not the key's (now, or at the first execution of
                       // this client's seq): nothing changed
  };
  status outcome = status::executed;
  std::string old_value;         // append (executed or replayed): the value before the append
  std::uint64_t latest_seq = 0;  // stale/conflict: the client's latest seq
  // executed/replayed: the key's version after the write (0 after a remove or expire);
  // version_mismatch: the key's version that did not match.
  std::uint64_t version = 0;

  bool answered() const noexcept { return outcome == status::executed || outcome == status::replayed; }
};

// A key as read by get/list.
struct versioned_value {
  std::string value;
  std::uint64_t version = 0;  // 0: missing
};

struct list_item {
  std::string key;
  std::string value;
  std::uint64_t version = 0;
};

struct list_page {
  std::vector<list_item> items;  // in byte order of keys
  bool more = false;             // keys past the last item match too
};

// Snapshot records. The views are valid only during the visitor's call (they point into the store).
struct key_record {
  std::string_view key;
  std::string_view value;
  std::uint64_t version = 0;    // >= 1
  std::uint32_t lease_ms = 0;  // 0: permanent; otherwise the lease's full length (it runs again at load)
};

struct client_record {
  std::string_view client;
  std::uint64_t seq = 0;
  write_kind kind = write_kind::put;  // of the client's latest write (put, append or remove)
  bool version_mismatch = false;      // its reply was a version mismatch
  std::uint64_t version = 0;          // the version in its reply
  std::string_view reply;             // an executed append's old value; empty otherwise
};

// Receives a cut (see "Snapshots" above). Each call is made under shard `shard`'s lock, on whichever
// thread hands it over, so it must be quick, must not call back into the store, and may touch only what
// belongs to that shard (key shard i and client shard i are different shards with different locks).
class cut_receiver {
 public:
  virtual ~cut_receiver() = default;
  virtual void take_key(std::size_t shard, const key_record& record) = 0;
  virtual void take_client(std::size_t shard, const client_record& record) = 0;
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

class store {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t shard_count = 64;

  explicit store(store_options options = {});
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  std::string get(std::string_view key) const;
  versioned_value read(std::string_view key) const;

  // The one write entry point (see the top of this file). Throws std::invalid_argument for a command
  // that breaks the rules of write_command (a client with seq 0, an expire without a version or with a
  // client, a lease of 0 or on anything but a put).
  write_result execute(write_command command, clock::time_point now = clock::now());

  // Issue-4 wrappers around execute(). `now` stamps the client's entry for expiry. Throws
  // std::invalid_argument for an id with an empty client or seq 0.
  write_result put(std::string key, std::string value, std::optional<request_id> id = std::nullopt,
                   clock::time_point now = clock::now());
  write_result append(std::string key, std::string value, std::optional<request_id> id = std::nullopt,
                      clock::time_point now = clock::now());

  // The expiries due at `now`, as commands for execute(): one per leased key whose deadline has passed.
  // Cheap when no key has a lease (one atomic load).
  std::vector<write_command> due_leases(clock::time_point now) const;
  // The earliest lease deadline, if any key has a lease (for a timer).
  std::optional<clock::time_point> next_lease_deadline() const;

  // Up to `limit` keys that start with `prefix` and sort after `after` (bytes compared as unsigned;
  // nullopt: from the first key, "" included), in byte order; see "Listing" above.
  list_page list(std::string_view prefix, std::optional<std::string_view> after, std::size_t limit) const;

  // Drops client entries idle for longer than the TTL at `now` (by at most two seconds more, as times
  // are kept in whole seconds); returns how many.
  std::size_t expire_idle_clients(clock::time_point now = clock::now());

  // Snapshot hooks: call `visit` for every key (client entry) of shard `shard` (< shard_count) while
  // holding that shard's lock, so `visit` must be quick and must not call back into the store.
  void visit_keys(std::size_t shard, const std::function<void(const key_record&)>& visit) const;
  void visit_clients(std::size_t shard, const std::function<void(const client_record&)>& visit) const;
  // A cut into `receiver` (see "Snapshots"): begin_cut marks every shard and returns; no write may
  // execute during the call. Throws std::logic_error if a cut is already under way. `receiver` must
  // stay alive until end_cut() has returned.
  void begin_cut(cut_receiver& receiver);
  // Hands shard `shard` (< shard_count), keys and client entries, to the receiver unless that was done
  // already; afterwards everything the receiver got for that shard may be read without a lock.
  void take_cut(std::size_t shard);
  // Ends the cut: shards not handed over yet never will be. Cheap; call it also to give up a cut.
  void end_cut();

  // Recovery: installs one record as if it had been written at `now` (a lease runs for its full length
  // from `now`; a client's entry counts as seen at `now`). Meant for an empty store before it serves;
  // a record for a key or client already present replaces it.
  void load(const key_record& record, clock::time_point now = clock::now());
  void load(const client_record& record, clock::time_point now = clock::now());

  // A snapshot summed shard by shard (not atomic across shards).
  store_stats stats() const;
  const store_options& options() const noexcept { return options_; }

 private:
  struct key_shard;
  struct client_shard;

  write_result wrap(write_kind kind, std::string key, std::string value, std::optional<request_id> id,
                    clock::time_point now);
  std::uint32_t seconds_since_start(clock::time_point now) const;
  // With the shard's lock held: hands up to `limit` more records to a cut that still waits for the
  // shard; true once the cut has it all (or never wanted it).
  bool hand_over_keys(std::size_t index, key_shard& shard, std::size_t limit) const;
  bool hand_over_clients(std::size_t index, client_shard& shard, std::size_t limit) const;

  const store_options options_;
  const clock::time_point start_;
  std::unique_ptr<key_shard[]> keys_;
  std::unique_ptr<client_shard[]> clients_;
  std::atomic<std::size_t> leases_{0};  // keys with a lease, over all shards
};

}  // namespace mrkv::kv
