// This file contains the kvserver's wire format (issues 4 and 13, binding): the JSON bodies of POST
// /v1/get, /v1/put, /v1/append, /v1/delete and /v1/list, read strictly, and the replies written without
// building a JSON tree (values may be tens of MiB, so they are moved out of the parsed request and
// escaped straight into the reply).
//
//   POST /v1/get     {"key": K}                                  -> 200 {"value": V, "version": N}
//   POST /v1/put     {"key": K, "value": V, "client": C, "seq": S, "version": N, "lease_ms": L}
//                                                                -> 200 {"version": N}
//   POST /v1/append  {"key": K, "value": V, "client": C, "seq": S, "version": N}
//                                                                -> 200 {"value": OLD, "version": N}
//   POST /v1/delete  {"key": K, "client": C, "seq": S, "version": N} -> 200 {"version": 0}
//   POST /v1/list    {"prefix": P, "after": K, "limit": N}
//                    -> 200 {"items": [{"key": K, "value": V, "version": N}, ...], "more": B}
//   a failed version condition                                   -> 412 {"error": "version mismatch", "version": N}
//
// `client` (1 to 64 characters) and `seq` (an integer >= 1) go together and are optional; so are
// `version` (an integer >= 0: the version the key must have) and `lease_ms` (1 to 2^32-1, put only).
// A list's members are all optional: prefix "", after none (from the first key), limit 100 (1 to
// 10,000). Any other member, a missing key or value, a wrong type, or a bad number is refused with
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

inline constexpr std::size_t default_list_limit = 100;
inline constexpr std::size_t max_list_limit = 10'000;

struct write_request {
  std::string key;
  std::string value;
  std::optional<std::string> client;  // set together with seq
  std::uint64_t seq = 0;
  std::optional<std::uint64_t> version;   // the version the key must have
  std::optional<std::uint32_t> lease_ms;  // put only (the route refuses it on an append)
};

struct list_request {
  std::string prefix;
  std::optional<std::string> after;  // nullopt: from the first key
  std::size_t limit = default_list_limit;
};

get_request parse_get_request(std::string_view body);
write_request parse_write_request(std::string_view body);
// A delete has no value and no lease; the result's value is empty.
write_request parse_delete_request(std::string_view body);
list_request parse_list_request(std::string_view body);

// Appends `text` to `out` as a JSON string literal (quotes included). `text` must be valid UTF-8, which
// holds for anything that came out of a parsed JSON document.
void append_json_string(std::string& out, std::string_view text);

// Whether `text` is well-formed UTF-8 (no overlong forms, no surrogates), i.e. a JSON string can carry it.
bool valid_utf8(std::string_view text);

// {"value":"..."}
std::string value_reply_body(std::string_view value);

// {"value":"...","version":N}, {"version":N} and {"error":"version mismatch","version":N}
std::string versioned_value_reply_body(std::string_view value, std::uint64_t version);
std::string version_reply_body(std::uint64_t version);
std::string version_mismatch_body(std::uint64_t version);

// The request bodies the clerk sends, built the same way.
std::string get_request_body(std::string_view key);
std::string write_request_body(std::string_view key, std::string_view value, std::string_view client,
                               std::uint64_t seq);
// With the optional members of issue 13 (an empty client: no request id). `value` null: a delete.
std::string write_request_body(std::string_view key, const std::string_view* value, std::string_view client,
                               std::uint64_t seq, std::optional<std::uint64_t> version,
                               std::optional<std::uint32_t> lease_ms);
std::string list_request_body(std::string_view prefix, std::optional<std::string_view> after, std::size_t limit);

}  // namespace mrkv::kv
