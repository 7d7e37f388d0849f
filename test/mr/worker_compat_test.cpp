// A worker with --app tells a job service its app in every request for work; a coordinator from before
// job services refuses members it does not know. The worker must then ask without it and run the job.
#include "mrkv/http/json_body.hpp"
#include "mrkv/http/server.hpp"
#include "mrkv/mr/application.hpp"
#include "mrkv/mr/protocol.hpp"
#include "mrkv/mr/worker.hpp"
#include "mr/fixtures.hpp"

#include <doctest/doctest.h>

#include <atomic>

namespace {

using namespace mrkv;
using namespace std::chrono_literals;

}  // namespace

TEST_SUITE("mr_worker") {

TEST_CASE("worker: a coordinator that refuses the app member is asked again without it") {
  std::atomic<int> refused{0};
  std::atomic<int> asked_plainly{0};
  http::router routes;
  routes.add(http::verb::post, mr::protocol::next_path, [&](const http::request& req) {
    const auto body = http::parse_json_object(req.body());
    try {
      http::reject_unknown_fields(body, {"worker", "host", "wait_ms"});  // as the one-job decoder once did
    } catch (const http::request_error&) {
      ++refused;
      throw;
    }
    ++asked_plainly;
    return http::json_reply({{"action", "exit"}});
  });
  http::server_config config;
  config.threads = 1;
  http::server server(config, "coordinator", std::move(routes));
  const auto port = server.start().port();

  mr::testing::temp_dir dir;
  mr::worker_config worker;
  worker.coordinator = http::url{"http", {"127.0.0.1", port}, ""};
  worker.workdir = dir.path();
  worker.poll_wait = 200ms;
  worker.give_up_after = 2s;
  worker.app = mr::app_spec{"wc", {}};
  auto app = mr::load_application("wc");
  const auto summary = mr::run_worker(worker, *app);
  server.stop();
  server.wait();
  CHECK(summary.why == mr::worker_summary::ending::told_exit);
  CHECK(refused.load() == 1);
  CHECK(asked_plainly.load() == 1);
}

}  // TEST_SUITE
