// Shared-nothing MapReduce (issue 15) against the real binary on loopback: a coordinator and three
// workers, each in its own temporary directory (nothing shared, the inputs only in the coordinator's),
// end with the sequential answer for wc, indexer and a plugin with a combiner; a worker killed with
// SIGKILL after it ran every map has its maps run again elsewhere and the answer is still right. Plus,
// in-process, a damaged map output that its worker refuses to serve and the fetcher reports as gone.
#include "mr/fixtures.hpp"
#include "mrkv/http/client.hpp"
#include "mrkv/http/endpoint.hpp"
#include "mrkv/http/server.hpp"
#include "mrkv/mr/application.hpp"
#include "mrkv/mr/map_output.hpp"
#include "mrkv/mr/shuffle_fetcher.hpp"
#include "mrkv/mr/shuffle_store.hpp"
#include "mrkv/mr/task_files.hpp"
#include "mrkv/mr/task_runner.hpp"
#include "support/async.hpp"
#include "support/poll_until.hpp"
#include "support/process.hpp"
#include "support/tls_files.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using mrkv::mr::testing::plugin_path;
using mrkv::mr::testing::sample_inputs;
using mrkv::mr::testing::temp_dir;
using mrkv::test::process;
using mrkv::test::spawn_options;

constexpr auto job_limit = 120s;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> sorted_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

bool has_file_ending(const fs::path& dir, const std::string& suffix) {
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().ends_with(suffix)) return true;
  return false;
}

// A one-job coordinator in its own directory holding copies of the inputs, and workers that each get a
// directory of their own.
class shared_nothing_job {
 public:
  explicit shared_nothing_job(std::string app) : app_(std::move(app)) {
    fs::create_directories(coordinator_dir());
    for (const auto& input : sample_inputs()) {
      fs::copy_file(input, coordinator_dir() / fs::path(input).filename());
      names_.push_back(fs::path(input).filename().string());
    }
  }

  fs::path coordinator_dir() const { return root_.path() / "coordinator"; }
  fs::path root() const { return root_.path(); }

  // Added to every worker's command line, e.g. TLS and a token; `worker_scheme` is what they serve.
  std::vector<std::string> worker_flags;
  std::string worker_scheme = "http://";
  fs::path worker_dir(int i) const { return root_.path() / ("worker-" + std::to_string(i)); }

