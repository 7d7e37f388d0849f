#include "mrkv/cli/app_flags.hpp"
#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"
#include "mrkv/common/log.hpp"
#include "mrkv/common/malloc_policy.hpp"
#include "mrkv/mr/application.hpp"
#include "mrkv/mr/sequential.hpp"
#include "mrkv/mr/task_files.hpp"

#include <boost/program_options/value_semantic.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>

namespace mrkv::cli {

namespace po = boost::program_options;

namespace {

long peak_rss_mib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;  // KiB on Linux
}

}  // namespace

int run_sequential(const args& words) {
  const std::string help_summary =
      std::string("Runs a MapReduce application in this one process, the reference the distributed runs are\n"
                  "checked against: maps every INPUT in order, sorts all pairs by key, reduces each key once\n"
                  "and writes one line 'KEY VALUE' per key to FILE (default mr-out-0), atomically. A streaming\n"
                  "app's reducer writes FILE's lines itself; its map tasks are numbered 0, 1, ... in INPUT\n"
                  "order, and their spills go to a scratch directory beside FILE, removed at the end.\n") +
      streaming_help;
  mode_info mode{"sequential",
                 "mrkv sequential (--app APP | --mapper CMD --reducer CMD [--combiner CMD]) [--output FILE] INPUT...",
                 help_summary};
  app_flags app_settings;
  std::string output = "mr-out-0";
  std::vector<std::string> inputs;
  po::options_description flags("sequential options");
  flags.add_options()
      ("output", po::value<std::string>(&output)->default_value(output)->value_name("FILE"), "where the output goes")
      ("input", po::value<std::vector<std::string>>(&inputs), "input files (positional)");
  add_app_flags(flags, app_settings);
  po::positional_options_description positional;
  positional.add("input", -1);
  if (!parse_mode_options(mode, words, flags, &positional)) return 0;
  if (inputs.empty()) throw usage_error("sequential: no input files (see mrkv sequential --help)");

  const auto spec = make_app_spec(app_settings, "sequential");
  keep_freed_memory_for_reuse();
  std::unique_ptr<mr::task_executor> app;
  try {
    app = mr::make_executor(spec);
  } catch (const mr::app_error& e) {
    throw usage_error(std::string("sequential: ") + e.what());
  }
  const auto started = std::chrono::steady_clock::now();
  mr::counters counts;
  try {
    counts = app->sequential(inputs, output);
  } catch (const mr::command_error& e) {
    log::error("sequential", e.what());
    return 1;
  } catch (const mr::task_file_error& e) {
    // A missing input is a mistake in the command line, like the coordinator's.
    if (e.why() == mr::task_file_error::kind::missing) throw usage_error(std::string("sequential: ") + e.what());
    throw;
  }
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.3f",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  log::info("sequential", app->name() + " over " + std::to_string(inputs.size()) + " inputs -> " + output + " in " +
                              seconds + " s, peak resident memory " + std::to_string(peak_rss_mib()) + " MiB");
  for (const auto& [group, names] : counts)
    for (const auto& [name, value] : names)
      log::info("sequential", "counter " + group + "," + name + " = " + std::to_string(value));
  return 0;
}

}  // namespace mrkv::cli
