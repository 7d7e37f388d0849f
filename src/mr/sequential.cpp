#include "mrkv/mr/sequential.hpp"

#include "mrkv/mr/task_files.hpp"
#include "mrkv/mr/task_runner.hpp"

namespace mrkv::mr {

void run_sequential(application& app, const std::vector<std::string>& inputs, const std::filesystem::path& output) {
  // The intermediate encoding doubles as a compact arena for all pairs: one buffer instead of two
  // strings per pair, and the same decode-sort-reduce path as a reduce task.
  intermediate_encoder all;
  for (const std::string& input : inputs) {
    const std::string contents = read_whole_file(input);
    app.map(input, contents, [&](std::string_view key, std::string_view value) { all.add(key, value); });
  }
  const std::string image = all.finish();
  std::vector<kv_view> pairs;
  decode_intermediate(image, "(sequential pairs)", pairs);
  write_file_atomically(output, reduce_pairs(app, pairs));
}

}  // namespace mrkv::mr
