// The job service (`mrkv coordinator` with no INPUT) against real `mrkv coordinator`, `mrkv worker` and
// `mrkv submit` processes: the HTTP API and its errors, jobs in a row, cancel, a failing job followed
// by a good one, workers restricted to one app, and a coordinator restart that keeps its history and
// its workers. Outputs are compared with `mrkv sequential`'s.
#include "mrkv/http/client.hpp"
#include "mrkv/http/router.hpp"
#include "mr/fixtures.hpp"
#include "support/poll_until.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using mrkv::test::process;
using mrkv::test::spawn_options;
using nlohmann::json;

std::vector<std::string> sorted_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A work directory with three of the lab's texts in it (inputs "pg-*.txt", relative to it), one
// service coordinator, and the workers a test starts. Printing it (INFO) shows every process's log.
class service {
 public:
  explicit service(std::vector<std::string> flags = {}) : dir_(scratch_.path()), flags_(std::move(flags)) {
    auto all = mrkv::mr::testing::sample_inputs();
    all.resize(3);
    for (const auto& input : all) {
      const auto name = fs::path(input).filename();
      fs::create_symlink(input, dir_ / name);
      inputs_.push_back(name.string());
    }
    start_coordinator();
  }
  ~service() {
    processes_.clear();  // kills whatever still runs before its directory goes
  }

  const fs::path& dir() const { return dir_; }
  const std::vector<std::string>& inputs() const { return inputs_; }
  const std::string& url() const { return url_; }
  process& coordinator() { return *coordinator_; }

  // The coordinator again, on the same port, as after a crash (kill -9) or a restart.
  void restart_coordinator() {
    coordinator_->kill_now();
    start_coordinator();
  }

  process& worker(std::vector<std::string> flags = {}, std::vector<std::string> env = {}) {
    std::vector<std::string> argv{MRKV_BINARY, "worker", "--coordinator", url_, "--workdir", dir_.string(),
                                  "--poll-wait", "1"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return start("worker-" + std::to_string(processes_.size()), argv, std::move(env));
  }

  // One call on a client of its own.
  mrkv::http::call_result call(mrkv::http::verb method, const std::string& target, std::string body = {}) {
    asio::io_context context;
    mrkv::http::client client(context.get_executor(), mrkv::http::parse_url(url_));
    auto result = asio::co_spawn(context, client.call(method, target, std::move(body), 5s), asio::use_future);
    context.run();
    return result.get();
  }
  std::string submit(json job) {
    auto r = call(mrkv::http::verb::post, "/v1/jobs", job.dump());
    REQUIRE_MESSAGE(r.ok(), r.error->describe());
    CHECK(r.status == 201);
    CHECK(r.body.at("state") == "queued");
    return r.body.at("id").get<std::string>();
  }
  json job(const std::string& id) {
    auto r = call(mrkv::http::verb::get, "/v1/jobs/" + id);
    REQUIRE_MESSAGE(r.ok(), r.error->describe());
    return r.body;
  }
  // Waits for the job to be in one of `states` (at most `limit`) and returns its status.
  json await(const std::string& id, std::set<std::string> states, std::chrono::milliseconds limit = 10s) {
    json last;
    const bool reached = mrkv::test::poll_until(
        [&] {
          last = job(id);
          return states.count(last.at("state").get<std::string>()) > 0;
        },
        limit, 10ms);
    INFO(*this);
    REQUIRE_MESSAGE(reached, "job " << id << " is still " << last.dump());
    return last;
  }

  // The sorted lines of the job's outputs (each file named by its status).
  std::vector<std::string> output(const json& status) {
    std::string all;
    for (const auto& path : status.at("outputs")) all += read_file(path.get<std::string>());
    return sorted_lines(all);
  }
  // What mrkv sequential makes of `inputs` with `app`.
  std::vector<std::string> expected(const std::string& app, const std::vector<std::string>& inputs) {
    const auto out = dir_ / ("expected-" + std::to_string(++expected_runs_));
    std::vector<std::string> argv{MRKV_BINARY, "sequential", "--app", app, "--output", out.string()};
    argv.insert(argv.end(), inputs.begin(), inputs.end());
    REQUIRE(mrkv::test::run_to_end(spawn_options{argv, dir_, {}, dir_ / "sequential.log"}, 30s) == 0);
    return sorted_lines(read_file(out));
  }
  // The task files left in a job's directory (anything but its record and outputs).
  std::vector<std::string> leftovers(const std::string& id) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_ / "jobs" / id)) {
      const auto name = e.path().filename().string();
      if (name != "job.json" && !name.starts_with("mr-out-")) names.push_back(name);
    }
    return names;
  }

  friend std::ostream& operator<<(std::ostream& out, const service& s) {
    for (const auto& [name, p] : s.processes_) {
      auto text = p->output();
      if (text.size() > 3000) text = "..." + text.substr(text.size() - 3000);
      out << "--- " << name << " ---\n" << text << "\n";
    }
    return out;
  }

 private:
  void start_coordinator() {
    if (port_ == 0) port_ = mrkv::test::unused_port();
    std::vector<std::string> argv{MRKV_BINARY, "coordinator", "--listen", "127.0.0.1:" + std::to_string(port_),
                                  "--workdir", dir_.string(), "--reduce", "3"};
    argv.insert(argv.end(), flags_.begin(), flags_.end());
    coordinator_ = &start("coordinator-" + std::to_string(processes_.size()), argv, {});
    auto address = coordinator_->line_after("mrkv coordinator listening on ", 10s);
    REQUIRE_MESSAGE(address, "the coordinator did not start:\n" << coordinator_->output());
    url_ = *address;
  }

  process& start(std::string name, std::vector<std::string> argv, std::vector<std::string> env) {
    processes_.emplace_back(name, std::make_unique<process>(spawn_options{std::move(argv), dir_, std::move(env), {}}));
    return *processes_.back().second;
  }

  mrkv::test::temp_dir scratch_{"service"};
  fs::path dir_;
  std::vector<std::string> flags_;
  std::vector<std::string> inputs_;
  std::uint16_t port_ = 0;
  std::string url_;
  process* coordinator_ = nullptr;
  std::vector<std::pair<std::string, std::unique_ptr<process>>> processes_;
  int expected_runs_ = 0;
};

