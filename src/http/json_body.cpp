#include "mrkv/http/json_body.hpp"

#include <algorithm>

namespace mrkv::http {
namespace {

[[noreturn]] void bad(const std::string& message) { throw request_error(400, message); }

const char* type_name(const nlohmann::json& value) { return value.type_name(); }

// Counts bracket depth outside strings; cheap and enough to stop a stack-exhausting document.
bool nesting_within(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

}  // namespace

nlohmann::json parse_json_object(std::string_view body, int max_depth) {
  if (!nesting_within(body, max_depth))
    bad("body nests deeper than " + std::to_string(max_depth) + " levels");
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_discarded()) bad(body.empty() ? "empty body: expected a JSON object" : "body is not valid JSON");
  if (!parsed.is_object()) bad(std::string("body must be a JSON object, not ") + type_name(parsed));
  return parsed;
}

void reject_unknown_fields(const nlohmann::json& object, std::initializer_list<std::string_view> allowed) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      std::string name = it.key().substr(0, 64);
      bad("unknown field '" + name + "'");
    }
  }
}

std::optional<std::string> optional_string(const nlohmann::json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) bad(std::string("field '") + field + "' must be a string, not " + type_name(*it));
  return it->get<std::string>();
}

std::string required_string(const nlohmann::json& object, const char* field) {
  auto value = optional_string(object, field);
  if (!value) bad(std::string("missing field '") + field + "'");
  return std::move(*value);
}

std::optional<std::int64_t> optional_integer(const nlohmann::json& object, const char* field, std::int64_t min,
                                             std::int64_t max) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::nullopt;
  std::string range = " in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (it->is_number_unsigned()) {
    auto v = it->get<std::uint64_t>();
    // nlohmann stores every non-negative literal (0 included) as unsigned, so the minimum is checked here too.
    if (v > static_cast<std::uint64_t>(max) || static_cast<std::int64_t>(v) < min)
      bad(std::string("field '") + field + "' must be an integer" + range);
    return static_cast<std::int64_t>(v);
  }
  if (it->is_number_integer()) {
    auto v = it->get<std::int64_t>();
    if (v < min || v > max) bad(std::string("field '") + field + "' must be an integer" + range);
    return v;
  }
  bad(std::string("field '") + field + "' must be an integer" + range + ", not " + type_name(*it));
}

std::int64_t required_integer(const nlohmann::json& object, const char* field, std::int64_t min, std::int64_t max) {
  auto value = optional_integer(object, field, min, max);
  if (!value) bad(std::string("missing field '") + field + "'");
  return *value;
}

}  // namespace mrkv::http
