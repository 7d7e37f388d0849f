// This file contains the names of the files a MapReduce job leaves in a work directory, and their
// removal: a job's outputs ("mr-out-R"), its intermediate files (a map's output "mr-M.map", a
// streaming map's index "mr-M-index" and spills "mr-M-aA-sK", the lab's "mr-M-R"), and the hidden
// temporary files of writes that never finished (".tmp-NAME.*", task_files.hpp). Only these exact
// shapes are touched, so a user's own files beside them never are.
//
// A one-job coordinator clears what an earlier job left before it starts (a job with fewer reduce
// tasks would otherwise leave the earlier mr-out-R files beside its own, and `cat mr-out-*` would mix
// them), and removes the intermediate files when its job is done; a job service does the latter in
// each job's directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace mrkv::mr {

bool is_output_file_name(std::string_view name) noexcept;
bool is_intermediate_file_name(std::string_view name) noexcept;

struct removed_files {
  std::size_t files = 0;
  std::uintmax_t bytes = 0;
  std::string first_name;  // of the first one removed, for a log line; "" when none
};

enum class job_file_kinds { intermediate, outputs_and_intermediate };

// Removes the job files of those kinds directly in `dir` (not in subdirectories). A file that vanishes
// meanwhile is skipped; any other failure throws std::filesystem::filesystem_error.
removed_files remove_job_files(const std::filesystem::path& dir, job_file_kinds kinds);

}  // namespace mrkv::mr