std::string plugin(const std::string& name) { return mrkv::mr::testing::plugin_path(name); }

// A streaming job whose mapper never ends: it runs until its task timeout kills it.
json hanging_job(const std::vector<std::string>& inputs) {
  return {{"mapper", "sleep 30"}, {"reducer", "cat"}, {"inputs", inputs}, {"task_timeout", 2},
          {"max_attempts", 100}, {"name", "hangs"}};
}

}  // namespace

TEST_SUITE("mr_service") {

TEST_CASE("job service: every bad request is a 4xx naming the problem - and makes no job") {
  service s;
  using mrkv::http::verb;
  struct bad_case {
    verb method;
    std::string target;
    std::string body;
    unsigned status;
    const char* names;
  };
  const std::string inputs = json(s.inputs()).dump();
  const bad_case cases[] = {
      {verb::post, "/v1/jobs", "{not json", 400, "JSON"},
      {verb::post, "/v1/jobs", "[1]", 400, "object"},
      {verb::post, "/v1/jobs", R"({"inputs": )" + inputs + "}", 400, "'app'"},
      {verb::post, "/v1/jobs", R"({"app": "wc", "mapper": "cat", "reducer": "cat", "inputs": )" + inputs + "}", 400,
       "'app'"},
      {verb::post, "/v1/jobs", R"({"mapper": "cat", "inputs": )" + inputs + "}", 400, "'reducer'"},
      {verb::post, "/v1/jobs", R"({"app": "wc"})", 400, "'inputs'"},
      {verb::post, "/v1/jobs", R"({"app": "wc", "inputs": []})", 400, "'inputs'"},
      {verb::post, "/v1/jobs", R"({"app": "wc", "inputs": ["no-such-file.txt"]})", 400, "no-such-file.txt"},
      {verb::post, "/v1/jobs", R"({"app": "wc", "inputs": ["jobs"]})", 400, "it is a directory"},
      {verb::post, "/v1/jobs", R"({"app": "wc", "reduce": 0, "inputs": )" + inputs + "}", 400, "'reduce'"},
      {verb::post, "/v1/jobs", R"({"app": "wc", "task_timeout": -2, "inputs": )" + inputs + "}", 400,
       "'task_timeout'"},
      {verb::post, "/v1/jobs", R"({"app": "wc", "max_attempts": 0, "inputs": )" + inputs + "}", 400,
       "'max_attempts'"},
      {verb::post, "/v1/jobs", R"({"app": "wc", "name": 1, "inputs": )" + inputs + "}", 400, "'name'"},
      {verb::post, "/v1/jobs", R"({"app": "wc", "colour": "red", "inputs": )" + inputs + "}", 400, "'colour'"},
      {verb::get, "/v1/jobs/1", "", 404, "no job 1"},
      {verb::delete_, "/v1/jobs/1", "", 404, "no job 1"},
      {verb::get, "/v1/jobs/", "", 404, "no such job"},
      {verb::put, "/v1/jobs", "{}", 405, ""},
      {verb::post, "/v1/tasks/done", R"({"worker": "w", "kind": "map", "task": 0, "attempt": 1})", 400, "'job'"},
      {verb::post, "/v1/tasks/done", R"({"worker": "w", "kind": "map", "task": 0, "attempt": 1, "job": "9"})", 404,
       "no job 9"},
      {verb::post, "/v1/tasks/failed", R"({"worker": "w", "kind": "map", "task": 0, "attempt": 1, "error": "x"})",
       400, "'job'"},
  };
  for (const auto& c : cases) {
    auto r = s.call(c.method, c.target, c.body);
    INFO(c.target << " " << c.body << " -> " << r.status << " " << (r.error ? r.error->message : r.body.dump()));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error->status == c.status);
    CHECK(r.error->message.find(c.names) != std::string::npos);
  }
  auto list = s.call(verb::get, "/v1/jobs");
  REQUIRE(list.ok());
  CHECK(list.body == json{{"jobs", json::array()}});
  CHECK_FALSE(fs::exists(s.dir() / "jobs" / "1"));

  // A good one now gets the first id, and a cancelled job can't be cancelled twice.
  const auto id = s.submit({{"app", "wc"}, {"inputs", s.inputs()}});
  CHECK(id == "1");
  auto cancelled = s.call(verb::delete_, "/v1/jobs/1");
  REQUIRE(cancelled.ok());
  CHECK(cancelled.body.at("state") == "cancelled");
  auto again = s.call(verb::delete_, "/v1/jobs/1");
  REQUIRE_FALSE(again.ok());
  CHECK(again.error->status == 409);
}

