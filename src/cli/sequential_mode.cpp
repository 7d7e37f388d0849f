#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"
#include "mrkv/common/log.hpp"
#include "mrkv/common/malloc_policy.hpp"
#include "mrkv/mr/application.hpp"
#include "mrkv/mr/sequential.hpp"
#include "mrkv/mr/task_files.hpp"

#include <boost/program_options/value_semantic.hpp>

#include <chrono>
#include <cstdio>

namespace mrkv::cli {

namespace po = boost::program_options;

int run_sequential(const args& words) {
  mode_info mode{"sequential", "mrkv sequential --app APP [--output FILE] INPUT...",
                 "Runs a MapReduce application in this one process, the reference the distributed runs are\n"
                 "checked against: maps every INPUT in order, sorts all pairs by key, reduces each key once\n"
                 "and writes one line 'KEY VALUE' per key to FILE (default mr-out-0), atomically."};
  std::string app_name;
  std::string output = "mr-out-0";
  std::vector<std::string> inputs;
  po::options_description flags("sequential options");
  flags.add_options()
      ("app", po::value<std::string>(&app_name)->required()->value_name("APP"), "wc, indexer, or a plugin path")
      ("output", po::value<std::string>(&output)->default_value(output)->value_name("FILE"), "where the output goes")
      ("input", po::value<std::vector<std::string>>(&inputs), "input files (positional)");
  po::positional_options_description positional;
  positional.add("input", -1);
  if (!parse_mode_options(mode, words, flags, &positional)) return 0;
  if (inputs.empty()) throw usage_error("sequential: no input files (see mrkv sequential --help)");

  keep_freed_memory_for_reuse();
  std::unique_ptr<mr::application> app;
  try {
    app = mr::load_application(app_name);
  } catch (const mr::app_error& e) {
    throw usage_error(std::string("sequential: ") + e.what());
  }
  const auto started = std::chrono::steady_clock::now();
  try {
    mr::run_sequential(*app, inputs, output);
  } catch (const mr::task_file_error& e) {
    // A missing input is a mistake in the command line, like the coordinator's.
    if (e.why() == mr::task_file_error::kind::missing) throw usage_error(std::string("sequential: ") + e.what());
    throw;
  }
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.3f",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  log::info("sequential", app->name() + " over " + std::to_string(inputs.size()) + " inputs -> " + output + " in " +
                              seconds + " s");
  return 0;
}

}  // namespace mrkv::cli
