// The kvserver with --data-dir as a real process (issue 12): kill -9 at random moments under concurrent
// clerks, 20 times in a row on one data dir (every acknowledged write is there after each restart,
// retries of the writes in flight execute at most once, the whole history is linearizable); a disk
// that fills up (503, nothing visible, reads served, writes resume once space is back); the directory
// lock; the start refused on a damaged log; and versions and leases across kill -9 (issue 13). Tests
// that need root (mounting a tmpfs) print "[mrkv-skip]" and are reported by ctest as skipped without it.
#include "kv/harness.hpp"
#include "mrkv/http/client.hpp"
#include "mrkv/kv/clerk.hpp"
#include "mrkv/kv/protocol.hpp"
#include "support/async.hpp"
#include "support/linearizability.hpp"
#include "support/poll_until.hpp"
#include "support/process.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace mrkv::kv_test {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using op_kind = test::kv_operation::kind;

struct scratch_dir {
  fs::path path;
  explicit scratch_dir(const std::string& what) {
    path = fs::temp_directory_path() / ("mrkv-" + what + "-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ec;
    ::umount2((path / "mnt").c_str(), MNT_DETACH);
    fs::remove_all(path, ec);
  }
};

// A kvserver child on a fixed port, restartable on the same data dir.
class durable_server {
 public:
  durable_server(fs::path dir, std::vector<std::string> extra)
      : dir_(std::move(dir)), extra_(std::move(extra)), port_(test::unused_port()) {}

  void start() {
    std::vector<std::string> argv{MRKV_BINARY, "kvserver", "--listen", "127.0.0.1:" + std::to_string(port_),
                                  "--threads", "2", "--data-dir", dir_.string()};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    child_ = std::make_unique<test::process>(test::spawn_options{argv, {}, {}, {}});
    REQUIRE_MESSAGE(child_->wait_for_output("listening on", 60s), child_->output());
  }
  int kill_now() { return child_->kill_now(); }
  void stop() {
    child_->signal(SIGTERM);
    REQUIRE(child_->wait_for(30s) == 0);
  }
  std::string output() const { return child_ ? child_->output() : ""; }
  http::url url() const { return local_url(port_); }
  std::uint16_t port() const { return port_; }