TEST_CASE("job service: jobs submitted together run in order on a pool that stays - outputs equal sequential") {
  service s;
  auto& w1 = s.worker();
  auto& w2 = s.worker();
  const auto first = s.submit({{"app", "wc"}, {"inputs", s.inputs()}, {"name", "first"}});
  const auto second = s.submit({{"app", "indexer"}, {"inputs", s.inputs()}, {"reduce", 2}});
  const auto third = s.submit({{"app", plugin("slow")}, {"inputs", {s.inputs()[0]}}, {"reduce", 1}});
  const auto fourth = s.submit({{"app", plugin("slow")}, {"inputs", s.inputs()}, {"reduce", 4}});
  const auto a = s.await(first, {"done"});
  const auto b = s.await(second, {"done"});
  const auto c = s.await(third, {"done"});
  s.await(fourth, {"done"});
  INFO(s);
  // A plugin is loaded once per worker and kept for the next job of it.
  int loads = 0;
  for (auto* w : {&w1, &w2}) {
    const auto log = w->output();
    const std::string line = "loaded app \"" + plugin("slow") + "\"";
    int n = 0;
    for (auto at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) ++n;
    CHECK(n <= 1);
    loads += n;
  }
  CHECK(loads >= 1);
  CHECK(s.output(a) == s.expected("wc", s.inputs()));
  CHECK(s.output(b) == s.expected("indexer", s.inputs()));
  CHECK(s.output(c) == s.expected(plugin("slow"), {s.inputs()[0]}));
  CHECK(a.at("outputs").size() == 3);  // the coordinator's --reduce
  CHECK(b.at("outputs").size() == 2);
  CHECK(a.at("name") == "first");
  // Submission order: a job starts no earlier than the one before it (ISO times sort as text).
  CHECK(a.at("started").get<std::string>() <= b.at("started").get<std::string>());
  CHECK(b.at("started").get<std::string>() <= c.at("started").get<std::string>());
  for (const auto& id : {first, second, third}) CHECK(s.leftovers(id).empty());
  // Each task names its worker and attempts.
  for (const auto& t : a.at("tasks").at("map")) {
    CHECK(t.at("state") == "done");
    CHECK(t.at("worker").get<std::string>().starts_with("w-"));
    CHECK(t.at("attempts") == 1);
  }
  auto list = s.call(mrkv::http::verb::get, "/v1/jobs");
  REQUIRE(list.ok());
  REQUIRE(list.body.at("jobs").size() == 4);
  CHECK(list.body["jobs"][0].at("id") == fourth);  // newest first
  CHECK(list.body["jobs"][3].at("id") == first);
  CHECK(list.body["jobs"][3].at("map") == json{{"idle", 0}, {"running", 0}, {"done", 3}, {"total", 3}});

  auto metrics = s.call(mrkv::http::verb::get, "/metrics");  // not JSON: only its status is read here
  CHECK(metrics.status == 200);
}

