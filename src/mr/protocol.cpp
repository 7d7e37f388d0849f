#include "mrkv/mr/protocol.hpp"

#include "mrkv/http/json_body.hpp"
#include "mrkv/http/reply.hpp"

#include <charconv>
#include <climits>
#include <cstdint>
#include <tuple>

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

counters decode_counters(const nlohmann::json& value) {
  if (!value.is_object()) bad("field 'counters' must be an object of groups");
  counters out;
  std::size_t n = 0;
  for (const auto& [group, names] : value.items()) {
    if (group.empty() || group.size() > max_name_length) bad("a counter group name is empty or too long");
    if (!names.is_object()) bad("counter group '" + group.substr(0, 32) + "' must be an object");
    for (const auto& [name, amount] : names.items()) {
      if (name.empty() || name.size() > max_name_length) bad("a counter name is empty or too long");
      if (!amount.is_number_integer()) bad("counter '" + name.substr(0, 32) + "' must be an integer");
      if (++n > max_counters) bad("more than " + std::to_string(max_counters) + " counters");
      out[group][name] = amount.get<std::int64_t>();
    }
  }
  return out;
}

std::pair<task_kind, int> kind_and_task(const nlohmann::json& body) {
  auto kind = parse_task_kind(http::required_string(body, "kind"));
  if (!kind) bad("field 'kind' must be \"map\" or \"reduce\"");
  // Out-of-range task numbers are the table's business (404), not a malformed body.
  return {*kind, static_cast<int>(http::required_integer(body, "task", INT_MIN, INT_MAX))};
}

// Cuts UTF-8 text to at most `limit` bytes without splitting a character.
std::string cut_utf8(std::string text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) --end;
  text.resize(end);
  return text;
}

// `text` with every byte that is not part of a well-formed UTF-8 sequence replaced by '?'.
std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    std::size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
    bool ok = len > 0 && i + len <= text.size();
    for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    if (ok && len > 1) {
      // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8 either.
      std::uint32_t cp = b & (0xff >> (len + 1));
      for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3f);
      const std::uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= min[len] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
    }
    if (ok) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out.push_back('?');
      ++i;
    }
  }
  return out;
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

nlohmann::json encode(const app_spec& app) {
  if (!app.streaming()) return {{"app", app.app}};
  nlohmann::json j{{"mapper", app.stream.mapper}, {"reducer", app.stream.reducer}};
  if (!app.stream.combiner.empty()) j["combiner"] = app.stream.combiner;
  return j;
}

app_spec decode_app(const nlohmann::json& object) {
  app_spec app;
  auto member = [&](const char* field) {
    auto value = http::optional_string(object, field).value_or("");
    if (object.contains(field) && value.empty()) bad(std::string("field '") + field + "' must not be empty");
    if (value.size() > max_command_length)
      bad(std::string("field '") + field + "' is longer than " + std::to_string(max_command_length) + " bytes");
    return value;
  };
  app.app = member("app");
  app.stream.mapper = member("mapper");
  app.stream.reducer = member("reducer");
  app.stream.combiner = member("combiner");
  const bool streaming = !app.stream.mapper.empty() || !app.stream.reducer.empty() || !app.stream.combiner.empty();
  if (!app.app.empty() && streaming) bad("field 'app' and fields 'mapper'/'reducer'/'combiner': give one kind of app");
  if (app.app.empty() && !streaming) bad("field 'app' is required (or 'mapper' and 'reducer' for a streaming app)");
  if (streaming && app.stream.mapper.empty()) bad("field 'mapper' is required with 'reducer' or 'combiner'");
  if (streaming && app.stream.reducer.empty()) bad("field 'reducer' is required with 'mapper'");
  return app;
}

bool same_app(const app_spec& a, const app_spec& b) noexcept {
  return a.app == b.app && a.stream.mapper == b.stream.mapper && a.stream.reducer == b.stream.reducer &&
         a.stream.combiner == b.stream.combiner;
}

nlohmann::json encode(const next_request& r) {
  nlohmann::json j{{"worker", r.worker}, {"host", r.host}};
  if (r.wait) j["wait_ms"] = r.wait->count();
  if (r.app) j["app"] = encode(*r.app);
  return j;
}

nlohmann::json encode(const phase_counts& c) {
  return {{"idle", c.idle}, {"running", c.running}, {"done", c.done}, {"total", c.total()}};
}

nlohmann::json encode(const counters& c) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [group, names] : c)
    for (const auto& [name, value] : names) j[group][name] = value;
  return j;
}

