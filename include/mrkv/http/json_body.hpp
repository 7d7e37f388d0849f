// Reading JSON request bodies that come from the network: every failure is a request_error(400) whose
// message names the field and what was wrong, so handlers read fields in one line each.
#pragma once

#include "mrkv/http/reply.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace mrkv::http {

// Parses a body that must be one JSON object. Nesting deeper than `max_depth` is refused before
// nlohmann's recursive parser sees it, so hostile input can't exhaust the stack.
nlohmann::json parse_json_object(std::string_view body, int max_depth = 64);

// Refuses any member whose name is not in `allowed` ("unknown field 'x'").
void reject_unknown_fields(const nlohmann::json& object, std::initializer_list<std::string_view> allowed);

std::string required_string(const nlohmann::json& object, const char* field);
std::optional<std::string> optional_string(const nlohmann::json& object, const char* field);
// Integers in [min, max]; a float, a string or an out-of-range number is refused.
std::int64_t required_integer(const nlohmann::json& object, const char* field, std::int64_t min, std::int64_t max);
std::optional<std::int64_t> optional_integer(const nlohmann::json& object, const char* field, std::int64_t min,
                                             std::int64_t max);

}  // namespace mrkv::http
