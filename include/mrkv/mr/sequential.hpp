// This file contains the sequential reference implementation of a MapReduce job (the lab's
// mrsequential): the expected output the distributed runs are compared with.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "mrkv/mr/application.hpp"

namespace mrkv::mr {

// Maps every input in order (each file name passed to map exactly as given), sorts all pairs by key,
// reduces once per distinct key and atomically writes `output` with one "key output\n" line per key,
// in byte order of keys. Throws like the tasks in task_runner.hpp.
void run_sequential(application& app, const std::vector<std::string>& inputs, const std::filesystem::path& output);

}  // namespace mrkv::mr
