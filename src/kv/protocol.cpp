#include "mrkv/kv/protocol.hpp"

#include "mrkv/http/json_body.hpp"

#include <charconv>
#include <limits>
#include <optional>
#include <system_error>

namespace mrkv::kv {

namespace {

[[noreturn]] void bad(const std::string& message) { throw http::request_error(400, message); }

// Moves a string member out of the parsed document instead of copying it: values can be 10 MiB.
std::string take_string(nlohmann::json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) bad(std::string("missing field '") + field + "'");
  if (!it->is_string()) bad(std::string("field '") + field + "' must be a string, not " + it->type_name());
  return std::move(it->get_ref<std::string&>());
}

std::size_t code_points(std::string_view text) {
  std::size_t n = 0;
  for (unsigned char c : text)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

bool json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The bodies clerks send, read without building a JSON tree: one flat object whose members are strings
// without escapes or plain non-negative integers. Calls on_member(name, text, is_string) for each; any
// other shape (an escape, another type, a number with a sign, fraction or exponent, a control byte,
// invalid UTF-8, trailing bytes) returns false, and so does a false from on_member. The callers then
// read the body with the general parser, which accepts or refuses it with its own message: this path
// only ever accepts a subset of what that one accepts, with the same meaning.
template <class OnMember>
bool scan_flat_object(std::string_view body, OnMember&& on_member) {
  std::size_t i = 0;
  const std::size_t n = body.size();
  auto skip_space = [&] {
    while (i < n && json_space(body[i])) ++i;
  };
  auto plain_string = [&](std::string_view& out) {
    if (i >= n || body[i] != '"') return false;
    const std::size_t start = ++i;
    while (i < n && body[i] != '"') {
      const auto c = static_cast<unsigned char>(body[i]);
      if (c == '\\' || c < 0x20) return false;
      ++i;
    }
    if (i >= n) return false;
    out = body.substr(start, i - start);
    ++i;
    return valid_utf8(out);
  };
  skip_space();
  if (i >= n || body[i] != '{') return false;
  ++i;
  skip_space();
  if (i < n && body[i] == '}') {
    ++i;
  } else {
    for (;;) {
      std::string_view name, text;
      if (!plain_string(name)) return false;
      skip_space();
      if (i >= n || body[i] != ':') return false;
      ++i;
      skip_space();
      bool is_string = i < n && body[i] == '"';
      if (is_string) {
        if (!plain_string(text)) return false;
      } else {
        const std::size_t start = i;
        while (i < n && body[i] >= '0' && body[i] <= '9') ++i;
        text = body.substr(start, i - start);
        if (text.empty() || (text.size() > 1 && text[0] == '0')) return false;
      }
      if (!on_member(name, text, is_string)) return false;
      skip_space();
      if (i < n && body[i] == ',') {
        ++i;
        skip_space();
        continue;
      }
      if (i < n && body[i] == '}') {
        ++i;
        break;
      }
      return false;
    }
  }
  skip_space();
  return i == n;
}

std::optional<get_request> read_plain_get(std::string_view body) {
  std::optional<std::string_view> key;
  const bool plain = scan_flat_object(body, [&](std::string_view name, std::string_view text, bool is_string) {
    if (name != "key" || !is_string || key) return false;
    key = text;
    return true;
  });
  if (!plain || !key) return std::nullopt;
  return get_request{std::string(*key)};
}

// The rules that tie `client` and `seq` together, shared by both readers so that they refuse alike.
void set_identity(write_request& req, std::optional<std::string> client, std::optional<std::uint64_t> seq) {
  if (client) {
    const auto length = code_points(*client);
    if (length == 0 || length > max_client_length)
      bad("field 'client' must be 1 to " + std::to_string(max_client_length) + " characters long");
    if (!seq) bad("missing field 'seq': a request with 'client' needs one");
    req.client = std::move(client);
    req.seq = *seq;
  } else if (seq) {
    bad("missing field 'client': a request with 'seq' needs one");
  }
}

bool read_number(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t& out) {
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end != text.data() + text.size() || n < min || n > max) return false;
  out = n;
  return true;
}

constexpr std::uint64_t max_int64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
constexpr std::uint64_t max_lease = std::numeric_limits<std::uint32_t>::max();

// nullopt for a body the scanner does not take; a body it takes but the protocol refuses throws the
// general reader's 400 (set_identity). `with_value`: a put or append (a delete has no value or lease).
std::optional<write_request> read_plain_write(std::string_view body, bool with_value) {
  std::optional<std::string_view> key, value, client, seq_text, version_text, lease_text;
  const bool plain = scan_flat_object(body, [&](std::string_view name, std::string_view text, bool is_string) {
    std::optional<std::string_view>* slot = name == "key"                     ? &key
                                            : name == "value" && with_value   ? &value
                                            : name == "client"                ? &client
                                            : name == "seq"                   ? &seq_text
                                            : name == "version"               ? &version_text
                                            : name == "lease_ms" && with_value ? &lease_text
                                                                              : nullptr;
    const bool numeric = slot == &seq_text || slot == &version_text || slot == &lease_text;
    if (slot == nullptr || slot->has_value() || is_string == numeric) return false;
    *slot = text;
    return true;
  });
  if (!plain || !key || (with_value && !value)) return std::nullopt;
  // Out of range: the general reader words that refusal.
  std::optional<std::uint64_t> seq;
  std::uint64_t n = 0;
  if (seq_text) {
    if (!read_number(*seq_text, 1, max_int64, n)) return std::nullopt;
    seq = n;
  }
  write_request req;
  if (version_text) {
    if (!read_number(*version_text, 0, max_int64, n)) return std::nullopt;
    req.version = n;
  }
  if (lease_text) {
    if (!read_number(*lease_text, 1, max_lease, n)) return std::nullopt;
    req.lease_ms = static_cast<std::uint32_t>(n);
  }
  req.key = std::string(*key);
  if (value) req.value = std::string(*value);
  set_identity(req, client ? std::optional<std::string>(*client) : std::nullopt, seq);
  return req;
}

write_request read_general_write(std::string_view body, bool with_value) {
  auto object = http::parse_json_object(body);
  if (with_value)
    http::reject_unknown_fields(object, {"key", "value", "client", "seq", "version", "lease_ms"});
  else
    http::reject_unknown_fields(object, {"key", "client", "seq", "version"});
  write_request req;
  req.key = take_string(object, "key");
  if (with_value) req.value = take_string(object, "value");
  auto client = http::optional_string(object, "client");
  auto seq = http::optional_integer(object, "seq", 1, std::numeric_limits<std::int64_t>::max());
  set_identity(req, std::move(client), seq ? std::optional<std::uint64_t>(*seq) : std::nullopt);
  if (auto version = http::optional_integer(object, "version", 0, std::numeric_limits<std::int64_t>::max()))
    req.version = static_cast<std::uint64_t>(*version);
  if (with_value)
    if (auto lease = http::optional_integer(object, "lease_ms", 1, static_cast<std::int64_t>(max_lease)))
      req.lease_ms = static_cast<std::uint32_t>(*lease);
  return req;
}

}  // namespace