  // `service`: a job service (no INPUT); else the one-job coordinator of the inputs.
  process& coordinator(std::vector<std::string> flags, bool service = false) {
    std::vector<std::string> argv{MRKV_BINARY, "coordinator", "--listen", "127.0.0.1:0", "--reduce", "3"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    if (!service) argv.insert(argv.end(), names_.begin(), names_.end());
    auto& c = start("coordinator", argv, coordinator_dir());
    auto address = c.line_after("mrkv coordinator listening on ", 10s);
    REQUIRE_MESSAGE(address, "the coordinator did not announce its address:\n" << c.output());
    url_ = *address;
    return c;
  }

  // A worker in directory worker-i, serving on a free port; returns once it says where. `any_app`: it
  // runs each job's app (a job service's worker).
  process& worker(int i, bool any_app = false) {
    fs::create_directories(worker_dir(i));
    std::vector<std::string> argv{MRKV_BINARY, "worker", "--coordinator", url_, "--workdir", worker_dir(i).string(),
                                  "--serve", "127.0.0.1:0", "--give-up-after", "5", "--poll-wait", "1"};
    if (!any_app) argv.insert(argv.end(), {"--app", app_});
    argv.insert(argv.end(), worker_flags.begin(), worker_flags.end());
    auto& w = start("worker-" + std::to_string(i), argv, root_.path());
    const auto served = w.line_after("mrkv worker serving on " + worker_scheme + "127.0.0.1:", 10s);
    REQUIRE_MESSAGE(served, "the worker did not say where it serves:\n" << w.output());
    last_served_ = worker_scheme + "127.0.0.1:" + *served;
    return w;
  }

  // The job's outputs: in the coordinator's directory, or in `subdir` of it (a job service's job).
  std::vector<std::string> outputs(const fs::path& subdir = {}) const {
    std::string all;
    for (int r = 0; r < 3; ++r) all += read_file(coordinator_dir() / subdir / ("mr-out-" + std::to_string(r)));
    return sorted_lines(all);
  }

  // `mrkv submit --wait` of the app over the inputs; its exit status.
  int submit() {
    std::vector<std::string> argv{MRKV_BINARY, "submit", "--coordinator", url_, "--app", app_, "--wait"};
    argv.insert(argv.end(), names_.begin(), names_.end());
    names_of_processes_.push_back("submit");
    return mrkv::test::run_to_end(spawn_options{argv, root_.path(), {}, root_.path() / "submit.log"}, job_limit);
  }

  const std::string& url() const { return url_; }
  const std::string& last_served() const { return last_served_; }  // the URL the last worker serves on

  std::vector<std::string> sequential() {
    const auto out = root_.path() / "sequential.txt";
    std::vector<std::string> argv{MRKV_BINARY, "sequential", "--app", app_, "--output", out.string()};
    argv.insert(argv.end(), names_.begin(), names_.end());
    REQUIRE(mrkv::test::run_to_end(spawn_options{argv, coordinator_dir(), {}, root_.path() / "sequential.log"},
                                   job_limit) == 0);
    auto lines = sorted_lines(read_file(out));
    REQUIRE(lines.size() > 1000);
    return lines;
  }

  std::string logs() const {
    std::string all;
    for (const auto& name : names_of_processes_) all += "---- " + name + "\n" + read_file(root_.path() / (name + ".log"));
    return all;
  }

 private:
  process& start(const std::string& name, std::vector<std::string> argv, const fs::path& cwd) {
    names_of_processes_.push_back(name);
    processes_.push_back(std::make_unique<process>(spawn_options{std::move(argv), cwd, {}, root_.path() / (name + ".log")}));
    return *processes_.back();
  }

  temp_dir root_;
  std::string app_;
  std::vector<std::string> names_;
  std::string url_;
  std::string last_served_;
  std::vector<std::string> names_of_processes_;
  std::vector<std::unique_ptr<process>> processes_;
};

void check_job_matches_sequential(const std::string& app) {
  shared_nothing_job job(app);
  auto& coordinator = job.coordinator({});
  std::vector<process*> workers;
  for (int i = 1; i <= 3; ++i) workers.push_back(&job.worker(i));
  REQUIRE_MESSAGE(coordinator.wait_for(job_limit) == 0, job.logs());
  CHECK_MESSAGE(job.outputs() == job.sequential(), job.logs());
  // The maps' outputs stayed with the workers, and the reducers' outputs came to the coordinator.
  CHECK_FALSE(has_file_ending(job.coordinator_dir(), ".map"));
  // Told to exit, each worker that ran maps deleted the outputs it held (how many workers got maps
  // depends on how fast they started: under a sanitizer one may do them all).
  int held = 0;
  for (int i = 1; i <= 3; ++i) {
    auto& w = *workers[static_cast<std::size_t>(i - 1)];
    // 1: a worker that started so late (a slow sanitizer build) that the coordinator had exited.
    const auto status = w.wait_for(10s);
    REQUIRE_MESSAGE((status == 0 || status == 1), job.logs());
    CHECK_FALSE(has_file_ending(job.worker_dir(i), ".map"));
    const auto log = w.output();
    const auto at = log.find("] removed ");
    const bool removed = at != std::string::npos && std::stoi(log.substr(at + 10)) > 0;
    CHECK_MESSAGE(removed == (log.find("running map task") != std::string::npos), job.logs());
    if (removed) ++held;
  }
  CHECK_MESSAGE(held >= 1, job.logs());
  CHECK(coordinator.output().find("could not fetch") == std::string::npos);
  // A reducer reads the outputs of the maps it ran itself from its own disk, not over HTTP.
  CHECK_MESSAGE(job.logs().find("read from this worker's disk") != std::string::npos, job.logs());
}

}  // namespace

