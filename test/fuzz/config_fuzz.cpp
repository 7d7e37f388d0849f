// config_fuzz: the --config FILE loader every mode uses.
//
// What it drives: the input is written as the config file (one temp file per process, rewritten for
// each input), then cli::parse_mode_options() reads it exactly as `mrkv coordinator --config FILE`
// would: the JSON-to-flags translation (config_file_args in src/cli/options.cpp), Boost.Program_options
// over the coordinator's own flags (cli/coordinator_flags.hpp) with the server flags, notify, --log-level. When that succeeds,
// make_server_config() checks the server flags (--listen parsing, the timeouts), with the three file
// flags cleared so that fuzzed paths are never opened (a config file is trusted to name files).
//
// Invariants (abort() or an uncaught exception, which libFuzzer reports as a crash):
//   - a bad file is a cli::usage_error, never any other exception;
//   - when the file parses, a plain string member "listen" or "workdir" and an integer member "reduce"
//     arrive unchanged in the variables they set.
//
// Run: scripts/fuzz.sh, or build/fuzz/test/fuzz/config_fuzz -dict=test/fuzz/config.dict CORPUS_COPY test/fuzz/corpus/config_fuzz
#include "mrkv/cli/coordinator_flags.hpp"
#include "mrkv/cli/options.hpp"
#include "mrkv/common/log.hpp"

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/positional_options.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace po = boost::program_options;
using namespace mrkv;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "\n*** config_fuzz: %s\n", what.c_str());
  std::abort();
}

struct config_file {
  std::string path;
  int fd = -1;

  config_file() {
    path = (std::filesystem::temp_directory_path() / ("mrkv-config-fuzz-" + std::to_string(::getpid()) + ".json"))
               .string();
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fail("cannot create " + path);
  }
  ~config_file() {
    ::close(fd);
    ::unlink(path.c_str());
  }

  void write(const std::uint8_t* data, std::size_t size) {
    if (::ftruncate(fd, 0) != 0) fail("cannot truncate " + path);
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) fail("cannot write " + path);
      done += static_cast<std::size_t>(n);
    }
  }
};

config_file& file() {
  static config_file f;
  return f;
}

void check_member_arrived(const nlohmann::json& doc, const char* key, const std::string& got) {
  auto it = doc.find(key);
  if (it != doc.end() && it->is_string() && it->get<std::string>() != got)
    fail(std::string("'") + key + "' was \"" + it->get<std::string>() + "\" in the file but became \"" + got + "\"");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  log::set_threshold(log::level::off);
  file().write(data, size);
  const cli::mode_info mode{"coordinator", "mrkv coordinator [options] INPUT...", "fuzzed"};
  cli::coordinator_flags f;
  po::positional_options_description positional;
  positional.add("input", -1);
  try {
    auto values = cli::parse_mode_options(mode, {"--config", file().path}, f.flags, &positional);
    if (!values) fail("--help printed from a config file");
    auto server = f.server;
    server.auth_token_file.clear();
    server.tls_cert_file.clear();
    server.tls_key_file.clear();
    (void)cli::make_server_config(server);
  } catch (const cli::usage_error&) {
    log::set_threshold(log::level::off);
    return 0;
  }
  log::set_threshold(log::level::off);
  // It parsed: what the file said must be what the program got.
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto doc = nlohmann::json::parse(text, nullptr, false, true);
  if (!doc.is_object()) fail("a file that is not one JSON object was accepted");
  check_member_arrived(doc, "listen", f.server.listen);
  check_member_arrived(doc, "workdir", f.workdir);
  auto reduce = doc.find("reduce");
  if (reduce != doc.end() && reduce->is_number_integer() && reduce->get<std::int64_t>() != f.n_reduce)
    fail("'reduce' was " + reduce->dump() + " in the file but became " + std::to_string(f.n_reduce));
  return 0;
}