 private:
  fs::path dir_;
  std::vector<std::string> extra_;
  std::uint16_t port_;
  std::unique_ptr<test::process> child_;
};

std::size_t occurrences(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

TEST_SUITE("kv_durable") {

TEST_CASE("crash test: kill -9 twenty times under concurrent clerks loses no acknowledged write") {
  scratch_dir scratch("crash");
  // A small snapshot threshold, so snapshots and segment removal happen between the crashes too.
  durable_server server(scratch.path / "data", {"--fsync", "always", "--snapshot-after", "20000"});
  server.start();

  constexpr int clerks = 4;
  const std::vector<std::string> append_keys{"a0", "a1", "a2"}, put_keys{"p0", "p1"};
  test::history_recorder history;
  std::mutex acked_mutex;
  std::map<std::string, std::vector<std::string>> acked;  // append key -> acknowledged elements
  std::atomic<std::uint64_t> acknowledged{0};
  std::atomic<bool> stop{false};
  std::vector<std::string> failures;

  asio::io_context context;
  std::atomic<int> running{clerks};
  auto clerk_loop = [&](int me, std::uint64_t seed) -> asio::awaitable<void> {
    std::mt19937_64 rng(seed);
    kv::clerk_options o;
    o.backoff_max = 200ms;
    kv::clerk ck(context.get_executor(), server.url(), o);
    for (int n = 0; !stop.load(); ++n) {
      const auto dice = rng() % 4;
      if (dice <= 1) {
        const auto& key = append_keys[rng() % append_keys.size()];
        const std::string element = "<" + std::to_string(me) + "." + std::to_string(n) + ">";
        auto h = history.begin(me, op_kind::append, key, element);
        auto old = co_await ck.append(key, element);
        history.end(h, old);
        std::lock_guard lock(acked_mutex);
        acked[key].push_back(element);
        ++acknowledged;
      } else if (dice == 2) {
        const auto& key = put_keys[rng() % put_keys.size()];
        const std::string value = std::to_string(me) + "." + std::to_string(n);
        auto h = history.begin(me, op_kind::put, key, value);
        co_await ck.put(key, value);
        history.end(h);
        ++acknowledged;
      } else {
        const auto& key = rng() % 2 ? append_keys[rng() % append_keys.size()] : put_keys[rng() % put_keys.size()];
        auto h = history.begin(me, op_kind::get, key);
        auto value = co_await ck.get(key);
        history.end(h, value);
      }
    }
  };
  for (int i = 0; i < clerks; ++i)
    asio::co_spawn(context, clerk_loop(i, std::random_device{}()), [&](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          std::lock_guard lock(acked_mutex);
          failures.push_back(std::string("clerk failed: ") + ex.what());
        }
      }
      --running;
    });
  std::thread clerk_thread([&] { context.run(); });

  std::mt19937_64 rng(std::random_device{}());
  std::uint64_t checked = 0, lost = 0, doubled = 0;
  asio::io_context check_context;
  for (int crash = 0; crash < 20; ++crash) {
    // The random moment of the crash, while the clerks run flat out.
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 400));
    server.kill_now();
    std::map<std::string, std::vector<std::string>> before;
    {
      std::lock_guard lock(acked_mutex);
      before = acked;  // acknowledged by the server that is now dead
    }
    server.start();
    const bool cut = server.output().find("log tail cut") != std::string::npos;
    auto verify = [&]() -> asio::awaitable<void> {
      kv::clerk checker(check_context.get_executor(), server.url());
      for (const auto& key : append_keys) {
        auto h = history.begin(clerks, op_kind::get, key);
        auto value = co_await checker.get(key);
        history.end(h, value);
        for (const auto& element : before[key]) {
          ++checked;
          const auto n = occurrences(value, element);
          if (n == 0) ++lost;
          if (n > 1) ++doubled;
        }
      }
    };
    test::run_until_done(check_context, verify(), 60s);
    MESSAGE("crash " << crash + 1 << ": " << acknowledged.load() << " writes acknowledged so far"
                     << std::string(cut ? ", torn tail cut at restart" : ""));
  }
  stop = true;
  clerk_thread.join();
  CHECK(running.load() == 0);
  for (const auto& f : failures) FAIL_CHECK(f);

  // At most once: no element appears twice in the final values, even those retried across a crash.
  std::string finals;
  auto final_read = [&]() -> asio::awaitable<void> {
    kv::clerk checker(check_context.get_executor(), server.url());
    for (const auto& key : append_keys) {
      auto value = co_await checker.get(key);
      std::lock_guard lock(acked_mutex);
      for (const auto& element : acked[key]) {
        const auto n = occurrences(value, element);
        if (n == 0) ++lost;
        if (n > 1) ++doubled;
      }
    }
  };
  test::run_until_done(check_context, final_read(), 60s);
  server.stop();
  MESSAGE("fsync always, 20 kill -9: " << acknowledged.load() << " writes acknowledged, " << checked
                                       << " acknowledged appends checked after restarts, " << lost << " lost, "
                                       << doubled << " executed twice");
  CHECK(acknowledged.load() > 100);
  CHECK(lost == 0);
  CHECK(doubled == 0);
  auto ops = history.operations();
  auto verdict = test::check_linearizable(ops, 60s);
  MESSAGE("linearizability: " << test::to_string(verdict.result) << " for " << ops.size() << " operations");
  CHECK_MESSAGE(!verdict.illegal(), "not linearizable: key '" << verdict.key << "': " << verdict.description);
}

// One request without the clerk's retries: the test must see the 503 itself.
struct once {
  unsigned status = 0;
  std::string body;
};

once post_once(asio::io_context& context, const http::url& url, const std::string& target, const std::string& body) {
  auto call = [&]() -> asio::awaitable<once> {
    http::client c(context.get_executor(), url);
    auto r = co_await c.call_raw(http::verb::post, target, body, 10s);
    co_return once{r.status, r.body};
  };
  return test::run_until_done(context, call(), 30s);
}

// The value of a get reply; "<unparsable>" when it is not one.
std::string value_of(const once& r) {
  auto doc = nlohmann::json::parse(r.body, nullptr, false);
  if (!doc.is_object() || !doc.contains("value") || !doc["value"].is_string()) return "<unparsable>";
  return doc["value"].get<std::string>();
}

