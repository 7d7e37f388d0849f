#include "mrkv/http/json_body.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace mrkv::http;

namespace {

// The status and message a reader's request_error carries.
template <class F>
std::pair<unsigned, std::string> refusal(F&& f) {
  try {
    f();
  } catch (const request_error& e) {
    return {e.status(), e.what()};
  }
  return {0, ""};
}

}  // namespace

TEST_SUITE("http") {
  TEST_CASE("JSON bodies: shape errors name the field") {
    CHECK(refusal([] { parse_json_object("{"); }).second == "body is not valid JSON");
    CHECK(refusal([] { parse_json_object(""); }).first == 400);
    CHECK(refusal([] { parse_json_object("[1]"); }).second == "body must be a JSON object, not array");
    std::string deep(1000, '[');
    CHECK(refusal([&] { parse_json_object(deep); }).second.find("nests deeper") != std::string::npos);
    // Brackets inside strings don't count as nesting.
    CHECK(parse_json_object(R"({"k":")" + std::string(500, '[') + R"("})").size() == 1);

    auto body = parse_json_object(R"({"key":"a","seq":3,"neg":-1,"f":1.5,"n":null,"s":7})");
    CHECK(required_string(body, "key") == "a");
    CHECK(refusal([&] { required_string(body, "value"); }).second == "missing field 'value'");
    CHECK(refusal([&] { required_string(body, "s"); }).second == "field 's' must be a string, not number");
    CHECK(required_integer(body, "seq", 1, 100) == 3);
    CHECK(refusal([&] { required_integer(body, "neg", 1, 100); }).second.find("'neg' must be an integer") != std::string::npos);
    CHECK(refusal([&] { required_integer(body, "f", 1, 100); }).second.find("not number") != std::string::npos);
    CHECK_FALSE(optional_string(body, "n").has_value());
    CHECK(refusal([&] { reject_unknown_fields(body, {"key", "seq"}); }).second == "unknown field 'f'");
  }
}
