#include "mrkv/http/router.hpp"

namespace mrkv::http {

namespace {

// A route path ending in '*' matches every path that starts with what comes before the '*'.
bool path_matches(std::string_view route_path, std::string_view path) {
  if (!route_path.empty() && route_path.back() == '*')
    return path.starts_with(route_path.substr(0, route_path.size() - 1));
  return route_path == path;
}

}  // namespace

void router::add(verb method, std::string path, sync_handler handler) {
  routes_.push_back(route{method, std::move(path), std::move(handler), false});
}

void router::add_async(verb method, std::string path, async_handler handler) {
  routes_.push_back(route{method, std::move(path), std::move(handler), false});
}

void router::add_public(verb method, std::string path, sync_handler handler) {
  routes_.push_back(route{method, std::move(path), std::move(handler), true});
}

router::match router::find(verb method, std::string_view target) const {
  auto query = target.find('?');
  std::string_view path = target.substr(0, query);
  bool path_known = false;
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    if (!path_matches(routes_[i].path, path)) continue;
    path_known = true;
    // HEAD is answered like GET would be, without a body (the server drops it).
    if (routes_[i].method == method || (method == verb::head && routes_[i].method == verb::get))
      return match{&routes_[i], i, 200};
  }
  return match{nullptr, 0, path_known ? 405u : 404u};
}

std::string router::allowed_methods(std::string_view target) const {
  std::string_view path = target.substr(0, target.find('?'));
  std::string allowed;
  auto add = [&allowed](std::string_view method) {
    if (allowed.find(method) != std::string::npos) return;
    if (!allowed.empty()) allowed += ", ";
    allowed += method;
  };
  for (const auto& r : routes_) {
    if (!path_matches(r.path, path)) continue;
    add(boost::beast::http::to_string(r.method));
    if (r.method == verb::get) add("HEAD");
  }
  return allowed;
}

}  // namespace mrkv::http
