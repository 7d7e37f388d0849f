// This file contains the coordinator's command-line flags, declared once for the mode
// (src/cli/coordinator_mode.cpp) and for the config-file fuzzer (test/fuzz/config_fuzz.cpp), which
// must read a config file exactly as `mrkv coordinator --config FILE` does.
#pragma once

#include "mrkv/cli/options.hpp"

#include <boost/program_options/options_description.hpp>

#include <string>
#include <vector>

namespace mrkv::cli {

// The values, with their defaults, and `flags` bound to them (the server flags included; INPUTs are
// the positional "input"). Not copyable: the flags point into the object.
struct coordinator_flags {
  server_flags server;
  int n_reduce = 10;
  double task_timeout = 10;
  double poll_wait = 5;
  double exit_grace = 2;
  double backup_after = 0;
  bool no_backup = false;
  bool keep_intermediate = false;
  std::string workdir = ".";
  std::vector<std::string> inputs;
  std::string tls_ca;
  boost::program_options::options_description flags{"coordinator options"};

  coordinator_flags();
  coordinator_flags(const coordinator_flags&) = delete;
  coordinator_flags& operator=(const coordinator_flags&) = delete;
};

}  // namespace mrkv::cli
