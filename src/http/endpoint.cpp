#include "mrkv/http/endpoint.hpp"

#include <charconv>
#include <stdexcept>

namespace mrkv::http {
namespace {

std::uint16_t parse_port(std::string_view digits, std::string_view whole) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || value > 65535)
    throw std::invalid_argument("bad port in '" + std::string(whole) + "' (want 0-65535)");
  return static_cast<std::uint16_t>(value);
}

}  // namespace

host_port parse_host_port(std::string_view text) {
  host_port out;
  std::string_view port_part;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw std::invalid_argument("bad address '" + std::string(text) + "' (want [IPv6]:PORT)");
    out.host = std::string(text.substr(1, close - 1));
    port_part = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      throw std::invalid_argument("bad address '" + std::string(text) + "' (want HOST:PORT)");
    if (text.find(':') != colon)
      throw std::invalid_argument("bad address '" + std::string(text) + "' (write IPv6 as [ADDR]:PORT)");
    out.host = std::string(text.substr(0, colon));
    port_part = text.substr(colon + 1);
  }
  if (out.host.empty()) out.host = "0.0.0.0";
  out.port = parse_port(port_part, text);
  return out;
}

url parse_url(std::string_view text) {
  url out;
  auto scheme_end = text.find("://");
  std::string_view rest = text;
  if (scheme_end == std::string_view::npos) {
    out.scheme = "http";
  } else {
    out.scheme = std::string(text.substr(0, scheme_end));
    rest = text.substr(scheme_end + 3);
  }
  if (out.scheme != "http" && out.scheme != "https")
    throw std::invalid_argument("unsupported URL scheme '" + out.scheme + "' in '" + std::string(text) + "'");
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    out.base_path = std::string(rest.substr(slash));
    while (!out.base_path.empty() && out.base_path.back() == '/') out.base_path.pop_back();
  }
  if (authority.empty()) throw std::invalid_argument("URL '" + std::string(text) + "' has no host");
  bool has_port = authority.back() != ']' && authority.rfind(':') != std::string_view::npos;
  if (has_port) {
    out.address = parse_host_port(authority);
  } else {
    std::string_view host = authority;
    if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    out.address.host = std::string(host);
    out.address.port = out.scheme == "https" ? 443 : 80;
  }
  return out;
}

std::string to_string(const host_port& address) {
  bool v6 = address.host.find(':') != std::string::npos;
  std::string out = v6 ? "[" + address.host + "]" : address.host;
  return out + ":" + std::to_string(address.port);
}

}  // namespace mrkv::http
