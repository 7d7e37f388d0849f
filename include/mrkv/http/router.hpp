// The route table of one server: (method, exact path) -> handler; a path ending in '*' is a prefix
// ("/v1/jobs/*" takes "/v1/jobs/7"), for resources named in the path, and exact routes listed
// before it still win. Handlers are either plain functions
// (answer at once, on the connection's thread) or coroutines (may wait, e.g. a long poll). Matching is
// pure and has no I/O, so routing is tested without sockets.
#pragma once

#include "mrkv/http/reply.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace mrkv::http {

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;
using verb = boost::beast::http::verb;

using sync_handler = std::function<reply(const request&)>;
// The session awaits the returned awaitable before it reads the next request.
using async_handler = std::function<boost::asio::awaitable<reply>(request)>;

struct route {
  verb method;
  std::string path;
  std::variant<sync_handler, async_handler> handler;
  bool public_route = false;  // answered without the auth token (health checks)
};

class router {
 public:
  void add(verb method, std::string path, sync_handler handler);
  void add_async(verb method, std::string path, async_handler handler);
  void add_public(verb method, std::string path, sync_handler handler);

  struct match {
    const route* found = nullptr;  // null: see status
    std::size_t index = 0;         // position of `found`, for per-route metrics
    unsigned status = 200;         // 404 (no such path) or 405 (path exists, other method)
  };
  // `target` may carry a query string; it is ignored for matching.
  match find(verb method, std::string_view target) const;

  // The methods `target`'s path answers, for a 405's Allow header ("GET, HEAD" style; HEAD wherever GET is).
  std::string allowed_methods(std::string_view target) const;

  const std::vector<route>& routes() const noexcept { return routes_; }

 private:
  std::vector<route> routes_;
};

}  // namespace mrkv::http
