// The job service's additions to the worker protocol, without sockets: a worker's app in its request
// for work, the job, directory and app in an order, the job in a report; and what a one-job
// coordinator's worker sends and reads stays as it was.
#include "mrkv/http/reply.hpp"
#include "mrkv/mr/protocol.hpp"

#include <doctest/doctest.h>

namespace {

using namespace mrkv::mr;
using nlohmann::json;

bool refused(const json& body, const char* names) {
  try {
    protocol::decode_order(body);
  } catch (const mrkv::http::request_error& e) {
    return e.status() == 400 && std::string(e.what()).find(names) != std::string::npos;
  }
  return false;
}

}  // namespace

TEST_SUITE("mr_service") {

TEST_CASE("service protocol: orders carry the job and its directory and app - and read back") {
  protocol::order o;
  o.what = protocol::action::map;
  o.task = 2;
  o.attempt = 3;
  o.input = "pg-grimm.txt";
  o.n_reduce = 4;
  o.job = "17";
  o.dir = "jobs/17";
  o.app = app_spec{};
  o.app->stream.mapper = "awk '{print $1}'";
  o.app->stream.reducer = "uniq -c";
  o.service = true;
  const auto back = protocol::decode_order(protocol::encode(o));
  CHECK(back.job == "17");
  CHECK(back.dir == "jobs/17");
  REQUIRE(back.app);
  CHECK(protocol::same_app(*back.app, *o.app));
  CHECK(back.service);
  // A one-job coordinator's order has none of it.
  protocol::order lab;
  lab.what = protocol::action::reduce;
  lab.n_map = 8;
  const auto encoded = protocol::encode(lab);
  CHECK_FALSE(encoded.contains("job"));
  CHECK_FALSE(encoded.contains("service"));
  CHECK_FALSE(protocol::decode_order(encoded).app);
  // A directory outside the work directory is refused, whoever sends it.
  auto outside = protocol::encode(o);
  outside["dir"] = "../elsewhere";
  CHECK(refused(outside, "'dir'"));
  outside["dir"] = "/etc";
  CHECK(refused(outside, "'dir'"));
  auto no_app = protocol::encode(o);
  no_app["app"] = json::object();
  CHECK(refused(no_app, "'app'"));
}

TEST_CASE("service protocol: a worker's app and a report's job are optional members") {
  protocol::next_request ask{"w-1", "host", std::chrono::milliseconds(100), app_spec{"wc", {}}};
  const auto back = protocol::decode_next_request(protocol::encode(ask));
  REQUIRE(back.app);
  CHECK(back.app->app == "wc");
  CHECK_FALSE(protocol::decode_next_request(json{{"worker", "w-1"}}).app);
  CHECK_THROWS_AS(protocol::decode_next_request(json{{"worker", "w-1"}, {"app", "wc"}}), mrkv::http::request_error);

  protocol::done_request done{"w-1", task_kind::reduce, 1, 1, {}, "4"};
  CHECK(protocol::decode_done_request(protocol::encode(done)).job == "4");
  protocol::failed_request failed{"w-1", task_kind::map, 0, 2, "boom"};
  const auto encoded = protocol::encode(failed);
  CHECK_FALSE(encoded.contains("job"));
  CHECK(protocol::decode_failed_request(encoded).job.empty());
  CHECK_FALSE(encoded.contains("given_back"));
  CHECK_FALSE(protocol::decode_failed_request(encoded).given_back);
  failed.given_back = true;
  CHECK(protocol::decode_failed_request(protocol::encode(failed)).given_back);
  auto wrong = protocol::encode(failed);
  wrong["given_back"] = "yes";
  CHECK_THROWS_AS(protocol::decode_failed_request(wrong), mrkv::http::request_error);
}

TEST_CASE("service protocol: two apps are the same job app only with the same name or commands") {
  app_spec wc{"wc", {}};
  app_spec other{"indexer", {}};
  app_spec stream;
  stream.stream.mapper = "cat";
  stream.stream.reducer = "uniq";
  app_spec combined = stream;
  combined.stream.combiner = "uniq";
  CHECK(protocol::same_app(wc, wc));
  CHECK_FALSE(protocol::same_app(wc, other));
  CHECK_FALSE(protocol::same_app(stream, combined));
  combined.stream.sort_buffer = 1;  // the worker's, not the job's
  combined.stream.combiner.clear();
  CHECK(protocol::same_app(stream, combined));
}

}  // TEST_SUITE
