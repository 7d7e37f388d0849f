// What a route handler answers: an HTTP status and a JSON body, plus the exception a handler throws to
// refuse a request (a 4xx that names the problem). The server turns both into HTTP responses.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace mrkv::http {

struct reply {
  unsigned status = 200;
  std::string body;  // serialized JSON
  // Everything is JSON but GET /metrics, which Prometheus reads as text.
  const char* content_type = "application/json";
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
