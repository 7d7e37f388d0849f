// Snapshots taken while service goes on (issue 12: GET p99 during a snapshot). The store's cut
// (store::begin_cut) is the whole store at one instant although it is copied shard by shard, with
// writes, idle-client expiry and loads running in between; and a durable server whose snapshot is
// held half-written while clerks write to every shard recovers exactly what it acknowledged, keys and
// duplicate table alike. Those two are driven step by step (the snapshot thread is parked at a chosen
// shard and released by the test), not by timing; a third races writers against a cut handed over
// piece by piece, whose outcome must be the same whoever wins each race.
#include "mrkv/kv/durable.hpp"
#include "mrkv/kv/store.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace mrkv::kv {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using status = write_result::status;

// Everything a snapshot holds, comparable.
struct dump {
  std::map<std::string, std::tuple<std::string, std::uint64_t, std::uint32_t>> keys;
  std::map<std::string, std::tuple<std::uint64_t, int, bool, std::uint64_t, std::string>> clients;
  bool operator==(const dump&) const = default;
};

void add(dump& d, const key_record& r) { d.keys[std::string(r.key)] = {std::string(r.value), r.version, r.lease_ms}; }
void add(dump& d, const client_record& r) {
  d.clients[std::string(r.client)] = {r.seq, static_cast<int>(r.kind), r.version_mismatch, r.version, std::string(r.reply)};
}

dump dump_of(const store& s) {
  dump d;
  for (std::size_t i = 0; i < store::shard_count; ++i) {
    s.visit_keys(i, [&](const key_record& r) { add(d, r); });
    s.visit_clients(i, [&](const client_record& r) { add(d, r); });
  }
  return d;
}

// Keeps what a cut hands over, and which shards were handed over; single-threaded use only.
class recorder final : public cut_receiver {
 public:
  dump got;
  std::set<std::size_t> key_shards, client_shards;
  bool twice = false;  // a record handed over a second time
  std::vector<std::string> key_bytes, client_bytes;  // owned copies, to load() later

  void take_key(std::size_t shard, const key_record& r) override {
    key_shards.insert(shard);
    twice |= got.keys.count(std::string(r.key)) > 0;
    add(got, r);
  }
  void take_client(std::size_t shard, const client_record& r) override {
    client_shards.insert(shard);
    twice |= got.clients.count(std::string(r.client)) > 0;
    add(got, r);
  }
};

write_command command(write_kind kind, std::string key, std::string value = {}, std::string client = {},
                      std::uint64_t seq = 0) {
  write_command c;
  c.kind = kind;
  c.key = std::move(key);
  c.value = std::move(value);
  c.client = std::move(client);
  c.seq = seq;
  return c;
}

std::string key_name(int i) { return "k" + std::to_string(i); }
std::string client_name(int i) { return "c" + std::to_string(i); }