nlohmann::json encode(const done_request& r) {
  nlohmann::json j{{"worker", r.worker}, {"kind", to_string(r.kind)}, {"task", r.task}, {"attempt", r.attempt}};
  if (!r.counts.empty()) j["counters"] = encode(r.counts);
  if (!r.job.empty()) j["job"] = r.job;
  if (!r.location.empty()) j["location"] = r.location;
  return j;
}

nlohmann::json encode(const fetch_failed_request& r) {
  nlohmann::json j{{"worker", r.worker}, {"task", r.task}, {"attempt", r.attempt}, {"map", r.map},
                   {"error", valid_utf8(cut_utf8(r.error, max_error_length))}, {"gone", r.gone}};
  if (!r.job.empty()) j["job"] = r.job;
  return j;
}

namespace {

std::string job_segment(const std::string& job) { return job.empty() ? "-" : job; }

// A served URL: http(s), printable, bounded.
std::string checked_url(std::string value, const char* field) {
  if (value.size() > max_url_length) bad(std::string("field '") + field + "' is longer than " +
                                         std::to_string(max_url_length) + " bytes");
  if (!value.starts_with("http://") && !value.starts_with("https://"))
    bad(std::string("field '") + field + "' must be an http:// or https:// URL");
  for (char c : value)
    if (c < 0x21 || c > 0x7e) bad(std::string("field '") + field + "' must be printable ASCII without spaces");
  return value;
}

}  // namespace

std::string partition_target(const std::string& job, int map, int reduce) {
  return shuffle_prefix + job_segment(job) + "/map/" + std::to_string(map) + "/" + std::to_string(reduce);
}

std::string output_target(const std::string& job, int reduce) {
  return shuffle_prefix + job_segment(job) + "/out/" + std::to_string(reduce);
}

std::string input_target(const std::string& job, int map) {
  return inputs_prefix + job_segment(job) + "/" + std::to_string(map);
}

input_ref parse_input_target(std::string_view target) {
  target = target.substr(0, target.find('?'));
  const std::string_view prefix(inputs_prefix);
  auto no = [] { return http::request_error(404, "no such input: expected /v1/inputs/JOB/M"); };
  if (!target.starts_with(prefix)) throw no();
  target.remove_prefix(prefix.size());
  const auto slash = target.find('/');
  if (slash == std::string_view::npos || slash == 0) throw no();
  input_ref ref;
  const auto job = target.substr(0, slash);
  if (job != "-") ref.job = std::string(job);
  const auto number = target.substr(slash + 1);
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), ref.map);
  if (number.empty() || ec != std::errc{} || end != number.data() + number.size() || ref.map < 0) throw no();
  return ref;
}

nlohmann::json encode(const failed_request& r) {
  // The error holds a command's standard error, which need not be UTF-8: JSON must be.
  const std::string text = valid_utf8(cut_utf8(r.error, max_error_length));
  nlohmann::json j{{"worker", r.worker}, {"kind", to_string(r.kind)}, {"task", r.task}, {"attempt", r.attempt},
                   {"error", text}};
  if (!r.job.empty()) j["job"] = r.job;
  if (r.given_back) j["given_back"] = true;
  return j;
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
  if (o.what == action::reduce) {
    j["n_map"] = o.n_map;
    if (!o.sources.empty()) j["sources"] = o.sources;
  }
  if ((o.what == action::map || o.what == action::reduce) && o.timeout) j["timeout_ms"] = o.timeout->count();
  if (o.what == action::map || o.what == action::reduce) {
    if (!o.job.empty()) j["job"] = o.job;
    if (!o.dir.empty()) j["dir"] = o.dir;
    if (o.app) j["app"] = encode(*o.app);
  }
  if (o.service) j["service"] = true;
  if (o.live_jobs) j["live_jobs"] = *o.live_jobs;
  return j;
}

std::vector<std::string> sources_for(const task_table& table) {
  auto locations = table.map_locations();
  for (const auto& l : locations)
    if (!l.empty()) return locations;
  return {};
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
  http::reject_unknown_fields(body, {"worker", "host", "wait_ms", "app"});
  next_request r;
  r.worker = checked_name(http::required_string(body, "worker"), "worker", false);
  r.host = checked_name(http::optional_string(body, "host").value_or(""), "host", true);
  if (auto ms = http::optional_integer(body, "wait_ms", 0, 3'600'000)) r.wait = std::chrono::milliseconds(*ms);
  if (auto it = body.find("app"); it != body.end()) {
    if (!it->is_object()) bad("field 'app' must be an object");
    r.app = decode_app(*it);
  }
  return r;
}

