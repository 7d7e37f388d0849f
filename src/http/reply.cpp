#include "mrkv/http/reply.hpp"

namespace mrkv::http {

reply json_reply(const nlohmann::json& body, unsigned status) {
  // Replace invalid UTF-8 instead of throwing: a reply must always be producible.
  return reply{status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

reply error_reply(unsigned status, std::string_view message) {
  return json_reply(nlohmann::json{{"error", message}}, status);
}

}  // namespace mrkv::http
