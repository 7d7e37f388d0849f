// A job as submitted to the job service, without sockets: every way a POST /v1/jobs body can be wrong
// is a 400 naming the field, and what a good one says comes through.
#include "mrkv/http/reply.hpp"
#include "mrkv/mr/job_spec.hpp"
#include "mrkv/mr/protocol.hpp"
#include "mr/fixtures.hpp"

#include <doctest/doctest.h>

#include <fstream>

namespace {

using namespace mrkv;
using nlohmann::json;

// The 400's message for `body`, or "accepted".
std::string refusal(const json& body, const std::filesystem::path& workdir) {
  try {
    mr::decode_job_spec(body, mr::job_defaults{}, workdir);
  } catch (const http::request_error& e) {
    CHECK(e.status() == 400);
    return e.what();
  }
  return "accepted";
}

}  // namespace

TEST_SUITE("mr_service") {

TEST_CASE("job spec: every malformed submission is refused naming its field") {
  mr::testing::temp_dir dir;
  std::ofstream(dir.path() / "in.txt") << "some words\n";
  std::filesystem::create_directory(dir.path() / "a-directory");
  const json good{{"app", "wc"}, {"inputs", {"in.txt"}}};
  REQUIRE(refusal(good, dir.path()) == "accepted");

  struct bad_case {
    json body;
    const char* names;
  };
  const bad_case cases[] = {
      {json::array(), "object"},
      {{{"inputs", {"in.txt"}}}, "'app'"},
      {{{"app", ""}, {"inputs", {"in.txt"}}}, "'app'"},
      {{{"app", 7}, {"inputs", {"in.txt"}}}, "'app'"},
      {{{"app", "wc"}, {"mapper", "cat"}, {"reducer", "cat"}, {"inputs", {"in.txt"}}}, "'app'"},
      {{{"mapper", "cat"}, {"inputs", {"in.txt"}}}, "'reducer'"},
      {{{"reducer", "cat"}, {"inputs", {"in.txt"}}}, "'mapper'"},
      {{{"combiner", "cat"}, {"reducer", "cat"}, {"inputs", {"in.txt"}}}, "'mapper'"},
      {{{"app", "wc"}}, "'inputs'"},
      {{{"app", "wc"}, {"inputs", "in.txt"}}, "'inputs'"},
      {{{"app", "wc"}, {"inputs", json::array()}}, "'inputs'"},
      {{{"app", "wc"}, {"inputs", {1}}}, "'inputs'"},
      {{{"app", "wc"}, {"inputs", {""}}}, "'inputs'"},
      {{{"app", "wc"}, {"inputs", {"missing.txt"}}}, "missing.txt"},
      {{{"app", "wc"}, {"inputs", {"in.txt", "a-directory"}}}, "a-directory"},
      {{{"app", "wc"}, {"inputs", {"in.txt"}}, {"reduce", 0}}, "'reduce'"},
      {{{"app", "wc"}, {"inputs", {"in.txt"}}, {"reduce", "3"}}, "'reduce'"},
      {{{"app", "wc"}, {"inputs", {"in.txt"}}, {"reduce", 2.5}}, "'reduce'"},
      {{{"app", "wc"}, {"inputs", {"in.txt"}}, {"reduce", 2'000'000}}, "'reduce'"},
      {{{"app", "wc"}, {"inputs", {"in.txt"}}, {"name", 3}}, "'name'"},
      {{{"app", "wc"}, {"inputs", {"in.txt"}}, {"name", std::string(300, 'n')}}, "'name'"},
      {{{"app", "wc"}, {"inputs", {"in.txt"}}, {"name", "two\nlines"}}, "'name'"},
      {{{"app", "wc"}, {"inputs", {"in.txt"}}, {"task_timeout", 0}}, "'task_timeout'"},
      {{{"app", "wc"}, {"inputs", {"in.txt"}}, {"task_timeout", -1}}, "'task_timeout'"},
      {{{"app", "wc"}, {"inputs", {"in.txt"}}, {"task_timeout", "10"}}, "'task_timeout'"},
      {{{"app", "wc"}, {"inputs", {"in.txt"}}, {"max_attempts", 0}}, "'max_attempts'"},
      {{{"app", "wc"}, {"inputs", {"in.txt"}}, {"max_attempts", 1000}}, "'max_attempts'"},
      {{{"app", "wc"}, {"inputs", {"in.txt"}}, {"priority", 1}}, "'priority'"},
  };
  for (const auto& c : cases) {
    const auto message = refusal(c.body, dir.path());
    INFO(c.body.dump() << " -> " << message);
    CHECK(message.find(c.names) != std::string::npos);
  }
}

TEST_CASE("job spec: defaults fill what a submission leaves out - the encoding reads back the same") {
  mr::testing::temp_dir dir;
  std::ofstream(dir.path() / "in.txt") << "x\n";
  mr::job_defaults defaults;
  defaults.n_reduce = 3;
  defaults.task_timeout = std::chrono::milliseconds(2500);
  const auto plain = mr::decode_job_spec(json{{"app", "wc"}, {"inputs", {"in.txt"}}}, defaults, dir.path());
  CHECK(plain.app.app == "wc");
  CHECK(plain.n_reduce == 3);
  CHECK(plain.task_timeout == std::chrono::milliseconds(2500));
  CHECK(plain.max_attempts == 4);

  const json streaming{{"mapper", "awk '{print $1}'"}, {"reducer", "uniq -c"}, {"combiner", "uniq"},
                       {"inputs", {(dir.path() / "in.txt").string()}},
                       {"reduce", 2}, {"name", "Köln"}, {"task_timeout", 0.5}, {"max_attempts", 1}};
  const auto spec = mr::decode_job_spec(streaming, defaults, "/nonexistent");  // an absolute input ignores it
  CHECK(spec.app.streaming());
  CHECK(spec.app.stream.combiner == "uniq");
  CHECK(spec.n_reduce == 2);
  CHECK(spec.name == "Köln");
  CHECK(spec.task_timeout == std::chrono::milliseconds(500));
  CHECK(spec.max_attempts == 1);
  // What a job record stores is what a restart reads, without the inputs being there any more.
  const auto again = mr::decode_job_spec(mr::encode(spec), defaults, "/nonexistent", false);
  CHECK(mr::protocol::same_app(again.app, spec.app));
  CHECK(again.inputs == spec.inputs);
  CHECK(again.task_timeout == spec.task_timeout);
  CHECK(again.name == spec.name);
}

}  // TEST_SUITE