TEST_CASE("job service: /metrics counts jobs by state and tasks and workers - GET / is the page") {
  service s;
  s.worker({"--app", "wc"});
  s.await(s.submit({{"app", "wc"}, {"inputs", s.inputs()}}), {"done"});
  // Nobody runs indexer here: the job is still queued when it is cancelled.
  s.submit({{"app", "indexer"}, {"inputs", s.inputs()}});
  REQUIRE(s.call(mrkv::http::verb::delete_, "/v1/jobs/2").ok());
  asio::io_context context;
  mrkv::http::client client(context.get_executor(), mrkv::http::parse_url(s.url()));
  auto get = [&](const char* target) {
    auto r = asio::co_spawn(context, client.call_raw(mrkv::http::verb::get, target, "", 5s), asio::use_future);
    context.restart();
    context.run();
    return r.get();
  };
  const auto metrics = get("/metrics");
  REQUIRE(metrics.answered());
  CHECK(metrics.body.find("mrkv_mr_jobs{mode=\"coordinator\",state=\"done\"} 1\n") != std::string::npos);
  CHECK(metrics.body.find("mrkv_mr_jobs{mode=\"coordinator\",state=\"cancelled\"} 1\n") != std::string::npos);
  CHECK(metrics.body.find("mrkv_mr_jobs{mode=\"coordinator\",state=\"queued\"} 0\n") != std::string::npos);
  CHECK(metrics.body.find("mrkv_mr_workers_seen{mode=\"coordinator\"} 1\n") != std::string::npos);
  CHECK(metrics.body.find("mrkv_mr_tasks{mode=\"coordinator\",kind=\"map\",state=\"idle\"} 0\n") != std::string::npos);
  // 3 maps and 3 reduces of the finished job.
  CHECK(metrics.body.find("mrkv_mr_task_duration_seconds_count{mode=\"coordinator\"} 6\n") != std::string::npos);
  const auto page = get("/");
  REQUIRE(page.answered());
  CHECK(page.status == 200);
  CHECK(page.body.find("<!DOCTYPE html>") == 0);
  CHECK(page.body.find("/v1/jobs") != std::string::npos);
  CHECK(page.body.find("http://") == std::string::npos);  // nothing fetched from elsewhere
  CHECK(page.body.find("https://") == std::string::npos);
}

