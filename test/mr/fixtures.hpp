// This file contains helpers for the MapReduce tests: a scratch directory per test, the lab's sample
// inputs, and reading output files back as lines.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "mrkv/mr/task_files.hpp"
#include "support/temp_dir.hpp"

namespace mrkv::mr::testing {

// A scratch directory per test (support/temp_dir.hpp).
using mrkv::test::temp_dir;

// The eight lab texts, as absolute paths in byte order.
inline std::vector<std::string> sample_inputs() {
  std::vector<std::string> inputs;
  for (const auto& e : std::filesystem::directory_iterator(MRKV_SAMPLE_DATA_DIR)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("pg-") && name.ends_with(".txt")) inputs.push_back(e.path().string());
  }
  std::sort(inputs.begin(), inputs.end());
  return inputs;
}

inline std::string plugin_path(const std::string& name) { return std::string(MRKV_PLUGIN_DIR) + "/" + name + ".so"; }

// The lines of a file, without their "\n".
inline std::vector<std::string> read_lines(const std::filesystem::path& path) {
  const std::string text = read_whole_file(path);
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace mrkv::mr::testing
