// Tests of the job file names (mr/job_files.hpp): which names a job clears, and that nothing else goes.
#include "mrkv/mr/job_files.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace mrkv::mr;

TEST_SUITE("mr_coordinator") {

TEST_CASE("job files: outputs and intermediate files by their exact shapes - nothing that only looks alike") {
  for (const auto* name : {"mr-out-0", "mr-out-12"}) CHECK(is_output_file_name(name));
  for (const auto* name : {"mr-out-", "mr-out-1.txt", "mr-out-x", "mr-out-1-2", "xmr-out-1", "mr-out--1"})
    CHECK_FALSE(is_output_file_name(name));
  for (const auto* name : {"mr-0.map", "mr-12-index", "mr-3-4", "mr-3-a2-s0", ".tmp-mr-out-1.4.abc", ".tmp-mr-3.map.7.x"})
    CHECK(is_intermediate_file_name(name));
  for (const auto* name : {"mr-.map", "mr-1.map.bak", "mr-1-", "mr-1-a2", "mr-1-a-s0", "mr-1-a2-s", "mr-out-1",
                           "mr-x-1", ".tmp-other", "mr-1-2-3", "mr-1-index2"})
    CHECK_FALSE(is_intermediate_file_name(name));
}

TEST_CASE("job files: removal takes the kinds asked for, counts them, and leaves directories and other files") {
  const fs::path dir = fs::temp_directory_path() / ("mrkv-job-files-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "mr-out-9");  // a directory of a job file's name is not a job file
  for (const auto* name : {"mr-out-0", "mr-out-1", "mr-0.map", "mr-1-index", "notes.txt"}) std::ofstream(dir / name) << "1234";
  auto names = [&] {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  };
  const auto intermediate = remove_job_files(dir, job_file_kinds::intermediate);
  CHECK(intermediate.files == 2);
  CHECK(intermediate.bytes == 8);
  CHECK(names() == std::vector<std::string>{"mr-out-0", "mr-out-1", "mr-out-9", "notes.txt"});
  const auto outputs = remove_job_files(dir, job_file_kinds::outputs_and_intermediate);
  CHECK(outputs.files == 2);
  CHECK(outputs.first_name.starts_with("mr-out-"));
  CHECK(names() == std::vector<std::string>{"mr-out-9", "notes.txt"});
  CHECK(remove_job_files(dir, job_file_kinds::outputs_and_intermediate).files == 0);
  fs::remove_all(dir);
}

}  // TEST_SUITE
