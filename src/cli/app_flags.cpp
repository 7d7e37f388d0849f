#include "mrkv/cli/app_flags.hpp"

#include "mrkv/cli/options.hpp"

#include <boost/program_options/value_semantic.hpp>

#include <cmath>

namespace mrkv::cli {

namespace po = boost::program_options;

const char* const streaming_help =
    "\n"
    "Streaming apps (Hadoop Streaming's protocol): --mapper CMD --reducer CMD [--combiner CMD] in place\n"
    "of --app. Each CMD is one shell command line, run through /bin/sh -c in the work directory (pipes\n"
    "and quotes allowed).\n"
    "  mapper    runs once per map task with the input file on standard input and MRKV_INPUT_FILE (the\n"
    "            input as the coordinator names it), MRKV_TASK (map task number) and MRKV_ATTEMPT in its\n"
    "            environment. Each line it writes is a record: key, TAB, value (no TAB: an empty value).\n"
    "  reducer   runs once per reduce task with that partition's records on standard input, one\n"
    "            'key<TAB>value' line each, sorted by key (byte order), so the values of a key come\n"
    "            together; it finds the key boundaries itself. Every line it writes is a line of\n"
    "            mr-out-R, exactly as written.\n"
    "  combiner  the reducer's protocol over one map task's records before they are written (once per\n"
    "            sort-buffer spill); its lines are records again.\n"
    "A command that exits non-zero or is killed by a signal fails the task attempt with its exit status\n"
    "and the last lines of its standard error (in the log and the job's status); one still running at the\n"
    "task timeout is killed. Standard error lines 'reporter:counter:GROUP,NAME,AMOUNT' add to counters\n"
    "shown by `mrkv status`, summed over the successful attempts. Records stream through pipes and\n"
    "sorted spill files: a map output larger than memory is fine.\n";

void add_app_flags(po::options_description& flags, app_flags& v) {
  flags.add_options()
      ("app", po::value<std::string>(&v.app)->value_name("APP"), "wc, indexer, or a plugin path")
      ("mapper", po::value<std::string>(&v.mapper)->value_name("CMD"), "a streaming app's mapper (see below)")
      ("reducer", po::value<std::string>(&v.reducer)->value_name("CMD"), "a streaming app's reducer")
      ("combiner", po::value<std::string>(&v.combiner)->value_name("CMD"), "a streaming app's combiner (optional)")
      ("sort-buffer", po::value<double>(&v.sort_buffer_mib)->default_value(v.sort_buffer_mib)->value_name("MIB"),
       "a streaming map task sorts and spills its records to disk each time they fill this much memory");
}

mr::app_spec make_app_spec(const app_flags& v, std::string_view mode) {
  const std::string prefix = std::string(mode) + ": ";
  const bool streaming = !v.mapper.empty() || !v.reducer.empty() || !v.combiner.empty();
  if (!v.app.empty() && streaming)
    throw usage_error(prefix + "--app and --mapper/--reducer/--combiner: give one kind of app, not both");
  if (v.app.empty() && !streaming)
    throw usage_error(prefix + "no app: give --app APP, or --mapper CMD --reducer CMD (see --help)");
  mr::app_spec spec;
  if (!streaming) {
    spec.app = v.app;
    return spec;
  }
  if (v.mapper.empty()) throw usage_error(prefix + "--reducer needs a --mapper");
  if (v.reducer.empty()) throw usage_error(prefix + "--mapper needs a --reducer");
  if (!std::isfinite(v.sort_buffer_mib) || v.sort_buffer_mib < 1 || v.sort_buffer_mib > 65536)
    throw usage_error(prefix + "--sort-buffer: must be between 1 and 65536 MiB");
  spec.stream.mapper = v.mapper;
  spec.stream.reducer = v.reducer;
  spec.stream.combiner = v.combiner;
  spec.stream.sort_buffer = static_cast<std::size_t>(v.sort_buffer_mib * 1024 * 1024);
  return spec;
}

}  // namespace mrkv::cli
