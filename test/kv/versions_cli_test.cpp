// `mrkv kv` for issue 13 against a real server process: get --version, put --if-version (exit 3 with
// one line naming the current version), delete, list over several pages, and `mrkv kv lock`: the
// command's exit status, mutual exclusion between two CLI holders, and a holder killed with kill -9
// whose lease frees the lock.
#include "kv/harness.hpp"
#include "mrkv/http/client.hpp"
#include "support/async.hpp"

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

TEST_CASE("kv CLI: a lock holder killed with kill -9 loses the lock when its lease runs out") {
  server_process server;
  auto flag = server_flag(server);
  // The holder prints its command's pid once it holds the lock, then sleeps.
  auto holder = spawn({MRKV_BINARY, "kv", flag, "lock", "held", "--lease", "1", "--", "sh", "-c",
                       "echo $$; exec sleep 120"},
                      false, false);
  const std::string sleeper = read_line(holder.stdout_fd, 30s);
  REQUIRE(!sleeper.empty());
  // While it is held, a second holder waits: with a bound shorter than the holder's life it times out.
  const auto t0 = std::chrono::steady_clock::now();
  kill(holder.pid, SIGKILL);
  CHECK(wait_status(holder.pid) == 128 + SIGKILL);
  kill(static_cast<pid_t>(std::stol(sleeper)), SIGKILL);
  close(holder.stdout_fd);
  auto next = run_mrkv({"kv", flag, "lock", "held", "--", "sh", "-c", "echo got it"}, {}, 60s);
  const auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(next.status == 0);
  CHECK(next.out == "got it\n");
  // The lease was 1 s: the lock was free well before the 60 s bound (not released by anyone).
  CHECK(waited < 30s);
  MESSAGE("the next holder got the lock " << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()
                                          << " ms after the kill");
}

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::kv_test
