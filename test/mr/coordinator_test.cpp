// The coordinator over real sockets, in-process: the protocol, the long poll, bad input, finishing.
#include "mrkv/http/client.hpp"
#include "mrkv/http/server.hpp"
#include "mrkv/mr/coordinator.hpp"
#include "mrkv/mr/protocol.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <future>
#include <thread>

namespace {

namespace asio = boost::asio;
using namespace mrkv;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// A coordinator on its own one-thread server, as `mrkv coordinator` runs it.
class running_coordinator {
 public:
  explicit running_coordinator(mr::coordinator_config config)
      : coordinator_(std::move(config)), server_(server_config(), "coordinator", coordinator_.routes()) {
    coordinator_.attach(server_.main_context().get_executor(), [this] {
      finished_ = true;
      server_.stop();
    });
    port_ = server_.start().port();
  }

  std::uint16_t port() const { return port_; }
  bool finished() const { return finished_.load(); }
  void wait() { server_.wait(); }

  // One call on a client of its own (calls may run on several threads at once).
  http::call_result call(http::verb method, std::string target, std::string body = {},
                         std::chrono::milliseconds timeout = 10s) const {
    asio::io_context context;
    http::client client(context.get_executor(), http::url{"http", {"127.0.0.1", port_}, ""});
    auto result = asio::co_spawn(context, client.call(method, std::move(target), std::move(body), timeout),
                                 asio::use_future);
    context.run();
    return result.get();
  }
  http::call_result next(const std::string& worker, int wait_ms = 0) const {
    return call(http::verb::post, mr::protocol::next_path,
                nlohmann::json{{"worker", worker}, {"host", "test"}, {"wait_ms", wait_ms}}.dump());
  }
  http::call_result done(const std::string& worker, const char* kind, int task, int attempt) const {
    return call(http::verb::post, mr::protocol::done_path,
                nlohmann::json{{"worker", worker}, {"kind", kind}, {"task", task}, {"attempt", attempt}}.dump());
  }
  nlohmann::json job() const {
    auto r = call(http::verb::get, mr::protocol::job_path);
    REQUIRE(r.ok());
    return r.body;
  }

 private:
  static http::server_config server_config() {
    http::server_config c;
    c.port = 0;
    c.threads = 1;
    return c;
  }

  mr::coordinator coordinator_;
  http::server server_;
  std::uint16_t port_ = 0;
  std::atomic<bool> finished_{false};
};

mr::coordinator_config job(int n_map, int n_reduce, std::chrono::milliseconds task_timeout = 10s) {
  mr::coordinator_config c;
  for (int i = 0; i < n_map; ++i) c.table.inputs.push_back("../in-" + std::to_string(i) + ".txt");
  c.table.n_reduce = n_reduce;
  c.table.task_timeout = task_timeout;
  c.table.backup.min_age = task_timeout * 6 / 10;
  c.exit_grace = 5s;
  return c;
}

double seconds_since(steady::time_point start) { return std::chrono::duration<double>(steady::now() - start).count(); }

}  // namespace

