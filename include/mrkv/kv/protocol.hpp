// This file contains the kvserver's wire format (issue 4, binding): the JSON bodies of POST /v1/get,
// /v1/put and /v1/append, read strictly, and the replies written without building a JSON tree (values
// may be tens of MiB, so they are moved out of the parsed request and escaped straight into the reply).
//
//   POST /v1/get     {"key": K}                                  -> 200 {"value": V}
//   POST /v1/put     {"key": K, "value": V, "client": C, "seq": S} -> 200 {}
//   POST /v1/append  {"key": K, "value": V, "client": C, "seq": S} -> 200 {"value": OLD}
//
// `client` (1 to 64 characters) and `seq` (an integer >= 1) go together and are optional. Any other
// member, a missing key or value, a wrong type, or a bad client or seq is refused with
// http::request_error(400) naming the field. Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mrkv::kv {

inline constexpr std::size_t max_client_length = 64;  // characters (UTF-8 code points)

struct get_request {
  std::string key;
};

struct write_request {
  std::string key;
  std::string value;
  std::optional<std::string> client;  // set together with seq
  std::uint64_t seq = 0;
};

get_request parse_get_request(std::string_view body);
write_request parse_write_request(std::string_view body);

// Appends `text` to `out` as a JSON string literal (quotes included). `text` must be valid UTF-8, which
// holds for anything that came out of a parsed JSON document.
void append_json_string(std::string& out, std::string_view text);

// Whether `text` is well-formed UTF-8 (no overlong forms, no surrogates), i.e. a JSON string can carry it.
bool valid_utf8(std::string_view text);

// {"value":"..."}
std::string value_reply_body(std::string_view value);

// The request bodies the clerk sends, built the same way.
std::string get_request_body(std::string_view key);
std::string write_request_body(std::string_view key, std::string_view value, std::string_view client,
                               std::uint64_t seq);

}  // namespace mrkv::kv