TEST_CASE("job service: a cancelled job publishes nothing - the next one runs") {
  service s;
  s.worker();
  s.worker();
  const auto hung = s.submit(hanging_job({s.inputs()[0]}));
  s.await(hung, {"map"});
  auto cancelled = s.call(mrkv::http::verb::delete_, "/v1/jobs/" + hung);
  REQUIRE(cancelled.ok());
  CHECK(cancelled.body.at("state") == "cancelled");
  // The worker still stuck in the hung mapper is not needed for the next job.
  const auto good = s.submit({{"app", "wc"}, {"inputs", s.inputs()}});
  const auto done = s.await(good, {"done"});
  INFO(s);
  CHECK(s.output(done) == s.expected("wc", s.inputs()));
  const auto gone = s.job(hung);
  CHECK(gone.at("state") == "cancelled");
  CHECK(gone.at("error") == "cancelled");
  CHECK_FALSE(gone.contains("outputs"));
  CHECK(s.leftovers(hung).empty());
  for (const auto& e : fs::directory_iterator(s.dir() / "jobs" / hung))
    CHECK_FALSE(e.path().filename().string().starts_with("mr-out-"));
}

TEST_CASE("job service: failing jobs fail with their reason - the service goes on with the next") {
  service s;
  s.worker();
  // A plugin no worker can load: each attempt is reported failed.
  const auto unloadable = s.submit({{"app", "/nonexistent/plugin.so"}, {"inputs", s.inputs()}, {"max_attempts", 2}});
  const auto failed = s.await(unloadable, {"failed"});
  CHECK(failed.at("error").get<std::string>().find("failed 2 times") != std::string::npos);
  CHECK(failed.at("error").get<std::string>().find("/nonexistent/plugin.so") != std::string::npos);
  CHECK(failed.at("task_errors").size() >= 1);

  // A streaming mapper that exits 1, with its standard error in the reason.
  const auto exits = s.submit({{"mapper", "echo broken input >&2; exit 1"}, {"reducer", "cat"},
                               {"inputs", {s.inputs()[0]}}, {"max_attempts", 1}});
  const auto exited = s.await(exits, {"failed"});
  CHECK(exited.at("error").get<std::string>().find("broken input") != std::string::npos);

  // A plugin that kills its worker while loading: the attempt is lost, and lost attempts count here.
  const auto crashes = s.submit({{"app", plugin("crash_on_load")}, {"inputs", {s.inputs()[0]}},
                                 {"max_attempts", 1}, {"task_timeout", 0.3}});
  const auto crashed = s.await(crashes, {"failed"});
  CHECK(crashed.at("error").get<std::string>().find("did not finish within 300 ms") != std::string::npos);

  // A new worker (the first died in dlopen) runs the next job as if nothing had happened.
  s.worker();
  const auto good = s.submit({{"app", "wc"}, {"inputs", s.inputs()}});
  const auto done = s.await(good, {"done"});
  INFO(s);
  CHECK(s.output(done) == s.expected("wc", s.inputs()));
  for (const auto& id : {unloadable, exits, crashes}) CHECK(s.leftovers(id).empty());
}

TEST_CASE("job service: a worker stopped by SIGTERM hands its task back - not counted against max_attempts") {
  service s;
  // One attempt allowed and a 60 s timeout: a counted loss would fail the job, and only the hand-back
  // brings the held task back soon.
  const auto id = s.submit({{"app", plugin("slow")}, {"inputs", s.inputs()}, {"max_attempts", 1}, {"task_timeout", 60}});
  auto& stopped = s.worker({}, {"MRKV_SLOW_MAP_MS=600000"});
  REQUIRE(stopped.wait_for_output("running map task", 10s));
  stopped.signal(SIGTERM);
  REQUIRE(stopped.wait_for(10s) == 128 + SIGTERM);
  s.worker();
  const auto done = s.await(id, {"done", "failed"}, 30s);
  INFO(s);
  CHECK(done.at("state") == "done");
  CHECK(s.output(done) == s.expected("wc", s.inputs()));
  CHECK(s.coordinator().output().find("given back by worker") != std::string::npos);
}

