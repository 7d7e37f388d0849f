// The wire format without sockets: strict request reading (each refusal names its field) and the
// hand-written JSON replies, checked against nlohmann's parser.
#include "mrkv/http/reply.hpp"
#include "mrkv/kv/protocol.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>

namespace mrkv::kv {
namespace {

// The 400 message a body gets, or "" if it is accepted.
std::string refusal(std::string_view body, bool write) {
  try {
    if (write) parse_write_request(body);
    else parse_get_request(body);
    return "";
  } catch (const http::request_error& e) {
    CHECK(e.status() == 400);
    return e.what();
  }
}

bool mentions(const std::string& message, const std::string& field) {
  return message.find("'" + field + "'") != std::string::npos;
}

TEST_SUITE("kv") {

TEST_CASE("protocol: well-formed requests") {
  auto g = parse_get_request(R"({"key": "a\u0000b"})");
  CHECK(g.key == std::string("a\0b", 3));
  auto w = parse_write_request(R"({"key": "k", "value": "v", "client": "c1", "seq": 7})");
  CHECK(w.key == "k");
  CHECK(w.value == "v");
  REQUIRE(w.client);
  CHECK(*w.client == "c1");
  CHECK(w.seq == 7);
  auto anonymous = parse_write_request(R"({"key": "", "value": ""})");
  CHECK_FALSE(anonymous.client);
  CHECK(parse_write_request(R"({"key":"k","value":"v","client":"c","seq":9223372036854775807})").seq ==
        9223372036854775807ull);
}

// What a body reads as: the fields, or the refusal.
std::string reading(std::string_view body, bool write) {
  try {
    if (!write) return "key=" + parse_get_request(body).key;
    auto w = parse_write_request(body);
    return "key=" + w.key + " value=" + w.value + " client=" + (w.client ? *w.client : "(none)") +
           " seq=" + std::to_string(w.seq);
  } catch (const http::request_error& e) {
    return std::string("400 ") + e.what();
  }
}

TEST_CASE("protocol: the plain-body fast path reads every body as the general parser does") {
  // Plain bodies (no escapes) go through a fast scanner; an escape anywhere sends a body to the general
  // parser. Writing the member name "key" as "\u006bey" keeps a body's meaning and forces the general
  // parser, so each body must read the same both ways, accepted or refused.
  auto general = [](std::string body) {
    auto at = body.find("\"key\"");
    REQUIRE(at != std::string::npos);
    return body.replace(at, 5, R"("\u006bey")");
  };
  const char* write_bodies[] = {
      R"({"key":"k","value":"v"})",
      R"( { "key" : "k" , "value" : "v" , "client" : "c" , "seq" : 1 } )",
      "{\n\t\"key\":\"k\",\r\n\"value\":\"v\"}\n",
      R"({"value":"v","key":"k","seq":3,"client":"c"})",
      R"({"key":"","value":""})",
      R"({"key":"k","value":"v","client":"c","seq":9223372036854775807})",
      R"({"key":"k","value":"v","client":"c","seq":9223372036854775808})",
      R"({"key":"k","value":"v","client":"c","seq":99999999999999999999999})",
      R"({"key":"k","value":"v","client":"c","seq":0})",
      R"({"key":"k","value":"v","client":"c","seq":01})",
      R"({"key":"k","value":"v","client":"c","seq":-1})",
      R"({"key":"k","value":"v","client":"c","seq":1.0})",
      R"({"key":"k","value":"v","client":"c","seq":1e3})",
      R"({"key":"k","value":"v","client":"c","seq":"1"})",
      R"({"key":"k","value":"v","client":"","seq":1})",
      R"({"key":"k","value":"v","client":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","seq":1})",
      R"({"key":"k","value":"v","client":"ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","seq":1})",
      R"({"key":"k","value":"v","client":"c"})",
      R"({"key":"k","value":"v","seq":1})",
      R"({"key":"k","value":"v","client":null,"seq":1})",
      R"({"key":"k"})",
      R"({"key":"k","value":5})",
      R"({"key":"k","value":"v","extra":1})",
      R"({"key":"k","value":"v","value":"w"})",
      R"({"key":"k","value":{"nested":"v"}})",
      R"({"key":"k","value":"v"} trailing)",
      R"({"key":"k","value":"v",})",
      R"({"key":"k","value":"v")",
      "{\"key\":\"k\",\"value\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
      "{\"key\":\"k\",\"value\":\"\xff\xfe\"}",
      "{\"key\":\"k\",\"value\":\"\xed\xa0\x80\"}",
      "{\"key\":\"k\",\"value\":\"\xc0\xaf\"}",
      "{\"key\":\"k\",\"value\":\"tab\there\"}",
  };
  for (const char* body : write_bodies) {
    CAPTURE(body);
    CHECK(reading(body, true) == reading(general(body), true));
  }
  const char* get_bodies[] = {
      R"({"key":"k"})", R"(  {"key" :"k"}  )", R"({"key":""})", R"({"key":5})", R"({"key":"k","key":"j"})",
      R"({"key":"k","value":"v"})", R"({"key":"k"}})", R"({"key":["k"]})", "{\"key\":\"\xff\"}",
  };
  for (const char* body : get_bodies) {
    CAPTURE(body);
    CHECK(reading(body, false) == reading(general(body), false));
  }
  CHECK(reading(R"({"key":"k","value":"v","client":"c","seq":7})", true) == "key=k value=v client=c seq=7");
  CHECK(reading(R"({"key":"k","value":"v","client":"c","seq":0})", true).rfind("400 ", 0) == 0);
}

TEST_CASE("protocol: wrong shapes are refused with the field named") {
  CHECK(mentions(refusal(R"({})", false), "key"));
  CHECK(mentions(refusal(R"({"key": 1})", false), "key"));
  CHECK(mentions(refusal(R"({"key": "k", "client": "c"})", false), "client"));  // get takes only a key
  CHECK(mentions(refusal(R"({"key": "k", "value": "v", "extra": 1})", true), "extra"));
  CHECK(mentions(refusal(R"({"value": "v"})", true), "key"));
  CHECK(mentions(refusal(R"({"key": "k"})", true), "value"));
  CHECK(mentions(refusal(R"({"key": "k", "value": 5})", true), "value"));
  CHECK(mentions(refusal(R"({"key": ["k"], "value": "v"})", true), "key"));
  CHECK(mentions(refusal(R"({"key": "k", "value": "v", "client": "c", "seq": -1})", true), "seq"));
  CHECK(mentions(refusal(R"({"key": "k", "value": "v", "client": "c", "seq": 0})", true), "seq"));
  CHECK(mentions(refusal(R"({"key": "k", "value": "v", "client": "c", "seq": 1.5})", true), "seq"));
  CHECK(mentions(refusal(R"({"key": "k", "value": "v", "client": "c", "seq": "1"})", true), "seq"));
  CHECK(mentions(refusal(R"({"key": "k", "value": "v", "client": "c", "seq": 18446744073709551615})", true), "seq"));
  CHECK(mentions(refusal(R"({"key": "k", "value": "v", "client": "c"})", true), "seq"));
  CHECK(mentions(refusal(R"({"key": "k", "value": "v", "seq": 1})", true), "client"));
  CHECK(mentions(refusal(R"({"key": "k", "value": "v", "client": "", "seq": 1})", true), "client"));
  CHECK(mentions(refusal(R"({"key": "k", "value": "v", "client": 12, "seq": 1})", true), "client"));
  std::string long_client(65, 'c');
  CHECK(mentions(refusal(R"({"key":"k","value":"v","client":")" + long_client + R"(","seq":1})", true), "client"));
  CHECK(refusal("[1]", true).find("object") != std::string::npos);
  CHECK(refusal("{\"key\":", true).find("not valid JSON") != std::string::npos);
  CHECK(refusal("", false).find("empty") != std::string::npos);
}

TEST_CASE("protocol: client length counts characters, not bytes") {
  std::string client;
  for (int i = 0; i < 64; ++i) client += "\xc3\xa9";  // 64 x U+00E9: 128 bytes
  CHECK(refusal(R"({"key":"k","value":"v","client":")" + client + R"(","seq":1})", true) == "");
  CHECK(refusal(R"({"key":"k","value":"v","client":")" + client + R"(x","seq":1})", true) != "");
}

TEST_CASE("protocol: replies are JSON that parses back to the same bytes") {
  std::string all;
  for (int c = 1; c < 128; ++c) all.push_back(static_cast<char>(c));
  all += std::string("\0", 1) + "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \"quoted\" back\\slash";
  auto parsed = nlohmann::json::parse(value_reply_body(all));
  CHECK(parsed.at("value").get<std::string>() == all);
  CHECK(value_reply_body("") == R"({"value":""})");
  auto get = nlohmann::json::parse(get_request_body(all));
  CHECK(get.at("key").get<std::string>() == all);
  auto write = parse_write_request(write_request_body(all, all + "v", "me", 3));
  CHECK(write.key == all);
  CHECK(write.value == all + "v");
  CHECK(write.client == std::optional<std::string>("me"));
  CHECK(write.seq == 3);
  CHECK_FALSE(parse_write_request(write_request_body("k", "v", "", 0)).client);
}

TEST_CASE("protocol: UTF-8 validation") {
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("plain ascii \x01"));
  CHECK(valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf"));
  CHECK_FALSE(valid_utf8("\xff"));
  CHECK_FALSE(valid_utf8("\xc3"));              // cut short
  CHECK_FALSE(valid_utf8("\xc0\xaf"));          // overlong
  CHECK_FALSE(valid_utf8("\xe0\x80\xaf"));      // overlong
  CHECK_FALSE(valid_utf8("\xed\xa0\x80"));      // a UTF-16 surrogate
  CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(valid_utf8("\xe2\x82"));
}

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::kv
