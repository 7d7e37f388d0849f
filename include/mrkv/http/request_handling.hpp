// One parsed request in, one response out, with no I/O: routing (404, 405 with Allow), the bearer
// token (401), a handler's refusal as a JSON 4xx, a handler's exception as a 500 whose body names an
// incident id that is also in the log line (never the exception's text), per-route metrics and the
// debug access log. The server's sessions call it for every request; the fuzzer and unit tests drive it
// directly.
#pragma once

#include "mrkv/http/metrics.hpp"
#include "mrkv/http/reply.hpp"
#include "mrkv/http/router.hpp"
#include "mrkv/http/server_config.hpp"

#include <boost/asio/awaitable.hpp>

namespace mrkv::http {

boost::asio::awaitable<response> handle_request(const router& routes, const server_config& config,
                                                http::metrics& counters, request req);

// A reply as an HTTP response: our Server header, the body ending in a newline (curl's prompt goes on
// a line of its own), no body for HEAD but its length.
response make_response(reply r, unsigned version, bool keep_alive, bool head);

}  // namespace mrkv::http