TEST_CASE("disk full: writes get 503 and are not applied, reads go on, writes resume once space is back") {
  scratch_dir scratch("diskfull");
  const auto mnt = scratch.path / "mnt";
  fs::create_directories(mnt);
  if (::geteuid() != 0 || ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m") != 0) {
    MESSAGE("[mrkv-skip] needs root to mount a small tmpfs: " << std::strerror(errno));
    return;
  }
  // Room held back, freed later to show that writes come back without a restart.
  {
    std::ofstream filler(mnt / "filler", std::ios::binary);
    std::string mib(1 << 20, 'f');
    filler.write(mib.data(), static_cast<std::streamsize>(mib.size()));
  }
  durable_server server(mnt / "data", {"--fsync", "always", "--snapshot-after", std::to_string(std::uint64_t{1} << 30)});
  server.start();
  asio::io_context context;
  const std::string value(100'000, 'v');
  int written = 0;
  once refused;
  for (int i = 0; i < 100; ++i) {
    auto r = post_once(context, server.url(), "/v1/put",
                       kv::write_request_body("k" + std::to_string(i), value, "filler", static_cast<std::uint64_t>(i + 1)));
    if (r.status != 200) {
      refused = r;
      break;
    }
    ++written;
  }
  MESSAGE(written << " puts of 100 kB fit before the disk was full");
  REQUIRE(refused.status == 503);
  CHECK(refused.body.find("\"error\"") != std::string::npos);
  CHECK(written >= 5);
  // The refused write is not visible; earlier ones are, and reads are served.
  auto missing = post_once(context, server.url(), "/v1/get", kv::get_request_body("k" + std::to_string(written)));
  CHECK(missing.status == 200);
  CHECK(value_of(missing) == "");
  auto first = post_once(context, server.url(), "/v1/get", kv::get_request_body("k0"));
  CHECK(value_of(first) == value);
  // A retry of the refused write is refused again (same seq: it never executed, so it is not a replay).
  auto again = post_once(context, server.url(), "/v1/put",
                         kv::write_request_body("k" + std::to_string(written), value, "filler",
                                                static_cast<std::uint64_t>(written + 1)));
  CHECK(again.status == 503);

  fs::remove(mnt / "filler");
  auto resumed = post_once(context, server.url(), "/v1/put",
                           kv::write_request_body("k" + std::to_string(written), value, "filler",
                                                  static_cast<std::uint64_t>(written + 1)));
  CHECK(resumed.status == 200);
  auto metrics = test::run_until_done(context, [&]() -> asio::awaitable<std::string> {
    http::client c(context.get_executor(), server.url());
    auto r = co_await c.call_raw(http::verb::get, "/metrics", "", 10s);
    co_return r.body;
  }(), 30s);
  CHECK(metrics.find("mrkv_wal_write_failures_total{mode=\"kvserver\"} 0") == std::string::npos);

  // Everything acknowledged survives a restart; the refused-then-resumed write exactly once.
  server.kill_now();
  server.start();
  for (int i = 0; i <= written; ++i) {
    auto r = post_once(context, server.url(), "/v1/get", kv::get_request_body("k" + std::to_string(i)));
    CAPTURE(i);
    CHECK(r.status == 200);
    CHECK(value_of(r) == value);
  }
  server.stop();
}

// A key's value and version as a get answers them.
std::pair<std::string, std::uint64_t> versioned_get(asio::io_context& context, const http::url& url, const std::string& key) {
  auto r = post_once(context, url, "/v1/get", kv::get_request_body(key));
  auto doc = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status != 200 || !doc.is_object() || !doc.contains("version")) return {"<no answer>", 0};
  return {value_of(r), doc["version"].get<std::uint64_t>()};
}

bool has_snapshot(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    if (name.starts_with("snap-") && name.ends_with(".snap")) return true;
  }
  return false;
}

