#include "mrkv/cli/coordinator_flags.hpp"

#include <boost/program_options/value_semantic.hpp>

namespace mrkv::cli {

namespace po = boost::program_options;

coordinator_flags::coordinator_flags() {
  server.listen = "127.0.0.1:7700";
  flags.add_options()
      ("reduce", po::value<int>(&n_reduce)->default_value(n_reduce)->value_name("N"), "number of reduce tasks")
      ("task-timeout", po::value<double>(&task_timeout)->default_value(task_timeout)->value_name("SECONDS"),
       "a task not reported done within this goes to another worker")
      ("workdir", po::value<std::string>(&workdir)->default_value(workdir)->value_name("DIR"),
       "the work directory the workers share; relative inputs are relative to it")
      ("poll-wait", po::value<double>(&poll_wait)->default_value(poll_wait)->value_name("SECONDS"),
       "longest a worker's request for work waits before it is told to ask again")
      ("exit-grace", po::value<double>(&exit_grace)->default_value(exit_grace)->value_name("SECONDS"),
       "after the job is done, wait at most this long for every worker to be told to exit")
      ("backup-after", po::value<double>(&backup_after)->value_name("SECONDS"),
       "never back up a task that has run less than this (default: 1); a task is backed up once it has run\n"
       "three times the median of its finished siblings")
      ("no-backup-tasks", po::bool_switch(&no_backup), "never hand out backup copies of straggling tasks")
      ("keep-intermediate", po::bool_switch(&keep_intermediate),
       "leave the map outputs in the work directory when the job is done")
      ("tls-ca", po::value<std::string>(&tls_ca)->value_name("FILE"),
       "fetching reduce outputs from https:// workers (--serve) and https:// inputs, trust this PEM CA "
       "certificate as well as the system's")
      ("input", po::value<std::vector<std::string>>(&inputs), "input files (positional)");
  add_server_flags(flags, server);
}

}  // namespace mrkv::cli
