// Linearizability of a key/value history recorded outside this process, one JSON object per line:
//   {"client": 2, "op": "append", "key": "k0", "input": "c2.5;", "output": "c3.1;", "ok": true,
//    "call_ns": 1700000000000000000, "return_ns": 1700000000012345678}
// "output" is the get value or append's old value; "ok": false marks a call whose reply never came
// (the clerk gave up), which is pending: it may have taken effect at any time after its call, or never.
// scripts/netns-test.sh writes such a file from `mrkv kv` processes on four network namespaces and runs
//   MRKV_HISTORY_FILE=FILE mrkv_tests -tc='history file*'
// Without MRKV_HISTORY_FILE this case checks built-in histories, a legal and an illegal one, so it always
// tests the reader and the checker.
#include "support/linearizability.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <istream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace mrkv::test {
namespace {

using namespace std::chrono_literals;

kv_operation::kind parse_kind(const std::string& op) {
  if (op == "get") return kv_operation::kind::get;
  if (op == "put") return kv_operation::kind::put;
  if (op == "append") return kv_operation::kind::append;
  throw std::invalid_argument("unknown op '" + op + "'");
}

std::vector<kv_operation> read_history(std::istream& in) {
  std::vector<kv_operation> history;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      kv_operation op;
      op.client = j.at("client").get<int>();
      op.op = parse_kind(j.at("op").get<std::string>());
      op.key = j.at("key").get<std::string>();
      op.input = j.value("input", std::string());
      op.call_ns = j.at("call_ns").get<std::int64_t>();
      if (j.at("ok").get<bool>()) {
        op.output = j.value("output", std::string());
        op.output_known = true;
        op.return_ns = j.at("return_ns").get<std::int64_t>();
      }
      history.push_back(std::move(op));
    } catch (const std::exception& e) {
      throw std::runtime_error("history line " + std::to_string(number) + ": " + e.what() + ": " + line);
    }
  }
  return history;
}

check_result check_text(const std::string& text) {
  std::istringstream in(text);
  return check_linearizable(read_history(in), 10s);
}

// Two clients appending to one key, a pending append that did take effect, and a reader.
constexpr const char* legal_history = R"(
{"client":1,"op":"append","key":"k","input":"a;","output":"","ok":true,"call_ns":100,"return_ns":200}
{"client":2,"op":"append","key":"k","input":"b;","output":"a;","ok":true,"call_ns":150,"return_ns":300}
{"client":3,"op":"append","key":"k","input":"c;","ok":false,"call_ns":310}
{"client":1,"op":"get","key":"k","output":"a;b;c;","ok":true,"call_ns":400,"return_ns":500}
{"client":2,"op":"put","key":"other","input":"x","ok":true,"call_ns":400,"return_ns":450}
{"client":3,"op":"get","key":"other","output":"x","ok":true,"call_ns":460,"return_ns":470}
)";

// The append of "b;" shows up twice: executed once more than it was asked for.
constexpr const char* duplicated_append = R"(
{"client":1,"op":"append","key":"k","input":"a;","output":"","ok":true,"call_ns":100,"return_ns":200}
{"client":2,"op":"append","key":"k","input":"b;","output":"a;","ok":true,"call_ns":250,"return_ns":300}
{"client":1,"op":"get","key":"k","output":"a;b;b;","ok":true,"call_ns":400,"return_ns":500}
)";

// A read that misses an append completed before it began (stale read).
constexpr const char* stale_read = R"(
{"client":1,"op":"append","key":"k","input":"a;","output":"","ok":true,"call_ns":100,"return_ns":200}
{"client":2,"op":"get","key":"k","output":"","ok":true,"call_ns":300,"return_ns":400}
)";

TEST_SUITE("kv") {

TEST_CASE("history file: a recorded key/value history is linearizable") {
  if (const char* env = std::getenv("MRKV_HISTORY_FILE"); env && *env) {
    const std::string path = env;
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot open MRKV_HISTORY_FILE " << path);
    const auto history = read_history(in);
    REQUIRE_MESSAGE(!history.empty(), "MRKV_HISTORY_FILE " << path << " holds no operations");
    std::size_t pending = 0;
    for (const auto& op : history) pending += op.output_known ? 0 : 1;
    const auto result = check_linearizable(history, 120s);
    MESSAGE(history.size() << " operations (" << pending << " pending) from " << path << ": "
                           << to_string(result.result));
    CHECK_MESSAGE(result.ok(), "key " << result.key << ": " << result.description);
    return;
  }
  CHECK(check_text(legal_history).ok());
  CHECK(check_text(duplicated_append).illegal());
  CHECK(check_text(stale_read).illegal());
  CHECK_THROWS_AS(check_text(R"({"client":1,"op":"cas","key":"k","ok":true,"call_ns":1,"return_ns":2})"),
                  std::runtime_error);
}

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::test