// Versions and leases (issue 13) across kill -9: every key comes back at its version, conditional
// writes go on from there, a lease runs again for its full length from the restart, a key whose lease
// ran out before the crash stays gone, and a key made permanent again stays.
void versions_and_leases_across_kill_9(const std::string& what, std::vector<std::string> flags, bool snapshot) {
  scratch_dir scratch(what);
  const auto data = scratch.path / "data";
  durable_server server(data, std::move(flags));
  server.start();
  asio::io_context context;
  constexpr auto lease = 3s;
  auto write_all = [&]() -> asio::awaitable<void> {
    kv::clerk ck(context.get_executor(), server.url());
    for (int i = 0; i < 3; ++i) co_await ck.put("counted", "v" + std::to_string(i));
    CHECK((co_await ck.put("cas", "a", std::uint64_t{0})).version == 1);
    CHECK((co_await ck.put("cas", "b", std::uint64_t{1})).version == 2);
    co_await ck.append("appended", "x");
    co_await ck.append("appended", "y");
    co_await ck.put("deleted", "d");
    CHECK((co_await ck.remove("deleted")).ok());
    kv::write_options leased;
    leased.lease = lease;
    CHECK((co_await ck.put("leased", "l", leased)).version == 1);
    kv::write_options brief;
    brief.lease = 100ms;
    CHECK((co_await ck.put("expired", "e", brief)).version == 1);
    // A lease shorter than "leased"'s, then a write without one: were it to come back, it would run out
    // before "leased" does.
    kv::write_options shorter;
    shorter.lease = 1s;
    CHECK((co_await ck.put("made-permanent", "p", shorter)).version == 1);
    co_await ck.put("made-permanent", "p2");
    if (!snapshot) co_return;
    // Past --snapshot-after, so that the restart loads a snapshot holding all of the above.
    for (int i = 0; i < 100 && !has_snapshot(data); ++i) co_await ck.put("filler" + std::to_string(i), std::string(100, 'f'));
  };
  test::run_until_done(context, write_all(), 60s);
  // The brief lease ran out before the crash; its expiry is a logged write like any other.
  CHECK(test::poll_until([&] { return versioned_get(context, server.url(), "expired").second == 0; }, 20s));
  if (snapshot) REQUIRE(test::poll_until([&] { return has_snapshot(data); }, 30s));

  server.kill_now();
  const auto restarted = std::chrono::steady_clock::now();
  server.start();
  const auto url = server.url();
  CHECK(versioned_get(context, url, "counted") == std::pair<std::string, std::uint64_t>{"v2", 3});
  CHECK(versioned_get(context, url, "cas") == std::pair<std::string, std::uint64_t>{"b", 2});
  CHECK(versioned_get(context, url, "appended") == std::pair<std::string, std::uint64_t>{"xy", 2});
  CHECK(versioned_get(context, url, "deleted") == std::pair<std::string, std::uint64_t>{"", 0});
  CHECK(versioned_get(context, url, "expired") == std::pair<std::string, std::uint64_t>{"", 0});
  CHECK(versioned_get(context, url, "leased") == std::pair<std::string, std::uint64_t>{"l", 1});
  CHECK(versioned_get(context, url, "made-permanent") == std::pair<std::string, std::uint64_t>{"p2", 2});
  auto go_on = [&]() -> asio::awaitable<void> {
    kv::clerk ck(context.get_executor(), url);
    auto next = co_await ck.put("cas", "c", std::uint64_t{2});
    CHECK(next.ok());
    CHECK(next.version == 3);
    auto stale = co_await ck.put("cas", "d", std::uint64_t{0});
    CHECK(stale.result == kv::write_outcome::status::version_mismatch);
    CHECK(stale.version == 3);
  };
  test::run_until_done(context, go_on(), 60s);
  // The lease runs again for its full length, counted from the recovery (after `restarted`).
  CHECK(test::poll_until([&] { return versioned_get(context, url, "leased").second == 0; }, 30s));
  const auto lived = std::chrono::steady_clock::now() - restarted;
  CHECK(lived >= lease);
  CHECK(lived < lease + 15s);
  MESSAGE(what << ": a 3 s lease ran out " << std::chrono::duration_cast<std::chrono::milliseconds>(lived).count()
               << " ms after the restart began");
  CHECK(versioned_get(context, url, "made-permanent") == std::pair<std::string, std::uint64_t>{"p2", 2});

  // Once more: the expiry after the restart was logged too.
  server.kill_now();
  server.start();
  CHECK(versioned_get(context, url, "leased") == std::pair<std::string, std::uint64_t>{"", 0});
  CHECK(versioned_get(context, url, "cas") == std::pair<std::string, std::uint64_t>{"c", 3});
  CHECK(versioned_get(context, url, "made-permanent") == std::pair<std::string, std::uint64_t>{"p2", 2});
  server.stop();
}

TEST_CASE("versions and leases survive kill -9: recovered from the log") {
  versions_and_leases_across_kill_9("versions-log", {"--fsync", "always"}, false);
}

TEST_CASE("versions and leases survive kill -9: recovered from a snapshot and the log after it") {
  versions_and_leases_across_kill_9("versions-snap", {"--fsync", "always", "--snapshot-after", "4096"}, true);
}

TEST_CASE("data dir: a second server is refused naming the holder; a damaged log stops the start") {
  scratch_dir scratch("datadir");
  const auto data = scratch.path / "data";
  durable_server first(data, {});
  first.start();
  asio::io_context context;
  CHECK(post_once(context, first.url(), "/v1/put", kv::write_request_body("k", "v1", "c", 1)).status == 200);
  CHECK(post_once(context, first.url(), "/v1/put", kv::write_request_body("k", "v2", "c", 2)).status == 200);
  CHECK(post_once(context, first.url(), "/v1/put", kv::write_request_body("k", "v3", "c", 3)).status == 200);
  auto second = run_mrkv({"kvserver", "--listen", "127.0.0.1:0", "--data-dir", data.string()});
  CHECK(second.status == 1);
  CHECK_MESSAGE(second.err.find("in use by another kvserver") != std::string::npos, second.err);
  first.kill_now();

  // A flipped byte in the first record (not the last): the start stops, naming the file and offset.
  fs::path segment;
  for (const auto& e : fs::directory_iterator(data))
    if (e.path().filename().string().starts_with("wal-")) segment = e.path();
  REQUIRE(!segment.empty());
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20 + 8 + 8 + 3);
    f.put('\x7f');
  }
  auto damaged = run_mrkv({"kvserver", "--listen", "127.0.0.1:0", "--data-dir", data.string()});
  CHECK(damaged.status == 1);
  CHECK_MESSAGE(damaged.err.find(segment.filename().string() + " is damaged at offset 20") != std::string::npos, damaged.err);
}

}  // TEST_SUITE
}  // namespace
}  // namespace mrkv::kv_test
