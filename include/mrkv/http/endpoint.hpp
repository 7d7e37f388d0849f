// Addresses as users type them: "HOST:PORT" for --listen and "http://HOST:PORT[/prefix]" for the URLs
// that workers and clerks are given. Parsing only; nothing here touches the network.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mrkv::http {

struct host_port {
  std::string host;  // a name, an IPv4 address, or an IPv6 address without brackets
  std::uint16_t port = 0;
};

// Parses "HOST:PORT", "[v6]:PORT" or ":PORT" (which means all interfaces, 0.0.0.0). Port 0 is allowed
// (the kernel picks one). Throws std::invalid_argument with a message that names the problem.
host_port parse_host_port(std::string_view text);

struct url {
  std::string scheme;  // "http" or "https"
  host_port address;
  std::string base_path;  // "" or a prefix such as "/mrkv", without a trailing slash
};

// Parses "http://HOST[:PORT][/prefix]". A URL without a scheme is taken as http; a missing port is 80
// (443 for https). Throws std::invalid_argument.
url parse_url(std::string_view text);

// "host:port", with brackets around IPv6 literals: the form for logs, Host headers and URLs.
std::string to_string(const host_port& address);

}  // namespace mrkv::http