TEST_CASE("job service: a worker with --app takes only that app's jobs - one without takes any") {
  service s;
  s.worker({"--app", "wc"});
  const auto indexer = s.submit({{"app", "indexer"}, {"inputs", s.inputs()}});
  const auto wc = s.submit({{"app", "wc"}, {"inputs", s.inputs()}});
  s.await(wc, {"done"});
  // The older indexer job had nobody to run it.
  CHECK(s.job(indexer).at("state") == "queued");
  s.worker();
  const auto done = s.await(indexer, {"done"});
  CHECK(s.output(done) == s.expected("indexer", s.inputs()));
}

TEST_CASE("job service: a restart keeps the history and the workers - the job that ran is marked failed") {
  service s;
  auto& w1 = s.worker({"--id", "w-stays-1"});
  auto& w2 = s.worker({"--id", "w-stays-2"});
  const auto first = s.submit({{"app", "wc"}, {"inputs", s.inputs()}});
  const auto before = s.await(first, {"done"});
  const auto hung = s.submit(hanging_job({s.inputs()[0]}));
  s.await(hung, {"map"});
  // The hung job holds one worker at a time; the other runs what comes after it.
  const auto queued = s.submit({{"app", "indexer"}, {"inputs", s.inputs()}});
  s.await(queued, {"done"});
  const auto waiting = s.call(mrkv::http::verb::post, "/v1/jobs",
                              json{{"app", "indexer"}, {"inputs", s.inputs()}, {"name", "after"}}.dump());
  REQUIRE(waiting.ok());

  s.restart_coordinator();
  INFO(s);
  auto list = s.call(mrkv::http::verb::get, "/v1/jobs");
  REQUIRE(list.ok());
  CHECK(list.body.at("jobs").size() == 4);
  const auto kept = s.job(first);
  CHECK(kept.at("state") == "done");
  CHECK(kept.at("outputs") == before.at("outputs"));
  CHECK(s.output(kept) == s.expected("wc", s.inputs()));
  const auto lost = s.job(hung);
  CHECK(lost.at("state") == "failed");
  CHECK(lost.at("error").get<std::string>().find("coordinator stopped while the job ran") != std::string::npos);

  // The workers lived through it and run what comes next: the job that was queued at the restart
  // (or ran: it is then done or failed, never lost) and a new one.
  const auto next = s.submit({{"app", "wc"}, {"inputs", s.inputs()}, {"reduce", 1}});
  CHECK(std::stoi(next) == 5);  // ids go on where they were
  const auto done = s.await(next, {"done"});
  CHECK(s.output(done) == s.expected("wc", s.inputs()));
  std::set<std::string> ran_by;
  for (const auto& t : done.at("tasks").at("map")) ran_by.insert(t.at("worker").get<std::string>());
  for (const auto& id : ran_by) CHECK((id == "w-stays-1" || id == "w-stays-2"));
  CHECK(s.await(waiting.body.at("id").get<std::string>(), {"done", "failed"}).at("name") == "after");
  CHECK(w1.running());
  CHECK(w2.running());
}

TEST_CASE("job service: mrkv submit --wait prints the id and the outputs - exit 1 for a failed job") {
  service s;
  s.worker();
  std::vector<std::string> argv{MRKV_BINARY, "submit", "--coordinator", s.url(), "--app", "wc", "--reduce", "2",
                                "--name", "from the CLI", "--wait"};
  argv.insert(argv.end(), s.inputs().begin(), s.inputs().end());
  process submit(spawn_options{argv, s.dir(), {}, {}});
  REQUIRE(submit.wait_for(15s) == std::optional<int>(0));
  REQUIRE(submit.wait_for_output("mr-out-1", 5s));
  const auto lines = sorted_lines(submit.output());
  // The id, the progress lines ("job 1 ..."), and the two output files.
  std::vector<std::string> outputs;
  for (const auto& line : lines)
    if (line.starts_with("/")) outputs.push_back(line);
  REQUIRE(outputs.size() == 2);
  CHECK(outputs[0] == (s.dir() / "jobs" / "1" / "mr-out-0").string());
  CHECK(std::find(lines.begin(), lines.end(), "1") != lines.end());
  CHECK(s.job("1").at("name") == "from the CLI");

  process bad(spawn_options{{MRKV_BINARY, "submit", "--coordinator", s.url(), "--app", "/nonexistent.so",
                             "--max-attempts", "1", "--wait", s.inputs()[0]},
                            s.dir(), {}, {}});
  CHECK(bad.wait_for(15s) == std::optional<int>(1));
  CHECK(bad.wait_for_output("job 2 failed", 5s));

  process refused(spawn_options{{MRKV_BINARY, "submit", "--coordinator", s.url(), "--app", "wc", "missing.txt"},
                                s.dir(), {}, {}});
  CHECK(refused.wait_for(15s) == std::optional<int>(2));
  CHECK(refused.wait_for_output("missing.txt", 5s));

  process status(spawn_options{{MRKV_BINARY, "status", "--coordinator", s.url()}, s.dir(), {}, {}});
  CHECK(status.wait_for(15s) == std::optional<int>(0));
  CHECK(status.wait_for_output("2 jobs", 5s));
  process one(spawn_options{{MRKV_BINARY, "status", "--coordinator", s.url(), "--job", "2"}, s.dir(), {}, {}});
  CHECK(one.wait_for(15s) == std::optional<int>(1));
  CHECK(one.wait_for_output("job 2: failed", 5s));
}

}  // TEST_SUITE