TEST_SUITE("mr_shuffle") {
  TEST_CASE("mr shuffle: three workers sharing no directory give the sequential answer for wc") {
    check_job_matches_sequential("wc");
  }

  TEST_CASE("mr shuffle: three workers sharing no directory give the sequential answer for indexer") {
    check_job_matches_sequential("indexer");
  }

  TEST_CASE("mr shuffle: three workers sharing no directory give the sequential answer for a plugin with a combiner") {
    check_job_matches_sequential(plugin_path("combining_wc"));
  }

  TEST_CASE("mr shuffle: over HTTPS with a token, workers serving TLS give the sequential answer") {
    mrkv::test::tls_files tls;
    shared_nothing_job job("wc");
    const auto token = (job.root() / "token").string();
    std::ofstream(token) << "open sesame\n";
    auto& coordinator = job.coordinator({"--tls-cert", tls.cert, "--tls-key", tls.key, "--tls-ca", tls.cert,
                                         "--auth-token-file", token});
    REQUIRE(job.url().starts_with("https://"));
    job.worker_flags = {"--tls-cert", tls.cert, "--tls-key", tls.key, "--tls-ca", tls.cert, "--auth-token-file", token};
    job.worker_scheme = "https://";
    for (int i = 1; i <= 3; ++i) job.worker(i);
    REQUIRE_MESSAGE(coordinator.wait_for(job_limit) == 0, job.logs());
    CHECK_MESSAGE(job.outputs() == job.sequential(), job.logs());
    CHECK(coordinator.output().find("could not fetch") == std::string::npos);
    CHECK(coordinator.output().find("advertised as https://127.0.0.1:") == std::string::npos);  // a worker's line
    CHECK_MESSAGE(job.logs().find("advertised as https://127.0.0.1:") != std::string::npos, job.logs());
  }

  TEST_CASE("mr shuffle: a worker with a token serves its map outputs only to callers with the token") {
    shared_nothing_job job("wc");
    const auto token = (job.root() / "token").string();
    std::ofstream(token) << "open sesame\n";
    job.coordinator({"--auth-token-file", token}, true);  // a job service: its workers stay up
    job.worker_flags = {"--auth-token-file", token};
    job.worker(1, true);
    boost::asio::io_context context;
    const auto served = mrkv::http::parse_url(job.last_served());
    mrkv::http::client anonymous(context.get_executor(), served);
    const auto refused = mrkv::test::run_until_done(context, anonymous.get("/v1/shuffle/1/map/0/0", 10s), 30s);
    CHECK(refused.status == 401);
    mrkv::http::client_options with_token;
    with_token.auth_token = "open sesame";
    mrkv::http::client admitted(context.get_executor(), served, with_token);
    const auto missing = mrkv::test::run_until_done(context, admitted.get("/v1/shuffle/1/map/0/0", 10s), 30s);
    CHECK(missing.status == 404);  // past the token check: there is no job 1 here
  }

  TEST_CASE("mr shuffle: a worker killed after its maps has them run again elsewhere and the answer is right") {
    shared_nothing_job job("wc");
    auto& coordinator = job.coordinator({"--task-timeout", "2", "--exit-grace", "0.5"});
    // Alone, the first worker runs every map; once it starts on a reduce, every map output is on it.
    auto& first = job.worker(1);
    REQUIRE_MESSAGE(first.wait_for_output("running reduce task", job_limit), job.logs());
    first.kill_now();
    job.worker(2);
    job.worker(3);
    REQUIRE_MESSAGE(coordinator.wait_for(job_limit) == 0, job.logs());
    const auto log = coordinator.output();
    CHECK_MESSAGE(log.find("could not fetch the output of map") != std::string::npos, log);
    CHECK_MESSAGE(log.find("taken for lost") != std::string::npos, log);
    CHECK_MESSAGE(job.outputs() == job.sequential(), job.logs());
  }

  TEST_CASE("mr shuffle: a job service's job on shared-nothing workers lands in its directory and says where maps live") {
    shared_nothing_job job("indexer");
    job.coordinator({}, true);
    for (int i = 1; i <= 3; ++i) job.worker(i, true);
    REQUIRE_MESSAGE(job.submit() == 0, job.logs());
    CHECK_MESSAGE(job.outputs("jobs/1") == job.sequential(), job.logs());
    boost::asio::io_context context;
    mrkv::http::client client(context.get_executor(), mrkv::http::parse_url(job.url()));
    const auto status = mrkv::test::run_until_done(context, client.get("/v1/jobs/1", 10s), 30s);
    REQUIRE(status.ok());
    CHECK(status.body["state"] == "done");
    CHECK(status.body["shuffled_bytes"].get<long long>() > 100'000);
    for (const auto& task : status.body["tasks"]["map"])
      CHECK_MESSAGE(task["output"].get<std::string>().starts_with("http://127.0.0.1:"), task.dump());
    // The job is over: the workers, which stay up, delete its map outputs on their next order.
    const auto no_map_outputs = [&] {
      for (int i = 1; i <= 3; ++i)
        if (has_file_ending(job.worker_dir(i), ".map")) return false;
      return true;
    };
    CHECK_MESSAGE(mrkv::test::poll_until(no_map_outputs, 10s), job.logs());
    CHECK(job.logs().find("of job 1: it is over") != std::string::npos);
  }

  TEST_CASE("mr shuffle: a damaged map output is refused by its worker and reported as gone by the fetcher") {
    temp_dir dir;
    auto app = mrkv::mr::load_application("wc");
    const auto input = sample_inputs()[0];
    mrkv::mr::run_map_task(*app, 0, input, 3, dir.path());
    mrkv::mr::run_map_task(*app, 1, sample_inputs()[1], 3, dir.path());
    const auto path = dir.path() / mrkv::mr::map_output_file_name(1);
    std::string image = read_file(path);
    const auto extent = mrkv::mr::map_output_reader(path).extent(2);
    image[extent.offset + extent.length / 2] ^= 0x20;
    mrkv::mr::write_file_atomically(path, image);

    mrkv::mr::shuffle_store store(dir.path());
    mrkv::http::server_config config;
    config.threads = 1;
    mrkv::http::server server(config, "worker", store.routes());
    const std::string url = "http://127.0.0.1:" + std::to_string(server.start().port());
    boost::asio::io_context context;
    mrkv::mr::fetch_options options;
    options.pause = 10ms;
    mrkv::mr::shuffle_fetcher fetcher(context.get_executor(), options);
    // Partition 0 of both maps is intact.
    auto good = mrkv::test::run_until_done(context, fetcher.partitions("", 0, {url, url}), 30s);
    CHECK_FALSE(good.failed_map);
    CHECK(good.images.size() == 2);
    CHECK(mrkv::mr::intermediate_intact(good.images[1]));
    // Partition 2 of map 1 is not.
    auto bad = mrkv::test::run_until_done(context, fetcher.partitions("", 2, {url, url}), 30s);
    REQUIRE(bad.failed_map);
    CHECK(*bad.failed_map == 1);
    CHECK(bad.answered);
    CHECK_MESSAGE(bad.error.find("checksum mismatch") != std::string::npos, bad.error);
    // A map this worker never ran: gone too, without retries.
    auto missing = mrkv::test::run_until_done(context, fetcher.partitions("", 0, {url, url, url}), 30s);
    REQUIRE(missing.failed_map);
    CHECK(*missing.failed_map == 2);
    CHECK(missing.answered);
    // Nobody listening: not an answer (a slow or dead host), so the coordinator waits for more reports.
    auto silent = mrkv::test::run_until_done(
        context, fetcher.partitions("", 0, {"http://127.0.0.1:" + std::to_string(mrkv::test::unused_port())}), 30s);
    REQUIRE(silent.failed_map);
    CHECK_FALSE(silent.answered);
    server.stop();
    server.wait();
  }
}
