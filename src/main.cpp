// mrkv: picks the mode named by the first word and hands the rest of the command line to it.
#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"
#include "mrkv/common/log.hpp"

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/parsers.hpp>
#include <boost/program_options/variables_map.hpp>

#include <array>
#include <exception>
#include <iostream>

namespace {

struct mode {
  const char* name;
  const char* summary;
  int (*run)(const mrkv::cli::args&);
};

constexpr std::array modes{
    mode{"coordinator", "MapReduce coordinator: hands out map and reduce tasks over HTTP", mrkv::cli::run_coordinator},
    mode{"worker", "MapReduce worker: runs tasks for a coordinator", mrkv::cli::run_worker},
    mode{"sequential", "MapReduce reference: the same app in one process, one output file", mrkv::cli::run_sequential},
    mode{"status", "print a coordinator's job status", mrkv::cli::run_status},
    mode{"submit", "submit a MapReduce job to a coordinator run as a job service", mrkv::cli::run_submit},
    mode{"kvserver", "linearizable key/value server", mrkv::cli::run_kvserver},
    mode{"kv", "key/value client: get, put, append", mrkv::cli::run_kv},
    mode{"bench", "load generator for the key/value server (ops/s, latency percentiles)", mrkv::cli::run_bench},
    mode{"probe", "health check: exit 0 iff a URL answers 2xx (for container HEALTHCHECKs)", mrkv::cli::run_probe},
};

void print_usage() {
  std::cout << "usage: mrkv MODE [options] [args]\n\n"
               "mrkv runs a MapReduce coordinator or worker, or a linearizable key/value server, all speaking\n"
               "JSON over HTTP. Modes:\n\n";
  for (const auto& m : modes) std::cout << "  " << m.name << std::string(14 - std::string(m.name).size(), ' ') << m.summary << "\n";
  std::cout << "\n'mrkv MODE --help' describes a mode. Global options:\n"
               "  -h [ --help ]     print this help\n"
               "  --version         print the version\n";
}

}  // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  std::vector<std::string> words(argv + 1, argv + argc);
  try {
    if (words.empty() || words[0].rfind('-', 0) == 0) {
      po::options_description global;
      global.add_options()("help,h", "")("version", "");
      po::variables_map values;
      po::store(po::command_line_parser(words).options(global).run(), values);
      if (values.count("version")) {
        std::cout << "mrkv " MRKV_VERSION "\n";
        return 0;
      }
      print_usage();
      return words.empty() ? 2 : 0;
    }
    for (const auto& m : modes) {
      if (words[0] != m.name) continue;
      try {
        return m.run(std::vector<std::string>(words.begin() + 1, words.end()));
      } catch (const mrkv::cli::usage_error& e) {
        // Every message reads "mrkv MODE: what: why"; checks made after parsing don't know the mode.
        std::string what = e.what();
        if (what.rfind(std::string(m.name) + ": ", 0) != 0) what = std::string(m.name) + ": " + what;
        std::cerr << "mrkv " << what << "\n";
        return 2;
      } catch (const po::error&) {
        throw;
      } catch (const std::exception& e) {
        // What went wrong while the mode ran ("cannot listen on ...: address already in use"), named by mode.
        std::cerr << "mrkv " << m.name << ": " << e.what() << "\n";
        return 1;
      }
    }
    std::cerr << "mrkv: unknown mode '" << words[0] << "' (see mrkv --help)\n";
    return 2;
  } catch (const po::error& e) {
    std::cerr << "mrkv: " << e.what() << " (see mrkv --help)\n";
    return 2;
  } catch (const mrkv::cli::usage_error& e) {
    std::cerr << "mrkv " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "mrkv: " << e.what() << "\n";
    return 1;
  }
}