TEST_SUITE("mr_service") {

TEST_CASE("job service: a worker without --app of a one-job coordinator exits 1 saying why") {
  mrkv::mr::testing::temp_dir dir;
  const auto input = mrkv::mr::testing::sample_inputs().front();
  process coordinator(spawn_options{{MRKV_BINARY, "coordinator", "--listen", "127.0.0.1:0", "--workdir",
                                     dir.path().string(), "--reduce", "1", "--task-timeout", "0.5", input},
                                    dir.path(), {}, {}});
  auto url = coordinator.line_after("mrkv coordinator listening on ", 10s);
  REQUIRE(url);
  process any(spawn_options{{MRKV_BINARY, "worker", "--coordinator", *url, "--workdir", dir.path().string()},
                            dir.path(), {}, {}});
  CHECK(any.wait_for(10s) == std::optional<int>(1));
  CHECK(any.wait_for_output("start this worker with --app", 5s));
  // The job is not lost: a worker with its app finishes it once the abandoned task times out.
  process wc(spawn_options{{MRKV_BINARY, "worker", "--coordinator", *url, "--workdir", dir.path().string(), "--app",
                            "wc"},
                           dir.path(), {}, {}});
  CHECK(coordinator.wait_for(10s) == std::optional<int>(0));
  CHECK(fs::exists(dir.path() / "mr-out-0"));
}

}  // TEST_SUITE

TEST_SUITE("mr_service") {

TEST_CASE("job service: its workers wait for it while it is away - unless --give-up-after is given") {
  service s;
  auto& stays = s.worker();
  auto& leaves = s.worker({"--give-up-after", "0.5"});
  REQUIRE(stays.wait_for_output("staying up between jobs and while it is away", 10s));
  REQUIRE(leaves.wait_for_output("staying up between jobs", 10s));
  s.coordinator().kill_now();
  CHECK(leaves.wait_for(10s) == std::optional<int>(0));
  CHECK(stays.wait_for_output("retrying until it is back", 10s));
  CHECK(stays.running());
}

}  // TEST_SUITE

TEST_SUITE("mr_service") {
TEST_CASE("job service: a job directory whose record is unreadable keeps its id - a new job gets the next one") {
  service s;
  const auto first = s.submit({{"app", "wc"}, {"inputs", s.inputs()}});
  // Job 5's record is damaged (a disk error, a hand edit): its directory still holds its files.
  fs::create_directories(s.dir() / "jobs" / "5");
  std::ofstream(s.dir() / "jobs" / "5" / "job.json") << "{not json";
  std::ofstream(s.dir() / "jobs" / "5" / "mr-out-1") << "old output\n";
  s.restart_coordinator();
  const auto next = s.submit({{"app", "wc"}, {"inputs", s.inputs()}});
  CHECK(first == "1");
  CHECK(next == "6");
  CHECK(std::ifstream(s.dir() / "jobs" / "5" / "mr-out-1").good());
}
}