TEST_SUITE("mr_coordinator") {

TEST_CASE("coordinator: hands out maps then reduces - reports move the job - GET /v1/job shows it") {
  running_coordinator c(job(2, 1));
  auto first = c.next("w1");
  REQUIRE(first.ok());
  CHECK(first.body["action"] == "map");
  CHECK(first.body["task"] == 0);
  CHECK(first.body["attempt"] == 1);
  CHECK(first.body["input"] == "../in-0.txt");
  CHECK(first.body["n_reduce"] == 1);
  auto second = c.next("w2");
  REQUIRE(second.ok());
  CHECK(second.body["task"] == 1);
  auto nothing = c.next("w3", 100);
  REQUIRE(nothing.ok());
  CHECK(nothing.body["action"] == "wait");

  auto status = c.job();
  CHECK(status["phase"] == "map");
  CHECK(status["map"]["running"] == 2);
  CHECK(status["map"]["total"] == 2);
  CHECK(status["reduce"]["idle"] == 1);
  CHECK(status["workers"].size() == 3);
  CHECK(status["workers"][0]["id"] == "w1");
  CHECK(status["workers"][0]["host"] == "test");
  CHECK(status["workers"][0].contains("last_contact"));
  CHECK(status["elapsed_seconds"].is_number());

  auto d = c.done("w1", "map", 0, 1);
  REQUIRE(d.ok());
  CHECK(d.body["result"] == "completed");
  REQUIRE(c.done("w2", "map", 1, 1).ok());
  CHECK(c.job()["phase"] == "reduce");
  auto reduce = c.next("w3");
  REQUIRE(reduce.ok());
  CHECK(reduce.body["action"] == "reduce");
  CHECK(reduce.body["task"] == 0);
  CHECK(reduce.body["n_map"] == 2);
  REQUIRE(c.done("w3", "reduce", 0, 1).ok());
  CHECK(c.job()["phase"] == "done");
  CHECK(c.next("w1").body["action"] == "exit");
  CHECK(c.next("w2").body["action"] == "exit");
  CHECK_FALSE(c.finished());  // w3 has not been told yet
  CHECK(c.next("w3").body["action"] == "exit");
  c.wait();  // every worker told: the coordinator finishes at once, not after the 5 s grace
  CHECK(c.finished());
}

TEST_CASE("coordinator: bad input gets 4xx and changes nothing") {
  running_coordinator c(job(2, 2));
  REQUIRE(c.next("w1").ok());  // map 0, attempt 1
  const auto before = c.job();

  auto expect = [&](const http::call_result& r, unsigned status) {
    REQUIRE_FALSE(r.ok());
    CHECK(r.error->what == http::call_error::kind::rejected);
    CHECK(r.status == status);
  };
  expect(c.done("w1", "map", 9, 1), 404);        // unknown task
  expect(c.done("w1", "reduce", 2, 1), 404);     // unknown reduce task
  expect(c.done("w1", "map", -1, 1), 404);
  expect(c.done("w1", "map", 1, 1), 409);        // never handed out
  expect(c.done("w1", "map", 0, 2), 409);        // no such attempt
  expect(c.done("w1", "reduce", 0, 1), 409);     // reduces not handed out yet
  expect(c.done("w1", "shuffle", 0, 1), 400);    // no such kind
  expect(c.call(http::verb::post, mr::protocol::done_path, "{\"worker\": \"w1\", \"kind\": \"map\""), 400);
  expect(c.call(http::verb::post, mr::protocol::done_path, "[1, 2]"), 400);
  expect(c.call(http::verb::post, mr::protocol::done_path,
                R"({"worker": "w1", "kind": "map", "task": "0", "attempt": 1})"), 400);
  expect(c.call(http::verb::post, mr::protocol::done_path,
                R"({"worker": "w1", "kind": "map", "task": 0, "attempt": 1, "extra": true})"), 400);
  expect(c.call(http::verb::post, mr::protocol::next_path, "not json"), 400);
  expect(c.call(http::verb::post, mr::protocol::next_path, R"({"host": "h"})"), 400);
  expect(c.call(http::verb::post, mr::protocol::next_path, R"({"worker": "has space"})"), 400);
  expect(c.call(http::verb::get, mr::protocol::next_path), 405);

  auto after = c.job();
  CHECK(after["phase"] == before["phase"]);
  CHECK(after["map"] == before["map"]);
  CHECK(after["reduce"] == before["reduce"]);
  CHECK(after["stats"] == before["stats"]);
  CHECK(after["workers"].size() == before["workers"].size());
  // And the real report still works.
  auto ok = c.done("w1", "map", 0, 1);
  REQUIRE(ok.ok());
  CHECK(ok.body["result"] == "completed");
}

TEST_CASE("coordinator: a long poll answers as soon as a report frees work") {
  running_coordinator c(job(1, 1));
  REQUIRE(c.next("w1").body["action"] == "map");
  const auto start = steady::now();
  auto waiting = std::async(std::launch::async, [&] { return c.next("w2", 8000); });
  // Report once the poll is parked (w2 then shows in the worker list).
  const auto deadline = steady::now() + 5s;
  while (c.job()["workers"].size() < 2 && steady::now() < deadline) std::this_thread::sleep_for(10ms);
  REQUIRE(c.done("w1", "map", 0, 1).ok());
  auto answer = waiting.get();
  REQUIRE(answer.ok());
  CHECK(answer.body["action"] == "reduce");
  CHECK(seconds_since(start) < 4.0);
}

TEST_CASE("coordinator: a long poll without news answers wait after the time asked for") {
  running_coordinator c(job(1, 1));
  REQUIRE(c.next("w1").ok());
  const auto start = steady::now();
  auto answer = c.next("w2", 300);
  const double took = seconds_since(start);
  REQUIRE(answer.ok());
  CHECK(answer.body["action"] == "wait");
  CHECK(took >= 0.29);
  CHECK(took < 3.0);
}

TEST_CASE("coordinator: a parked long poll gets a task the moment it times out - the late report is harmless") {
  running_coordinator c(job(1, 1, 500ms));
  auto first = c.next("w1");
  REQUIRE(first.body["action"] == "map");
  const auto start = steady::now();
  auto second = c.next("w2", 5000);
  const double took = seconds_since(start);
  REQUIRE(second.ok());
  CHECK(second.body["action"] == "map");
  CHECK(second.body["task"] == 0);
  CHECK(second.body["attempt"] == 2);
  CHECK(took >= 0.4);
  CHECK(took < 3.0);
  auto status = c.job();
  CHECK(status["stats"]["reassignments"] == 1);
  // The worker taken for dead was only slow: its report wins, the retry's is ignored.
  CHECK(c.done("w1", "map", 0, 1).body["result"] == "completed");
  CHECK(c.done("w2", "map", 0, 2).body["result"] == "already_done");
  status = c.job();
  CHECK(status["phase"] == "reduce");
  CHECK(status["map"]["done"] == 1);
  CHECK(status["stats"]["late_reports"] == 1);
}

TEST_CASE("coordinator: finishes after the grace period when a worker it knows never comes back") {
  auto config = job(1, 1);
  config.exit_grace = 300ms;
  running_coordinator c(config);
  REQUIRE(c.next("w1").ok());
  REQUIRE(c.next("ghost", 0).ok());  // seen once, then gone
  REQUIRE(c.done("w1", "map", 0, 1).ok());
  REQUIRE(c.next("w1").body["action"] == "reduce");
  REQUIRE(c.done("w1", "reduce", 0, 1).ok());
  const auto start = steady::now();
  CHECK(c.next("w1").body["action"] == "exit");
  c.wait();
  CHECK(c.finished());
  CHECK(seconds_since(start) < 3.0);
}

TEST_CASE("coordinator: failed attempts show in /v1/job - the 4th fails the job - counters sum the winners only") {
  running_coordinator c(job(2, 1));
  auto fail = [&](const std::string& worker, int task, int attempt, const std::string& error) {
    return c.call(http::verb::post, mr::protocol::failed_path,
                  nlohmann::json{{"worker", worker}, {"kind", "map"}, {"task", task}, {"attempt", attempt}, {"error", error}}
                      .dump());
  };
  auto order = c.next("w1");  // map 0
  REQUIRE(order.ok());
  REQUIRE(order.body["task"] == 0);
  CHECK(order.body["timeout_ms"] == 10'000);
  // Bad failure reports: 4xx, nothing changes.
  CHECK(fail("w1", 9, 1, "x").status == 404);
  CHECK(fail("w1", 1, 1, "x").status == 409);
  CHECK(fail("w1", 0, 1, "").status == 400);
  CHECK(c.call(http::verb::post, mr::protocol::failed_path, R"({"worker": "w1", "kind": "map", "task": 0, "attempt": 1})")
            .status == 400);
  CHECK(c.job()["task_errors"].empty());

  auto r = fail("w1", 0, 1, "cannot open ../in-0.txt");
  REQUIRE(r.ok());
  CHECK(r.body["result"] == "recorded");
  auto status = c.job();
  REQUIRE(status["task_errors"].size() == 1);
  CHECK(status["task_errors"][0]["last_error"] == "cannot open ../in-0.txt");
  CHECK(status["task_errors"][0]["failed_attempts"] == 1);
  CHECK(status["map"]["idle"] == 2);
  CHECK(status["phase"] == "map");

  // Map 1 is done by two attempts (a backup race, as far as the table knows): only the first counts.
  auto one = c.next("w2");
  REQUIRE(one.body["task"] == 1);
  auto report = [&](const std::string& worker, int task, int attempt, int lines) {
    return c.call(http::verb::post, mr::protocol::done_path,
                  nlohmann::json{{"worker", worker}, {"kind", "map"}, {"task", task}, {"attempt", attempt},
                                 {"counters", {{"app", {{"lines", lines}}}}}}
                      .dump());
  };
  REQUIRE(report("w2", 1, 1, 7).ok());
  CHECK(report("w2", 1, 1, 100).body["result"] == "already_done");
  CHECK(c.job()["counters"]["app"]["lines"] == 7);

  // Three more failed attempts of map 0 fail the job.
  for (int attempt = 2; attempt <= 4; ++attempt) {
    auto again = c.next("w1");
    REQUIRE(again.ok());
    REQUIRE(again.body["task"] == 0);
    REQUIRE(again.body["attempt"] == attempt);
    r = fail("w1", 0, attempt, "failure " + std::to_string(attempt));
    REQUIRE(r.ok());
    CHECK(r.body["result"] == (attempt == 4 ? "job_failed" : "recorded"));
  }
  status = c.job();
  CHECK(status["phase"] == "failed");
  CHECK(status["error"] == "map task 0 failed 4 times; last error: failure 4");
  auto leave = c.next("w1");
  REQUIRE(leave.ok());
  CHECK(leave.body["action"] == "exit");
  auto leave2 = c.next("w2");
  REQUIRE(leave2.ok());
  CHECK(leave2.body["action"] == "exit");
  c.wait();
  CHECK(c.finished());
}

}  // TEST_SUITE
