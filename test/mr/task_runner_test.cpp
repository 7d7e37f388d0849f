#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "mr/fixtures.hpp"
#include "mrkv/mr/application.hpp"
#include "mrkv/mr/map_output.hpp"
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
    names.push_back(map_output_file_name(m));
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

  TEST_CASE("mr tasks: a plugin's mrkv_combine runs over each map's output and cuts its bytes, not its answer") {
    check_matches_sequential(plugin_path("combining_wc"));
    auto app = load_application(plugin_path("combining_wc"));
    REQUIRE(app->has_combiner());
    const auto input = sample_inputs()[0];
    temp_dir combined;
    const auto with = run_map_task(*app, 0, input, n_reduce, combined.path());
    temp_dir plain;
    ::setenv("MRKV_TEST_NO_COMBINE", "1", 1);
    const auto without = run_map_task(*app, 0, input, n_reduce, plain.path());
    ::unsetenv("MRKV_TEST_NO_COMBINE");
    CHECK(with.at("mrkv").at("combine_input_records") == without.at("mrkv").at("combine_input_records"));
    CHECK(without.at("mrkv").at("map_output_records") == without.at("mrkv").at("combine_input_records"));
    // Far fewer distinct words than words in a novel.
    CHECK(with.at("mrkv").at("map_output_records") * 4 < without.at("mrkv").at("map_output_records"));
    CHECK(with.at("mrkv").at("map_output_bytes") * 2 < without.at("mrkv").at("map_output_bytes"));
    CHECK(std::filesystem::file_size(combined.path() / "mr-0.map") * 2 <
          std::filesystem::file_size(plain.path() / "mr-0.map"));
    for (int r = 0; r < n_reduce; ++r) {
      run_reduce_task(*app, r, 1, combined.path());
      run_reduce_task(*app, r, 1, plain.path());
      CAPTURE(r);
      CHECK(read_whole_file(combined.path() / output_file_name(r)) == read_whole_file(plain.path() / output_file_name(r)));
    }
    // A plugin without the symbol has no combiner and works as before.
    CHECK_FALSE(load_application(plugin_path("nocrash"))->has_combiner());
  }

  TEST_CASE("mr tasks: every reduce bucket is written including empty ones") {
    temp_dir dir;
    auto app = load_application(plugin_path("rtiming"));
    run_map_task(*app, 0, sample_inputs()[0], n_reduce, dir.path());
    // "a".."j" land in buckets 2,9,0,5,6,3,4,3,4,1: 7 and 8 get nothing, 3 and 4 get two keys.
    const int expected[n_reduce] = {1, 1, 1, 2, 2, 1, 1, 0, 0, 1};
    for (int r = 0; r < n_reduce; ++r) {
      const std::string image = map_output_reader(dir.path() / map_output_file_name(0)).read(r);
      std::vector<kv_view> pairs;
      decode_intermediate(image, "partition r of mr-0.map", pairs);
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
    const std::string first = read_whole_file(dir.path() / "mr-4.map");
    run_map_task(*wc, 4, input, n_reduce, dir.path());
    CHECK(read_whole_file(dir.path() / "mr-4.map") == first);
    CHECK(dir.entries() == std::vector<std::string>{"mr-4.map"});
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

  TEST_CASE("mr tasks: a missing or corrupt map output fails the reduce task and writes nothing") {
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
      CHECK(std::string_view(e.what()) == "reduce task 3: cannot open " + (dir.path() / "mr-2.map").string() +
                                              ": No such file or directory");
    }

    // A file cut short, as a writer that bypassed the atomic rename would leave it: its index is gone.
    const auto path = dir.path() / "mr-1.map";
    const std::string image = read_whole_file(path);
    write_file_atomically(path, image.substr(0, image.size() / 2));
    std::string what = message_of([&] { run_reduce_task(*wc, 3, 2, dir.path()); });
    CHECK(what == "reduce task 3: corrupt map output " + path.string() + ": no index trailer");

    // One flipped byte inside partition 3: the index's checksum of the partition catches it.
    const auto extent = [&] {
      write_file_atomically(path, image);
      return map_output_reader(path).extent(3);
    }();
    REQUIRE(extent.length > 40);
    std::string damaged = image;
    damaged[extent.offset + 20] ^= 0x01;
    write_file_atomically(path, damaged);
    what = message_of([&] { run_reduce_task(*wc, 3, 2, dir.path()); });
    CHECK(what == "reduce task 3: corrupt map output " + path.string() + ": partition 3 checksum mismatch");
    // Other partitions of the same file are still good.
    CHECK_NOTHROW(run_reduce_task(*wc, 4, 2, dir.path()));
    std::filesystem::remove(dir.path() / "mr-out-4");

    const auto names = dir.entries();
    CHECK(names == std::vector<std::string>{"mr-0.map", "mr-1.map"});
  }

  TEST_CASE("mr tasks: app errors pass through and impossible task numbers are refused") {
    temp_dir dir;
    auto bad = load_application(plugin_path("bad_reduce"));
    write_file_atomically(dir.path() / "input", "");
    intermediate_encoder enc;
    enc.add("none", "x");
    map_output_writer out(dir.path() / "mr-0.map");
    out.add_partition(enc.finish());
    out.commit();
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
