// Flags, --config files and their precedence, as every mode parses them.
#include "mrkv/cli/options.hpp"
#include "mrkv/common/log.hpp"

#include <boost/program_options/value_semantic.hpp>
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

namespace po = boost::program_options;
using mrkv::cli::usage_error;

namespace {

struct temp_file {
  std::filesystem::path path;
  explicit temp_file(const std::string& text)
      : path(std::filesystem::temp_directory_path() / ("mrkv-options-" + std::to_string(::getpid()) + ".json")) {
    std::ofstream(path) << text;
  }
  ~temp_file() { std::filesystem::remove(path); }
};

const mrkv::cli::mode_info mode{"test", "mrkv test", "a test mode"};

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("server flags from the command line and from a config file; flags win") {
    temp_file config(R"({"// listen": "a comment member", "listen": "0.0.0.0:9000", "threads": 3,
                         "read-timeout": 2.5, "log-level": "warn"})");
    mrkv::cli::server_flags values;
    values.listen = "127.0.0.1:7800";
    po::options_description flags;
    mrkv::cli::add_server_flags(flags, values);
    auto parsed = mrkv::cli::parse_mode_options(mode, {"--threads", "5", "--config", config.path.string()}, flags);
    REQUIRE(parsed.has_value());
    auto server = mrkv::cli::make_server_config(values);
    CHECK(server.host == "0.0.0.0");
    CHECK(server.port == 9000);
    CHECK(server.threads == 5);
    CHECK(server.read_timeout == std::chrono::milliseconds(2500));
    CHECK(server.idle_timeout == std::chrono::milliseconds(60000));
    mrkv::log::set_threshold(mrkv::log::level::info);
  }

  TEST_CASE("bad flags, values and config files are usage errors") {
    mrkv::cli::server_flags values;
    values.listen = "127.0.0.1:7800";
    po::options_description flags;
    mrkv::cli::add_server_flags(flags, values);
    CHECK_THROWS_AS(mrkv::cli::parse_mode_options(mode, {"--bogus"}, flags), usage_error);
    po::options_description flags2;
    mrkv::cli::add_server_flags(flags2, values);
    CHECK_THROWS_AS(mrkv::cli::parse_mode_options(mode, {"--threads", "many"}, flags2), usage_error);
    po::options_description flags3;
    mrkv::cli::add_server_flags(flags3, values);
    CHECK_THROWS_AS(mrkv::cli::parse_mode_options(mode, {"--config", "/nonexistent/x.json"}, flags3), usage_error);
    temp_file unknown(R"({"no-such-flag": 1})");
    po::options_description flags4;
    mrkv::cli::add_server_flags(flags4, values);
    CHECK_THROWS_AS(mrkv::cli::parse_mode_options(mode, {"--config", unknown.path.string()}, flags4), usage_error);

    values.listen = "localhost:80";
    CHECK_THROWS_AS(mrkv::cli::make_server_config(values), usage_error);
    values.listen = "127.0.0.1:1";
    values.read_timeout = -1;
    CHECK_THROWS_AS(mrkv::cli::make_server_config(values), usage_error);
  }

  TEST_CASE("usage messages name the mode, the file, the member, the position and the OS reason") {
    auto message_of = [](std::vector<std::string> args, const char* file_text = nullptr) {
      std::optional<temp_file> file;
      if (file_text) {
        file.emplace(file_text);
        args.push_back("--config");
        args.push_back(file->path.string());
      }
      mrkv::cli::server_flags values;
      values.listen = "127.0.0.1:7800";
      po::options_description flags("test options");
      mrkv::cli::add_server_flags(flags, values);
      try {
        mrkv::cli::parse_mode_options(mode, args, flags);
      } catch (const usage_error& e) {
        return std::string(e.what());
      }
      return std::string("no error");
    };
    CHECK(message_of({"--threads", "-1"}) == "--threads must not be negative");
    CHECK(message_of({"stray"}).find("test: too many positional options") == 0);
    CHECK(message_of({"--config", "/nonexistent/x.json"}) ==
          "test: cannot read config file /nonexistent/x.json: No such file or directory");
    const auto bad_json = message_of({}, "{\n  \"threads\": 2,\n  \"listen\" \"x\"\n}");
    CHECK(bad_json.find("is not valid JSON: line 3, column 14: syntax error") != std::string::npos);
    // Found by the config fuzzer: an overflowing number escaped as an uncaught nlohmann exception.
    const auto huge = message_of({}, R"({"threads": 1e999})");
    CHECK(huge.find("cannot be read: number overflow parsing '1e999'") != std::string::npos);
    const auto bad_member = message_of({}, R"({"threads": "many"})");
    CHECK(bad_member.find("test: config file ") == 0);
    CHECK(bad_member.find("threads") != std::string::npos);
  }

  TEST_CASE("--help leaves out the flags behind positional arguments") {
    po::options_description flags("test options");
    std::vector<std::string> inputs;
    flags.add_options()("input", po::value<std::vector<std::string>>(&inputs), "input files (positional)")(
        "reduce", po::value<int>(), "reduce tasks");
    po::positional_options_description positional;
    positional.add("input", -1);
    std::stringstream captured;
    auto* old = std::cout.rdbuf(captured.rdbuf());
    auto parsed = mrkv::cli::parse_mode_options(mode, {"--help"}, flags, &positional);
    std::cout.rdbuf(old);
    CHECK_FALSE(parsed.has_value());
    CHECK(captured.str().find("--reduce") != std::string::npos);
    CHECK(captured.str().find("--input") == std::string::npos);
  }
}