struct temp_dir {
  fs::path path;
  temp_dir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("mrkv-snapcut-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)));
    fs::remove_all(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

TEST_SUITE("kv") {

TEST_CASE("snapshot cut: writes, expiry and loads after begin_cut leave every shard as it was at the cut") {
  constexpr int keys = 2000, clients = 1000;
  store s;
  const auto t0 = store::clock::now();
  for (int i = 0; i < keys; ++i) s.put(key_name(i), "v" + std::to_string(i), std::nullopt, t0);
  // Each client's latest write is an append with a cached reply: a prefix of its key's buffer, which
  // later appends extend (and move) before some client shards are handed over.
  for (int c = 0; c < clients; ++c) {
    s.put("r" + std::to_string(c), "old" + std::to_string(c), std::nullopt, t0);
    s.append("r" + std::to_string(c), "+", request_id{client_name(c), 5}, t0);
  }
  s.execute(command(write_kind::put, "leased", "x"), t0);
  const dump before = dump_of(s);
  REQUIRE(before.clients.size() == clients);

  recorder cut;
  s.begin_cut(cut);
  CHECK_THROWS_AS(s.begin_cut(cut), std::logic_error);
  for (std::size_t i = 0; i < store::shard_count / 2; ++i) s.take_cut(i);
  const std::size_t taken = cut.key_shards.size();
  CHECK(taken == store::shard_count / 2);

  // After the cut, in shards already handed over and not yet: every kind of change.
  for (int i = 0; i < keys; ++i) {
    switch (i % 4) {
      case 0: s.put(key_name(i), "new", std::nullopt, t0); break;
      case 1: s.append(key_name(i), "+", std::nullopt, t0); break;
      case 2: s.execute(command(write_kind::remove, key_name(i)), t0); break;
      default: s.append(key_name(i), "!", request_id{client_name(i % clients), 6}, t0); break;
    }
  }
  for (int i = 0; i < 300; ++i) s.put("fresh" + std::to_string(i), "f", std::nullopt, t0);
  for (int c = 0; c < clients; ++c) s.append("r" + std::to_string(c), std::string(100, 'x'), std::nullopt, t0);
  auto leased = command(write_kind::put, "leased", "y");
  leased.lease_ms = 1000;
  s.execute(std::move(leased), t0);
  CHECK(s.expire_idle_clients(t0 + 10h) == clients);  // drops every entry, handed over or not
  for (int c = 0; c < 10; ++c) s.append("r" + std::to_string(c), "z", request_id{client_name(c), 9}, t0 + 10h);
  key_record loaded{"loaded", "l", 3, 0};
  s.load(loaded, t0);
  // Writes handed the other half over: every key shard had a write, so none was left for take_cut.
  CHECK(cut.key_shards.size() == store::shard_count);
  CHECK(cut.client_shards.size() > store::shard_count / 2);

  for (std::size_t i = 0; i < store::shard_count; ++i) s.take_cut(i);
  s.end_cut();
  CHECK_FALSE(cut.twice);
  CHECK(cut.got == before);
  CHECK(dump_of(s) != before);

  // What the cut holds works as a snapshot: loaded into an empty store, a retry of a client's latest
  // write at the cut gets its first reply, and the append is not executed again.
  store copy;
  for (const auto& [key, v] : cut.got.keys) copy.load(key_record{key, std::get<0>(v), std::get<1>(v), std::get<2>(v)}, t0);
  for (const auto& [client, v] : cut.got.clients)
    copy.load(client_record{client, std::get<0>(v), static_cast<write_kind>(std::get<1>(v)), std::get<2>(v), std::get<3>(v),
                            std::get<4>(v)},
              t0);
  CHECK(dump_of(copy) == before);
  auto retry = copy.append("r7", "+", request_id{client_name(7), 5}, t0);
  CHECK(retry.outcome == status::replayed);
  CHECK(retry.old_value == "old7");
  CHECK(copy.get("r7") == "old7+");

  // The cut is over: a new one may start, and sees the store as it is now.
  recorder again;
  s.begin_cut(again);
  for (std::size_t i = 0; i < store::shard_count; ++i) s.take_cut(i);
  s.end_cut();
  CHECK(again.got == dump_of(s));
}

// Thread-safe: the threads handing shards over each call it under a different shard's lock.
class locked_recorder final : public cut_receiver {
 public:
  dump got;
  bool twice = false;
  void take_key(std::size_t, const key_record& r) override {
    std::lock_guard lock(mutex_);
    twice |= got.keys.count(std::string(r.key)) > 0;
    add(got, r);
  }
  void take_client(std::size_t, const client_record& r) override {
    std::lock_guard lock(mutex_);
    twice |= got.clients.count(std::string(r.client)) > 0;
    add(got, r);
  }

 private:
  std::mutex mutex_;
};

TEST_CASE("snapshot cut: writers racing take_cut over shards handed over piece by piece change nothing in the cut") {
  // Over 1024 keys a shard, so take_cut hands each over in pieces and lets writers in between; a writer
  // that gets in finishes the shard's hand-over first. The outcome must not depend on who wins.
  constexpr int keys = 64 * 1500;
  store s;
  for (int i = 0; i < keys; ++i) s.put(key_name(i), "v", std::nullopt);
  for (int c = 0; c < 64; ++c) s.append(key_name(c), "+", request_id{client_name(c), 1});
  const dump before = dump_of(s);

  locked_recorder cut;
  s.begin_cut(cut);
  std::atomic<bool> taken{false};
  std::atomic<int> writes{0};
  auto writer = [&](int from) {
    for (int i = from; !taken.load(); i = (i + 7919) % keys) {
      s.append(key_name(i), "w", request_id{client_name(i % 64), static_cast<std::uint64_t>(2 + writes.fetch_add(1))});
      s.execute(command(write_kind::remove, key_name((i + 1) % keys)));
    }
  };
  std::thread w1(writer, 0), w2(writer, keys / 2);
  for (std::size_t i = 0; i < store::shard_count; ++i) s.take_cut(i);
  taken = true;
  w1.join();
  w2.join();
  s.end_cut();
  CHECK_FALSE(cut.twice);
  CHECK(cut.got == before);
  MESSAGE("writes racing the cut: " << writes.load());
}

// One clerk of the durable test: puts and appends with its id (each retried once, which must be
// answered from the duplicate table), and appends without an id (which a double replay would repeat).
struct clerk_log {
  int id = 0;
  int writes = 0;  // records submitted, retries included
  write_command last;
  write_result last_result;
  std::exception_ptr error;
};

asio::awaitable<void> clerk(durable_write_path* path, clerk_log* log, int first_seq, int count, int keys) {
  try {
    for (int n = 0; n < count; ++n) {
      const auto seq = static_cast<std::uint64_t>(first_seq + n);
      const std::string key = key_name((log->id * 7919 + n * 104729) % keys);
      if (n % 3 == 2) {
        co_await path->execute(command(write_kind::append, key, "-" + std::to_string(log->id)));
        ++log->writes;
        continue;
      }
      auto c = command(n % 3 == 0 ? write_kind::put : write_kind::append, key, std::to_string(seq),
                       client_name(log->id), seq);
      auto first = co_await path->execute(c);
      auto retry = co_await path->execute(c);
      log->writes += 2;
      if (retry.outcome != status::replayed || retry.old_value != first.old_value || retry.version != first.version)
        throw std::runtime_error("a retry was not answered from the duplicate table");
      log->last = c;
      log->last_result = first;
    }
  } catch (...) {
    log->error = std::current_exception();
  }
}

// Runs `clerks` clerks of `count` writes each on two threads of `ioc`, until all are done. The caller's
// `ioc` outlives `path`: the log's thread may still be inside its last post() to it when run() returns.
std::vector<clerk_log> run_clerks(asio::io_context& ioc, durable_write_path& path, int clerks, int first_seq,
                                  int count, int keys) {
  std::vector<clerk_log> logs(static_cast<std::size_t>(clerks));
  ioc.restart();
  for (int i = 0; i < clerks; ++i) {
    logs[static_cast<std::size_t>(i)].id = i;
    asio::co_spawn(ioc, clerk(&path, &logs[static_cast<std::size_t>(i)], first_seq, count, keys),
                   [](std::exception_ptr e) {
                     if (e) std::rethrow_exception(e);
                   });
  }
  std::thread second([&ioc] { ioc.run(); });
  ioc.run();
  second.join();
  for (const auto& log : logs)
    if (log.error) std::rethrow_exception(log.error);
  return logs;
}

TEST_CASE("snapshot cut: a durable server writing to every shard while its snapshot is half written recovers all it acknowledged") {
  constexpr int keys = 1000, clerks = 24;
  temp_dir dir;
  wal_options options;
  options.dir = dir.path;
  options.fsync = fsync_policy::always;
  options.snapshot_after = std::uint64_t{1} << 40;  // only the snapshot the test asks for

  // The snapshot thread parks after writing out half of the shards, until the test lets it go on.
  std::promise<void> parked, go_on;
  auto parked_future = parked.get_future();
  std::shared_future<void> go_on_future = go_on.get_future().share();
  std::atomic<bool> fired{false};
  auto hook = [&](std::size_t shards_written) {
    if (shards_written != store::shard_count / 2 || fired.exchange(true)) return;
    parked.set_value();
    go_on_future.wait_for(30s);  // bounded, so a failed test cannot hang the log's destructor
  };

  asio::io_context clerks_context;  // before the path, so that it outlives the log's threads
  store live;
  dump at_cut, acknowledged;
  std::vector<clerk_log> during;
  int records_after_cut = 0;
  {
    durable_write_path path(live, options, hook);
    run_clerks(clerks_context, path, clerks, 1, 30, keys);  // the state before the snapshot, with client entries
    at_cut = dump_of(live);

    std::thread snapshot([&path] { path.wal().snapshot_now(); });
    struct release {  // lets the snapshot finish and joins it, also when a check below throws
      std::promise<void>& go_on;
      std::thread& snapshot;
      void now() {
        try {
          go_on.set_value();
        } catch (const std::future_error&) {  // already let go
        }
        if (snapshot.joinable()) snapshot.join();
      }
      ~release() { now(); }
    } guard{go_on, snapshot};
    REQUIRE(parked_future.wait_for(30s) == std::future_status::ready);
    // Half the shards are on disk, half not yet copied: these writes reach both kinds of shards, for
    // keys and for client entries.
    during = run_clerks(clerks_context, path, clerks, 100, 30, keys);
    for (const auto& log : during) records_after_cut += log.writes;
    acknowledged = dump_of(live);
    guard.now();
    CHECK(path.wal().stats().snapshots == 1);
    CHECK(acknowledged != at_cut);
  }

  store recovered;
  durable_write_path path(recovered, options);
  const auto stats = path.wal().stats();
  CHECK(dump_of(recovered) == acknowledged);
  // The snapshot holds the state at its cut, not at the end of its writing.
  CHECK(stats.recovered_entries == at_cut.keys.size() + at_cut.clients.size());
  // Exactly the records after the cut were replayed on top of the snapshot: it held none of them.
  CHECK(stats.recovered_records == static_cast<std::uint64_t>(records_after_cut));
  // Every clerk's last write, retried after the restart, is answered as it first was, not executed.
  for (const auto& log : during) {
    auto retry = recovered.execute(log.last);
    CHECK(retry.outcome == status::replayed);
    CHECK(retry.old_value == log.last_result.old_value);
    CHECK(retry.version == log.last_result.version);
  }
}

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::kv
