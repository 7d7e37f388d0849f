// This file contains the flags that name a MapReduce app, shared by `mrkv worker` and `mrkv
// sequential`: --app APP, or --mapper CMD --reducer CMD [--combiner CMD] for a streaming app (one
// executable per role, Hadoop Streaming's line protocol; see mrkv/mr/streaming.hpp), and the help text
// that explains that protocol.
#pragma once

#include "mrkv/mr/task_executor.hpp"

#include <boost/program_options/options_description.hpp>

#include <string>
#include <string_view>

namespace mrkv::cli {

struct app_flags {
  std::string app;
  std::string mapper;
  std::string reducer;
  std::string combiner;
  double sort_buffer_mib = 64;
};

void add_app_flags(boost::program_options::options_description& flags, app_flags& values);

// The app the flags name. usage_error (exit 2) for both --app and --mapper, neither, a streaming app
// without its reducer or mapper, or a sort buffer out of range.
mr::app_spec make_app_spec(const app_flags& values, std::string_view mode);

// A paragraph for --help: the streaming protocol.
extern const char* const streaming_help;

}  // namespace mrkv::cli
