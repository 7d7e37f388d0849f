// Route matching without sockets: exact paths, and paths ending in '*' that take every path under them
// (the job service's /v1/jobs/ID).
#include "mrkv/http/router.hpp"

#include <doctest/doctest.h>

namespace {

using namespace mrkv;

http::reply ok(const http::request&) { return http::json_reply({{"ok", true}}); }

}  // namespace

TEST_SUITE("http") {

TEST_CASE("router: a path ending in * takes the paths under it - exact routes keep their own") {
  http::router r;
  r.add(http::verb::get, "/v1/jobs", ok);
  r.add(http::verb::post, "/v1/jobs", ok);
  r.add(http::verb::get, "/v1/jobs/*", ok);
  r.add(http::verb::delete_, "/v1/jobs/*", ok);
  CHECK(r.find(http::verb::get, "/v1/jobs").index == 0);
  CHECK(r.find(http::verb::post, "/v1/jobs").index == 1);
  CHECK(r.find(http::verb::get, "/v1/jobs/7").index == 2);
  CHECK(r.find(http::verb::get, "/v1/jobs/7?verbose=1").index == 2);
  CHECK(r.find(http::verb::head, "/v1/jobs/7").index == 2);
  CHECK(r.find(http::verb::delete_, "/v1/jobs/7").index == 3);
  CHECK(r.find(http::verb::get, "/v1/jobs/").found != nullptr);  // the handler decides what an empty ID means
  CHECK(r.find(http::verb::get, "/v1/job").status == 404);
  CHECK(r.find(http::verb::get, "/v1/jobsx").status == 404);
  const auto wrong = r.find(http::verb::put, "/v1/jobs/7");
  CHECK(wrong.found == nullptr);
  CHECK(wrong.status == 405);
  CHECK(r.allowed_methods("/v1/jobs/7") == "GET, HEAD, DELETE");
  CHECK(r.allowed_methods("/v1/jobs") == "GET, HEAD, POST");
}

}  // TEST_SUITE