get_request parse_get_request(std::string_view body) {
  if (auto plain = read_plain_get(body)) return std::move(*plain);
  auto object = http::parse_json_object(body);
  http::reject_unknown_fields(object, {"key"});
  return get_request{take_string(object, "key")};
}

write_request parse_write_request(std::string_view body) {
  if (auto plain = read_plain_write(body, true)) return std::move(*plain);
  return read_general_write(body, true);
}

write_request parse_delete_request(std::string_view body) {
  if (auto plain = read_plain_write(body, false)) return std::move(*plain);
  return read_general_write(body, false);
}

list_request parse_list_request(std::string_view body) {
  list_request req;
  // An empty body lists from the start with the defaults.
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return req;
  auto object = http::parse_json_object(body);
  http::reject_unknown_fields(object, {"prefix", "after", "limit"});
  if (auto prefix = http::optional_string(object, "prefix")) req.prefix = std::move(*prefix);
  req.after = http::optional_string(object, "after");
  if (auto limit = http::optional_integer(object, "limit", 1, static_cast<std::int64_t>(max_list_limit)))
    req.limit = static_cast<std::size_t>(*limit);
  return req;
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out.reserve(out.size() + text.size() + 2);
  out.push_back('"');
  std::size_t run = 0;  // start of the bytes not yet copied; plain bytes are copied in runs
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.substr(run, i - run));
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xF]);
    }
  }
  out.append(text.substr(run));
  out.push_back('"');
}

bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  while (i < n) {
    unsigned char c = byte(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c == 0xED) len = 3, hi = 0x9F;  // no UTF-16 surrogates
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    else return false;
    if (i + len > n) return false;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return false;
    for (std::size_t k = 2; k < len; ++k)
      if ((byte(i + k) & 0xC0) != 0x80) return false;
    i += len;
  }
  return true;
}

std::string value_reply_body(std::string_view value) {
  std::string body;
  body.reserve(value.size() + 16);
  body += "{\"value\":";
  append_json_string(body, value);
  body += "}";
  return body;
}

std::string versioned_value_reply_body(std::string_view value, std::uint64_t version) {
  std::string body;
  body.reserve(value.size() + 40);
  body += "{\"value\":";
  append_json_string(body, value);
  body += ",\"version\":";
  body += std::to_string(version);
  body += "}";
  return body;
}

std::string version_reply_body(std::uint64_t version) { return "{\"version\":" + std::to_string(version) + "}"; }

std::string version_mismatch_body(std::uint64_t version) {
  return "{\"error\":\"version mismatch\",\"version\":" + std::to_string(version) + "}";
}

std::string get_request_body(std::string_view key) {
  std::string body = "{\"key\":";
  append_json_string(body, key);
  body += "}";
  return body;
}

std::string write_request_body(std::string_view key, std::string_view value, std::string_view client,
                               std::uint64_t seq) {
  std::string body;
  body.reserve(key.size() + value.size() + client.size() + 64);
  body += "{\"key\":";
  append_json_string(body, key);
  body += ",\"value\":";
  append_json_string(body, value);
  if (!client.empty()) {
    body += ",\"client\":";
    append_json_string(body, client);
    body += ",\"seq\":" + std::to_string(seq);
  }
  body += "}";
  return body;
}

std::string write_request_body(std::string_view key, const std::string_view* value, std::string_view client,
                               std::uint64_t seq, std::optional<std::uint64_t> version,
                               std::optional<std::uint32_t> lease_ms) {
  std::string body;
  body.reserve(key.size() + (value ? value->size() : 0) + client.size() + 96);
  body += "{\"key\":";
  append_json_string(body, key);
  if (value) {
    body += ",\"value\":";
    append_json_string(body, *value);
  }
  if (!client.empty()) {
    body += ",\"client\":";
    append_json_string(body, client);
    body += ",\"seq\":" + std::to_string(seq);
  }
  if (version) body += ",\"version\":" + std::to_string(*version);
  if (lease_ms) body += ",\"lease_ms\":" + std::to_string(*lease_ms);
  body += "}";
  return body;
}

std::string list_request_body(std::string_view prefix, std::optional<std::string_view> after, std::size_t limit) {
  std::string body = "{\"prefix\":";
  append_json_string(body, prefix);
  if (after) {
    body += ",\"after\":";
    append_json_string(body, *after);
  }
  body += ",\"limit\":" + std::to_string(limit) + "}";
  return body;
}

}  // namespace mrkv::kv
