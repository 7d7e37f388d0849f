#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "mr/fixtures.hpp"
#include "mrkv/mr/application.hpp"
#include "mrkv/mr/sequential.hpp"
#include "mrkv/mr/task_files.hpp"
#include "mrkv/mr/task_runner.hpp"

using namespace mrkv::mr;
using mrkv::mr::testing::plugin_path;
using mrkv::mr::testing::read_lines;
using mrkv::mr::testing::sample_inputs;
using mrkv::mr::testing::temp_dir;

namespace {

constexpr int n_reduce = 10;

// Runs every map task and then every reduce task in `dir`, as the distributed job would.
void run_job(application& app, const std::vector<std::string>& inputs, const std::filesystem::path& dir) {
  for (std::size_t m = 0; m < inputs.size(); ++m) run_map_task(app, static_cast<int>(m), inputs[m], n_reduce, dir);
  for (int r = 0; r < n_reduce; ++r) run_reduce_task(app, r, static_cast<int>(inputs.size()), dir);
}

// What the lab's test compares: `sort mr-out* | grep .`
std::vector<std::string> all_output_lines(const std::filesystem::path& dir) {
  std::vector<std::string> lines;
  for (int r = 0; r < n_reduce; ++r)
    for (auto& line : read_lines(dir / output_file_name(r)))
      if (!line.empty()) lines.push_back(std::move(line));
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::vector<std::string> expected_files(int n_map) {
  std::vector<std::string> names;
  for (int m = 0; m < n_map; ++m)
    for (int r = 0; r < n_reduce; ++r) names.push_back(intermediate_file_name(m, r));
  for (int r = 0; r < n_reduce; ++r) names.push_back(output_file_name(r));
  std::sort(names.begin(), names.end());
  return names;
}

std::string message_of(auto&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

void check_matches_sequential(const std::string& app_name) {
  temp_dir dir;
  auto app = load_application(app_name);
  const auto inputs = sample_inputs();
  run_job(*app, inputs, dir.path());
  CHECK(dir.entries() == expected_files(static_cast<int>(inputs.size())));

  temp_dir reference;
  run_sequential(*app, inputs, reference.path() / "mr-out-0");
  const auto expected = read_lines(reference.path() / "mr-out-0");
  CHECK(expected.size() > 0);
  CHECK(all_output_lines(dir.path()) == expected);
}

}  // namespace

TEST_SUITE("mr") {
  TEST_CASE("mr tasks: wc map and reduce tasks equal the sequential run") { check_matches_sequential("wc"); }

  TEST_CASE("mr tasks: indexer map and reduce tasks equal the sequential run") { check_matches_sequential("indexer"); }

  TEST_CASE("mr tasks: a plugin's tasks equal its sequential run") { check_matches_sequential(plugin_path("nocrash")); }

  TEST_CASE("mr tasks: every reduce bucket is written including empty ones") {
    temp_dir dir;
    auto app = load_application(plugin_path("rtiming"));
    run_map_task(*app, 0, sample_inputs()[0], n_reduce, dir.path());
    // "a".."j" land in buckets 2,9,0,5,6,3,4,3,4,1: 7 and 8 get nothing, 3 and 4 get two keys.
    const int expected[n_reduce] = {1, 1, 1, 2, 2, 1, 1, 0, 0, 1};
    for (int r = 0; r < n_reduce; ++r) {
      const std::string image = read_whole_file(dir.path() / intermediate_file_name(0, r));
      std::vector<kv_view> pairs;
      decode_intermediate(image, "mr-0-r", pairs);
      CAPTURE(r);
      CHECK(pairs.size() == static_cast<std::size_t>(expected[r]));
    }
    run_reduce_task(*load_application("wc"), 7, 1, dir.path());
    CHECK(read_whole_file(dir.path() / "mr-out-7").empty());
    run_reduce_task(*load_application("wc"), 3, 1, dir.path());
    CHECK(read_whole_file(dir.path() / "mr-out-3") == "f 1\nh 1\n");
  }

  TEST_CASE("mr tasks: running a task twice rewrites identical files") {
    temp_dir dir;
    auto wc = load_application("wc");
    const auto input = sample_inputs()[1];
    run_map_task(*wc, 4, input, n_reduce, dir.path());
    const std::string first = read_whole_file(dir.path() / "mr-4-5");
    run_map_task(*wc, 4, input, n_reduce, dir.path());
    CHECK(read_whole_file(dir.path() / "mr-4-5") == first);
    CHECK(dir.entries().size() == static_cast<std::size_t>(n_reduce));
  }

  TEST_CASE("mr tasks: a missing input fails the map task and writes nothing") {
    temp_dir dir;
    auto wc = load_application("wc");
    const std::string input = (dir.path() / "../no-such-input.txt").string();
    try {
      run_map_task(*wc, 2, input, n_reduce, dir.path());
      FAIL("expected task_file_error");
    } catch (const task_file_error& e) {
      CHECK(e.why() == task_file_error::kind::missing);
      CHECK(std::string_view(e.what()) == "map task 2: cannot open " + input + ": No such file or directory");
    }
    CHECK(dir.entries().empty());
  }

  TEST_CASE("mr tasks: a missing or corrupt intermediate file fails the reduce task and writes nothing") {
    temp_dir dir;
    auto wc = load_application("wc");
    const auto inputs = sample_inputs();
    run_map_task(*wc, 0, inputs[0], n_reduce, dir.path());
    run_map_task(*wc, 1, inputs[1], n_reduce, dir.path());

    // Map task 2 never ran.
    try {
      run_reduce_task(*wc, 3, 3, dir.path());
      FAIL("expected task_file_error");
    } catch (const task_file_error& e) {
      CHECK(e.why() == task_file_error::kind::missing);
      CHECK(std::string_view(e.what()) == "reduce task 3: cannot open " + (dir.path() / "mr-2-3").string() +
                                              ": No such file or directory");
    }

    // A file cut short, as a writer that bypassed the atomic rename would leave it.
    const std::string image = read_whole_file(dir.path() / "mr-1-3");
    write_file_atomically(dir.path() / "mr-1-3", image.substr(0, image.size() / 2));
    const std::string what = message_of([&] { run_reduce_task(*wc, 3, 2, dir.path()); });
    CHECK(what.starts_with("reduce task 3: corrupt intermediate file " + (dir.path() / "mr-1-3").string() + ": "));

    const auto names = dir.entries();
    CHECK(std::none_of(names.begin(), names.end(), [](const std::string& n) { return n.starts_with("mr-out"); }));
    CHECK(names.size() == 2 * static_cast<std::size_t>(n_reduce));
  }

  TEST_CASE("mr tasks: app errors pass through and impossible task numbers are refused") {
    temp_dir dir;
    auto bad = load_application(plugin_path("bad_reduce"));
    write_file_atomically(dir.path() / "input", "");
    intermediate_encoder enc;
    enc.add("none", "x");
    write_file_atomically(dir.path() / "mr-0-0", enc.finish());
    CHECK_THROWS_AS(run_reduce_task(*bad, 0, 1, dir.path()), app_error);
    CHECK_FALSE(std::filesystem::exists(dir.path() / "mr-out-0"));

    auto wc = load_application("wc");
    const std::string input = (dir.path() / "input").string();
    CHECK_THROWS_AS(run_map_task(*wc, -1, input, n_reduce, dir.path()), std::invalid_argument);
    CHECK_THROWS_AS(run_map_task(*wc, 0, input, 0, dir.path()), std::invalid_argument);
    CHECK_THROWS_AS(run_reduce_task(*wc, -1, 1, dir.path()), std::invalid_argument);
    CHECK_THROWS_AS(run_reduce_task(*wc, 0, -1, dir.path()), std::invalid_argument);
    // No map tasks at all is a valid (empty) job.
    run_reduce_task(*wc, 5, 0, dir.path());
    CHECK(read_whole_file(dir.path() / "mr-out-5").empty());
  }

  TEST_CASE("mr sequential: output format and input errors") {
    temp_dir dir;
    write_file_atomically(dir.path() / "one.txt", "b a\nb");
    write_file_atomically(dir.path() / "two.txt", "C b");
    auto wc = load_application("wc");
    const std::vector<std::string> inputs = {(dir.path() / "one.txt").string(), (dir.path() / "two.txt").string()};
    run_sequential(*wc, inputs, dir.path() / "out");
    CHECK(read_whole_file(dir.path() / "out") == "C 1\na 1\nb 3\n");  // byte order: upper case first

    run_sequential(*wc, {}, dir.path() / "empty");
    CHECK(read_whole_file(dir.path() / "empty").empty());

    CHECK_THROWS_AS(run_sequential(*wc, {(dir.path() / "nope").string()}, dir.path() / "never"), task_file_error);
    CHECK_FALSE(std::filesystem::exists(dir.path() / "never"));
  }
}
