// `mrkv kv` for issue 13 against a real server process: get --version, put --if-version (exit 3 with
// one line naming the current version; exit 4 when no answer came, through a proxy that loses them
// all), put --lease, delete, list over several pages, and `mrkv kv lock`: the command's exit status,
// and a holder killed with kill -9 that keeps the lock until its lease (not the kill) frees it.
#include "kv/harness.hpp"
#include "mrkv/http/client.hpp"
#include "support/async.hpp"
#include "support/fault_proxy.hpp"
#include "support/poll_until.hpp"

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>

namespace mrkv::kv_test {
namespace {

using namespace std::chrono_literals;

std::string server_flag(const server_process& server) {
  return "--server=http://127.0.0.1:" + std::to_string(server.port());
}

std::uint64_t version_of(const server_process& server, const std::string& key) {
  boost::asio::io_context context;
  http::client client(context.get_executor(), server.url());
  auto r = test::run_until_done(context, client.post("/v1/get", {{"key", key}}, 10s));
  REQUIRE(r.ok());
  return r.body.at("version").get<std::uint64_t>();
}

// Reads one line from `fd` within `limit`; "" when none came.
std::string read_line(int fd, std::chrono::milliseconds limit) {
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "";
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char c;
    if (read(fd, &c, 1) != 1) return "";
    if (c == '\n') return line;
    line.push_back(c);
  }
}

TEST_SUITE("kv") {

TEST_CASE("kv CLI: get --version, put --if-version, delete and list") {
  server_process server;
  auto flag = server_flag(server);
  CHECK(run_mrkv({"kv", flag, "put", "--if-version", "0", "k", "v"}).status == 0);
  auto refused = run_mrkv({"kv", flag, "put", "--if-version", "0", "k", "w"});
  CHECK(refused.status == 3);
  CHECK(refused.out == "");
  CHECK(refused.err == "mrkv kv: put: version mismatch: 'k' is at version 1\n");
  CHECK(run_mrkv({"kv", flag, "get", "--version", "k"}).out == "v\nversion 1\n");
  CHECK(run_mrkv({"kv", flag, "put", "--if-version", "1", "k", "w"}).status == 0);
  CHECK(run_mrkv({"kv", flag, "delete", "--if-version", "1", "k"}).status == 3);
  CHECK(run_mrkv({"kv", flag, "delete", "k"}).status == 0);
  CHECK(run_mrkv({"kv", flag, "get", "--version", "k"}).out == "\nversion 0\n");
  CHECK(run_mrkv({"kv", flag, "get", "--if-version", "1", "k"}).status == 2);

  // More keys than one page holds (10,000), listed in byte order.
  // Loaded through the HTTP API in one process: 10,050 CLI runs would take minutes.
  boost::asio::io_context context;
  http::client client(context.get_executor(), server.url());
  for (int i = 0; i < 10'050; ++i) {
    auto r = test::run_until_done(context, client.post("/v1/put", {{"key", "p/" + std::to_string(100'000 + i)}, {"value", "x"}}, 10s));
    REQUIRE(r.ok());
  }
  run_mrkv({"kv", flag, "put", "q", "other"});
  auto listing = run_mrkv({"kv", flag, "list", "p/"});
  CHECK(listing.status == 0);
  std::size_t lines = 0;
  std::string previous;
  bool ordered = true;
  for (std::size_t at = 0; at < listing.out.size();) {
    auto end = listing.out.find('\n', at);
    auto item = nlohmann::json::parse(listing.out.substr(at, end - at));
    auto key = item.at("key").get<std::string>();
    if (lines > 0 && !(previous < key)) ordered = false;
    previous = key;
    ++lines;
    at = end + 1;
  }
  CHECK(lines == 10'050);
  CHECK(ordered);
  CHECK(run_mrkv({"kv", flag, "list", "q"}).out == R"({"key":"q","value":"other","version":1})" "\n");
}

TEST_CASE("kv CLI: lock runs the command, exits with its status and frees the lock") {
  server_process server;
  auto flag = server_flag(server);
  auto r = run_mrkv({"kv", flag, "lock", "job", "--", "sh", "-c", "echo inside; exit 7"});
  CHECK(r.status == 7);
  CHECK(r.out == "inside\n");
  CHECK(run_mrkv({"kv", flag, "get", "--version", "job"}).out == "\nversion 0\n");
  CHECK(run_mrkv({"kv", flag, "lock", "job", "--", "/no/such/program"}).status == 127);
  CHECK(run_mrkv({"kv", flag, "lock", "job"}).status == 2);
}

TEST_CASE("kv CLI: a conditional write whose answers are all lost exits 4 (maybe applied), and it was applied") {
  server_process server;
  test::fault_proxy_config config;
  config.upstream_port = server.port();
  config.p_drop_request = 0;
  config.p_drop_reply = 1;  // the server executes every request; no answer gets back
  config.max_delay = 0ms;
  test::fault_proxy proxy(config);
  proxy.start();
  const std::string through = "--server=http://" + proxy.address();
  const std::string maybe = "mrkv kv: put: no answer before the timeout; the write may have been applied\n";
  auto put = run_mrkv({"kv", through, "--timeout", "1", "--attempt-timeout", "0.3", "put", "--if-version", "0", "k", "v"});
  CHECK(put.status == 4);
  CHECK(put.out == "");
  CHECK(put.err == maybe);
  // It was: the key is at version 1 with the value.
  CHECK(run_mrkv({"kv", server_flag(server), "get", "--version", "k"}).out == "v\nversion 1\n");
  auto removed = run_mrkv({"kv", through, "--timeout", "1", "--attempt-timeout", "0.3", "delete", "--if-version", "1", "k"});
  CHECK(removed.status == 4);
  CHECK(removed.err == "mrkv kv: delete: no answer before the timeout; the write may have been applied\n");
  CHECK(version_of(server, "k") == 0);
  // An unconditional write without an answer is a plain failure (exit 1), as in issue 4.
  auto plain = run_mrkv({"kv", through, "--timeout", "1", "--attempt-timeout", "0.3", "put", "k", "w"});
  CHECK(plain.status == 1);
  proxy.stop();
  CHECK(proxy.stats().dropped_replies >= 3);
  // A server that never answers: a conditional put's outcome is just as unknown.
  silent_listener silent;
  auto unknown = run_mrkv({"kv", "--server=http://127.0.0.1:" + std::to_string(silent.port()), "--timeout", "0.5",
                           "put", "--if-version", "0", "k", "v"});
  CHECK(unknown.status == 4);
  CHECK(unknown.err == maybe);
}

TEST_CASE("kv CLI: put --lease makes a key that is there at once and gone once the lease ran out") {
  server_process server;
  auto flag = server_flag(server);
  constexpr auto lease = 2s;
  const auto before = std::chrono::steady_clock::now();
  auto put = run_mrkv({"kv", flag, "put", "--lease", "2", "session", "alive"});
  REQUIRE(put.status == 0);
  CHECK(put.out == "");
  auto present = run_mrkv({"kv", flag, "get", "--version", "session"});
  const auto checked = std::chrono::steady_clock::now() - before;
  CHECK(present.out == "alive\nversion 1\n");
  CHECK(checked < lease);  // else the check above proved nothing about the lease
  const bool gone = test::poll_until([&] { return version_of(server, "session") == 0; }, 30s);
  const auto lived = std::chrono::steady_clock::now() - before;
  CHECK(gone);
  CHECK(lived >= lease);
  CHECK(lived < lease + 10s);
  MESSAGE("a key with a 2 s lease was gone " << std::chrono::duration_cast<std::chrono::milliseconds>(lived).count()
                                             << " ms after its put started");
  // Bad leases are usage errors.
  CHECK(run_mrkv({"kv", flag, "put", "--lease", "0", "k", "v"}).status == 2);
  CHECK(run_mrkv({"kv", flag, "get", "--lease", "1", "k"}).status == 2);
}

TEST_CASE("kv CLI: a lock holder killed with kill -9 keeps the lock until its lease runs out, then loses it") {
  server_process server;
  auto flag = server_flag(server);
  constexpr auto lease = 3s;
  // The holder prints its command's pid once it holds the lock, then sleeps.
  auto holder = spawn({MRKV_BINARY, "kv", flag, "lock", "held", "--lease", "3", "--", "sh", "-c",
                       "echo $$; exec sleep 120"},
                      false, false);
  const std::string sleeper = read_line(holder.stdout_fd, 30s);
  REQUIRE(!sleeper.empty());
  kill(holder.pid, SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  CHECK(wait_status(holder.pid) == 128 + SIGKILL);
  kill(static_cast<pid_t>(std::stol(sleeper)), SIGKILL);
  close(holder.stdout_fd);
  // Right after the kill nothing has freed the lock: the key is still there, and a second holder
  // started now has to wait.
  auto waiter = spawn({MRKV_BINARY, "kv", flag, "lock", "held", "--", "sh", "-c", "echo got it"}, false, false);
  auto seen = run_mrkv({"kv", flag, "get", "--version", "held"});
  const auto seen_after = std::chrono::steady_clock::now() - killed;
  CHECK(seen.status == 0);
  CHECK(seen.out.find("\nversion ") != std::string::npos);
  CHECK(seen.out.find("\nversion 0\n") == std::string::npos);
  CHECK(seen_after < lease / 2);  // looked while the lease certainly still ran
  const std::string got = read_line(waiter.stdout_fd, 60s);
  const auto waited = std::chrono::steady_clock::now() - killed;
  CHECK(got == "got it");
  CHECK(wait_status(waiter.pid) == 0);
  close(waiter.stdout_fd);
  // The holder renewed every third of the lease, last at most that long before the kill: the lease
  // ran out between two thirds of it and all of it after the kill (checked every 25 ms), and the
  // waiter looks again every 50 ms. So it got the lock no sooner than half the lease after the kill
  // (a release by the kill would have been at once), and not much later than the whole lease.
  CHECK(waited >= lease / 2);
  CHECK(waited < lease + 10s);
  MESSAGE("with a 3 s lease, the waiter got the lock " << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()
                                                       << " ms after the holder was killed");
}

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::kv_test
