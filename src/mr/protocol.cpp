#include "mrkv/mr/protocol.hpp"

#include "mrkv/http/json_body.hpp"
#include "mrkv/http/reply.hpp"

#include <climits>

namespace mrkv::mr::protocol {

namespace {

[[noreturn]] void bad(const std::string& message) { throw http::request_error(400, message); }

// Printable ASCII only: these names end up in logs and in the status page.
std::string checked_name(std::string value, const char* field, bool may_be_empty) {
  if (value.empty() && !may_be_empty) bad(std::string("field '") + field + "' must not be empty");
  if (value.size() > max_name_length)
    bad(std::string("field '") + field + "' is longer than " + std::to_string(max_name_length) + " bytes");
  for (char c : value)
    if (c < 0x21 || c > 0x7e) bad(std::string("field '") + field + "' must be printable ASCII without spaces");
  return value;
}

}  // namespace

std::string_view to_string(action a) noexcept {
  switch (a) {
    case action::map: return "map";
    case action::reduce: return "reduce";
    case action::wait: return "wait";
    case action::exit: return "exit";
    default: return "unknown";
  }
}

nlohmann::json encode(const next_request& r) {
  nlohmann::json j{{"worker", r.worker}, {"host", r.host}};
  if (r.wait) j["wait_ms"] = r.wait->count();
  return j;
}

nlohmann::json encode(const done_request& r) {
  return {{"worker", r.worker}, {"kind", to_string(r.kind)}, {"task", r.task}, {"attempt", r.attempt}};
}

nlohmann::json encode(const order& o) {
  nlohmann::json j{{"action", to_string(o.what)}};
  if (o.what == action::map || o.what == action::reduce) {
    j["task"] = o.task;
    j["attempt"] = o.attempt;
    j["backup"] = o.backup;
  }
  if (o.what == action::map) {
    j["input"] = o.input;
    j["n_reduce"] = o.n_reduce;
  }
  if (o.what == action::reduce) j["n_map"] = o.n_map;
  return j;
}

order order_for(const assignment& a, int n_map, int n_reduce) {
  order o;
  o.what = a.kind == task_kind::map ? action::map : action::reduce;
  o.task = a.task;
  o.attempt = a.attempt;
  o.backup = a.backup;
  o.input = a.input;
  o.n_map = n_map;
  o.n_reduce = n_reduce;
  return o;
}

next_request decode_next_request(const nlohmann::json& body) {
  http::reject_unknown_fields(body, {"worker", "host", "wait_ms"});
  next_request r;
  r.worker = checked_name(http::required_string(body, "worker"), "worker", false);
  r.host = checked_name(http::optional_string(body, "host").value_or(""), "host", true);
  if (auto ms = http::optional_integer(body, "wait_ms", 0, 3'600'000)) r.wait = std::chrono::milliseconds(*ms);
  return r;
}

done_request decode_done_request(const nlohmann::json& body) {
  http::reject_unknown_fields(body, {"worker", "kind", "task", "attempt"});
  done_request r;
  r.worker = checked_name(http::required_string(body, "worker"), "worker", false);
  auto kind = parse_task_kind(http::required_string(body, "kind"));
  if (!kind) bad("field 'kind' must be \"map\" or \"reduce\"");
  r.kind = *kind;
  // Out-of-range task numbers are the table's business (404), not a malformed body.
  r.task = static_cast<int>(http::required_integer(body, "task", INT_MIN, INT_MAX));
  r.attempt = static_cast<int>(http::required_integer(body, "attempt", INT_MIN, INT_MAX));
  return r;
}

order decode_order(const nlohmann::json& body) {
  order o;
  auto what = http::required_string(body, "action");
  if (what == "wait") {
    o.what = action::wait;
  } else if (what == "exit") {
    o.what = action::exit;
  } else if (what == "map" || what == "reduce") {
    o.what = what == "map" ? action::map : action::reduce;
    o.task = static_cast<int>(http::required_integer(body, "task", 0, INT_MAX));
    o.attempt = static_cast<int>(http::required_integer(body, "attempt", 1, INT_MAX));
    auto backup = body.find("backup");
    o.backup = backup != body.end() && backup->is_boolean() && backup->get<bool>();
    if (o.what == action::map) {
      o.input = http::required_string(body, "input");
      o.n_reduce = static_cast<int>(http::required_integer(body, "n_reduce", 1, INT_MAX));
    } else {
      o.n_map = static_cast<int>(http::required_integer(body, "n_map", 1, INT_MAX));
    }
  } else {
    bad("unknown action '" + what.substr(0, 32) + "'");
  }
  return o;
}

}  // namespace mrkv::mr::protocol