done_request decode_done_request(const nlohmann::json& body) {
  http::reject_unknown_fields(body, {"worker", "kind", "task", "attempt", "counters", "job", "location"});
  done_request r;
  r.job = checked_name(http::optional_string(body, "job").value_or(""), "job", true);
  r.worker = checked_name(http::required_string(body, "worker"), "worker", false);
  std::tie(r.kind, r.task) = kind_and_task(body);
  r.attempt = static_cast<int>(http::required_integer(body, "attempt", INT_MIN, INT_MAX));
  if (auto it = body.find("counters"); it != body.end()) r.counts = decode_counters(*it);
  if (auto location = http::optional_string(body, "location")) r.location = checked_url(std::move(*location), "location");
  return r;
}

fetch_failed_request decode_fetch_failed_request(const nlohmann::json& body) {
  http::reject_unknown_fields(body, {"worker", "task", "attempt", "map", "error", "gone", "job"});
  fetch_failed_request r;
  r.job = checked_name(http::optional_string(body, "job").value_or(""), "job", true);
  r.worker = checked_name(http::required_string(body, "worker"), "worker", false);
  r.task = static_cast<int>(http::required_integer(body, "task", 0, INT_MAX));
  r.attempt = static_cast<int>(http::required_integer(body, "attempt", INT_MIN, INT_MAX));
  r.map = static_cast<int>(http::required_integer(body, "map", 0, INT_MAX));
  if (auto gone = body.find("gone"); gone != body.end()) {
    if (!gone->is_boolean()) bad("field 'gone' must be a boolean");
    r.gone = gone->get<bool>();
  }
  r.error = http::required_string(body, "error");
  if (r.error.size() > max_error_length)
    bad("field 'error' is longer than " + std::to_string(max_error_length) + " bytes");
  return r;
}

failed_request decode_failed_request(const nlohmann::json& body) {
  http::reject_unknown_fields(body, {"worker", "kind", "task", "attempt", "error", "job", "given_back"});
  failed_request r;
  if (auto given_back = body.find("given_back"); given_back != body.end()) {
    if (!given_back->is_boolean()) bad("field 'given_back' must be true or false");
    r.given_back = given_back->get<bool>();
  }
  r.job = checked_name(http::optional_string(body, "job").value_or(""), "job", true);
  r.worker = checked_name(http::required_string(body, "worker"), "worker", false);
  std::tie(r.kind, r.task) = kind_and_task(body);
  r.attempt = static_cast<int>(http::required_integer(body, "attempt", INT_MIN, INT_MAX));
  r.error = http::required_string(body, "error");
  if (r.error.empty()) bad("field 'error' must not be empty");
  if (r.error.size() > max_error_length)
    bad("field 'error' is longer than " + std::to_string(max_error_length) + " bytes");
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
      if (auto it = body.find("sources"); it != body.end()) {
        if (!it->is_array() || it->size() != static_cast<std::size_t>(o.n_map))
          bad("field 'sources' must be an array of n_map URLs");
        for (const auto& source : *it) {
          if (!source.is_string()) bad("field 'sources' must hold strings");
          auto url = source.get<std::string>();
          o.sources.push_back(url.empty() ? url : checked_url(std::move(url), "sources"));
        }
      }
    }
    if (auto ms = http::optional_integer(body, "timeout_ms", 1, INT64_MAX / 1'000'000))
      o.timeout = std::chrono::milliseconds(*ms);
    o.job = checked_name(http::optional_string(body, "job").value_or(""), "job", true);
    o.dir = http::optional_string(body, "dir").value_or("");
    // The directory is the coordinator's to choose, but a worker writes there: nothing outside its own.
    if (o.dir.starts_with('/') || o.dir.find("..") != std::string::npos)
      bad("field 'dir' must be relative, without '..'");
    if (auto it = body.find("app"); it != body.end()) {
      if (!it->is_object()) bad("field 'app' must be an object");
      o.app = decode_app(*it);
    }
  } else {
    bad("unknown action '" + what.substr(0, 32) + "'");
  }
  auto service = body.find("service");
  o.service = service != body.end() && service->is_boolean() && service->get<bool>();
  if (auto live = body.find("live_jobs"); live != body.end()) {
    if (!live->is_array()) bad("field 'live_jobs' must be an array of job ids");
    o.live_jobs.emplace();
    for (const auto& id : *live) {
      if (!id.is_string()) bad("field 'live_jobs' must hold strings");
      o.live_jobs->push_back(checked_name(id.get<std::string>(), "live_jobs", false));
    }
  }
  return o;
}

}  // namespace mrkv::mr::protocol
