#include "wire.hpp"

#include <boost/beast/http/status.hpp>

namespace mrkv::http {

namespace bhttp = boost::beast::http;

void serialize_head_into(std::string& out, const response& res) {
  out.clear();
  out += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  const unsigned status = res.result_int();
  out.push_back(static_cast<char>('0' + status / 100 % 10));
  out.push_back(static_cast<char>('0' + status / 10 % 10));
  out.push_back(static_cast<char>('0' + status % 10));
  out.push_back(' ');
  out += bhttp::obsolete_reason(res.result());
  out += "\r\n";
  for (const auto& field : res) {
    out += field.name_string();
    out += ": ";
    out += field.value();
    out += "\r\n";
  }
  out += "\r\n";
}

const std::string& refusal_bytes() {
  static const std::string bytes = [] {
    std::string body = R"({"error":"too many connections; try again later"})" "\n";
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
           "Retry-After: 1\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  return bytes;
}

}  // namespace mrkv::http
