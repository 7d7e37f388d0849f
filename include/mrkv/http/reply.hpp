// What a route handler answers: an HTTP status and a JSON body, plus the exception a handler throws to
// refuse a request (a 4xx that names the problem). The server turns both into HTTP responses.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mrkv::http {

// Raw bytes, sent exactly as they are (JSON and text replies get a final newline for curl's sake).
inline constexpr const char* octet_stream = "application/octet-stream";

struct reply {
  unsigned status = 200;
  std::string body;  // serialized JSON, unless content_type says otherwise
  // JSON but for GET /metrics, which Prometheus reads as text, and files (octet_stream).
  const char* content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers = {};  // more response headers
};

reply json_reply(const nlohmann::json& body, unsigned status = 200);

// {"error": message}; the message is ours, never raw peer input.
reply error_reply(unsigned status, std::string_view message);

// Thrown by handlers (and the JSON field readers) to answer 4xx with {"error": what()}.
class request_error : public std::runtime_error {
 public:
  request_error(unsigned status, const std::string& message) : std::runtime_error(message), status_(status) {}
  unsigned status() const noexcept { return status_; }

 private:
  unsigned status_;
};

}  // namespace mrkv::http
