// The worker loop in-process against an in-process coordinator: a whole job, a coordinator that is not
// there, a coordinator that refuses us, a task that fails. (The lab's tests run real processes; see
// lab_test.cpp. These also run under ThreadSanitizer.)
#include "mrkv/http/server.hpp"
#include "mrkv/mr/application.hpp"
#include "mrkv/mr/coordinator.hpp"
#include "mrkv/mr/sequential.hpp"
#include "mrkv/mr/worker.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <doctest/doctest.h>

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
using namespace mrkv;
using namespace std::chrono_literals;

using scratch_dir = mrkv::test::temp_dir;

std::vector<std::string> sample_inputs() {
  std::vector<std::string> inputs;
  for (const auto& e : fs::directory_iterator(MRKV_SAMPLE_DATA_DIR))
    if (e.path().extension() == ".txt") inputs.push_back(e.path().string());
  std::sort(inputs.begin(), inputs.end());
  return inputs;
}

std::vector<std::string> sorted_lines_of(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> lines;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(prefix, 0) != 0) continue;
    std::ifstream in(e.path());
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

struct in_process_coordinator {
  mr::coordinator coordinator;
  http::server server;
  http::url url;

  in_process_coordinator(mr::coordinator_config config, std::string token = {})
      : coordinator(std::move(config)), server(server_config(std::move(token)), "coordinator", coordinator.routes()) {
    coordinator.attach(server.main_context().get_executor(), [this] { server.stop(); });
    url = http::url{"http", {"127.0.0.1", server.start().port()}, ""};
  }

  static http::server_config server_config(std::string token) {
    http::server_config c;
    c.threads = 1;
    c.auth_token = std::move(token);
    return c;
  }
};

mr::worker_config worker_for(const http::url& url, const fs::path& workdir) {
  mr::worker_config w;
  w.coordinator = url;
  w.workdir = workdir;
  w.poll_wait = 1s;
  w.give_up_after = 2s;
  return w;
}

}  // namespace

TEST_SUITE("mr_worker") {

TEST_CASE("worker: two in-process workers run the wc job to the sequential answer and are told to exit") {
  scratch_dir dir;
  const auto inputs = sample_inputs();
  REQUIRE(inputs.size() == 8);
  {
    auto app = mr::load_application("wc");
    mr::run_sequential(*app, inputs, dir.path() / "expected.txt");
  }
  mr::coordinator_config config;
  config.table.inputs = inputs;
  config.table.n_reduce = 10;
  in_process_coordinator c(config);
  auto run_one = [&] {
    auto app = mr::load_application("wc");
    return mr::run_worker(worker_for(c.url, dir.path()), *app);
  };
  auto first = std::async(std::launch::async, run_one);
  auto second = std::async(std::launch::async, run_one);
  REQUIRE(first.wait_for(60s) == std::future_status::ready);
  REQUIRE(second.wait_for(60s) == std::future_status::ready);
  const auto a = first.get();
  const auto b = second.get();
  CHECK(a.why == mr::worker_summary::ending::told_exit);
  CHECK(b.why == mr::worker_summary::ending::told_exit);
  CHECK(a.tasks_run + b.tasks_run == 18);
  CHECK(a.tasks_failed + b.tasks_failed == 0);
  CHECK(a.worker_id != b.worker_id);
  c.server.wait();
  CHECK(c.coordinator.job_done());
  const auto expected = sorted_lines_of(dir.path(), "expected.txt");
  CHECK(expected.size() == 22107);
  CHECK(sorted_lines_of(dir.path(), "mr-out-") == expected);
}

TEST_CASE("worker: with no coordinator it gives up after the give-up time - as never reached, not a job done") {
  scratch_dir dir;
  auto app = mr::load_application("wc");
  auto config = worker_for(http::url{"http", {"127.0.0.1", test::unused_port()}, ""}, dir.path());
  config.give_up_after = 500ms;
  const auto start = std::chrono::steady_clock::now();
  const auto summary = mr::run_worker(config, *app);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(summary.why == mr::worker_summary::ending::never_reached);
  CHECK(summary.tasks_run == 0);
  CHECK(took >= 0.45);
  CHECK(took < 5.0);
}

TEST_CASE("worker: a coordinator name that does not resolve (yet) is retried until the give-up time") {
  // In a compose file the workers may start before their coordinator's name exists; a person's clerk
  // fails at once on such a name, a worker keeps trying (http::patience::daemon).
  scratch_dir dir;
  auto app = mr::load_application("wc");
  auto config = worker_for(http::url{"http", {"coordinator.invalid", 7700}, ""}, dir.path());
  config.give_up_after = 500ms;
  const auto start = std::chrono::steady_clock::now();
  const auto summary = mr::run_worker(config, *app);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(summary.why == mr::worker_summary::ending::never_reached);
  CHECK(took >= 0.45);
  CHECK(took < 5.0);
}

TEST_CASE("worker: silence counts from the first unanswered call - a hung coordinator costs one call") {
  // A socket that listens and never accepts: the kernel completes the handshake, nobody answers.
  boost::asio::io_context context;
  boost::asio::ip::tcp::acceptor mute(context, {boost::asio::ip::make_address("127.0.0.1"), 0});
  scratch_dir dir;
  auto app = mr::load_application("wc");
  auto config = worker_for(http::url{"http", {"127.0.0.1", mute.local_endpoint().port()}, ""}, dir.path());
  config.poll_wait = 200ms;
  config.call_timeout = 800ms;
  config.give_up_after = 1s;  // one unanswered request for work (poll wait + call timeout) already lasts this long
  const auto start = std::chrono::steady_clock::now();
  const auto summary = mr::run_worker(config, *app);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(summary.why == mr::worker_summary::ending::never_reached);
  CHECK(took >= 0.95);
  CHECK(took < 1.8);  // not a second call's worth on top
}

TEST_CASE("worker: a coordinator that refuses our token ends the worker") {
  scratch_dir dir;
  mr::coordinator_config config;
  config.table.inputs = {"x"};
  in_process_coordinator c(config, "secret");
  auto app = mr::load_application("wc");
  auto w = worker_for(c.url, dir.path());
  w.auth_token = "wrong";
  CHECK(mr::run_worker(w, *app).why == mr::worker_summary::ending::refused);
  w.auth_token = "secret";
  w.give_up_after = 300ms;
  // With the right token it gets the task (whose input doesn't exist) and reports it failed, four
  // times (issue 11: a task that cannot run is not retried forever); the job has then failed and the
  // worker is told to exit.
  auto worker = std::async(std::launch::async, [&] { return mr::run_worker(w, *app); });
  REQUIRE(worker.wait_for(20s) == std::future_status::ready);
  const auto summary = worker.get();
  CHECK(summary.why == mr::worker_summary::ending::told_exit);
  CHECK(summary.tasks_failed == 4);
  CHECK(summary.tasks_run == 0);
  c.server.stop();
  CHECK_FALSE(c.coordinator.job_done());
  CHECK(c.coordinator.job_failed());
  CHECK(c.coordinator.failure().find("map task 0 failed 4 times; last error: map task 0: cannot open x") !=
        std::string::npos);
}

}  // TEST_SUITE
