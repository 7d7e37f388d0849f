#include "mrkv/http/request_handling.hpp"

#include "mrkv/common/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <variant>

namespace mrkv::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

bool tokens_equal(std::string_view given, std::string_view expected) {
  // Constant time in the token's content: a mismatch at byte 0 costs what a mismatch at the end does.
  if (given.size() != expected.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
  return diff == 0;
}

bool authorized(const request& req, const std::string& token) {
  auto it = req.find(bhttp::field::authorization);
  if (it == req.end()) return false;
  std::string_view value = it->value();
  constexpr std::string_view scheme = "Bearer ";
  if (value.size() < scheme.size() || value.substr(0, scheme.size()) != scheme) return false;
  return tokens_equal(value.substr(scheme.size()), token);
}

// Incident ids name one 500 in the log: the process id keeps them apart across restarts, a counter
// within one process.
std::string next_incident_id() {
  static std::atomic<std::uint64_t> next{1};
  char id[40];
  std::snprintf(id, sizeof id, "%x-%llu", static_cast<unsigned>(::getpid()),
                static_cast<unsigned long long>(next.fetch_add(1, std::memory_order_relaxed)));
  return id;
}

}  // namespace

response make_response(reply r, unsigned version, bool keep_alive, bool head) {
  response res{static_cast<bhttp::status>(r.status), version};
  res.set(bhttp::field::server, "mrkv/" MRKV_VERSION);
  res.set(bhttp::field::content_type, r.content_type);
  if (r.status == 401) res.set(bhttp::field::www_authenticate, "Bearer");
  res.keep_alive(keep_alive);
  for (const auto& [name, value] : r.headers) res.set(name, value);
  // curl's prompt on a line of its own; bytes (a file, a map's output) go out exactly as they are.
  const bool bytes = std::string_view(r.content_type) == octet_stream;
  if (!bytes && (r.body.empty() || r.body.back() != '\n')) r.body.push_back('\n');
  if (head) {
    res.content_length(r.body.size());
  } else {
    res.body() = std::move(r.body);
    res.prepare_payload();
  }
  return res;
}

asio::awaitable<response> handle_request(const router& routes, const server_config& config,
                                         http::metrics& counters, request req) {
  auto started = std::chrono::steady_clock::now();
  unsigned version = req.version();
  bool keep_alive = req.keep_alive();
  bool head = req.method() == verb::head;
  auto match = routes.find(req.method(), req.target());
  if (!match.found) {
    counters.record_unmatched(match.status);
    std::string what = match.status == 404 ? "no such path: " : "method not allowed on ";
    std::string target(req.target().substr(0, 128));
    log::debug("http", std::string(req.method_string()) + " " + target + " -> " + std::to_string(match.status));
    auto res = make_response(error_reply(match.status, what + target), version, keep_alive, head);
    if (match.status == 405) res.set(bhttp::field::allow, routes.allowed_methods(req.target()));
    co_return res;
  }
  reply answer;
  if (!match.found->public_route && !config.auth_token.empty() && !authorized(req, config.auth_token)) {
    answer = error_reply(401, "missing or wrong bearer token");
  } else {
    try {
      if (auto* sync = std::get_if<sync_handler>(&match.found->handler))
        answer = (*sync)(req);
      else
        answer = co_await std::get<async_handler>(match.found->handler)(std::move(req));
    } catch (const request_error& e) {
      answer = error_reply(e.status(), e.what());
    } catch (const std::exception& e) {
      // The exception's text may name files or echo input: it goes to the log, and the client gets an
      // id to quote that finds the log line.
      const std::string incident = next_incident_id();
      log::error("http", "handler for " + match.found->path + " failed (incident " + incident + "): " + e.what());
      answer = error_reply(500, "internal error (incident " + incident + ", see the server's log)");
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  counters.record_request(match.index, answer.status, elapsed);
  if (log::enabled(log::level::debug))
    log::debug("http", std::string(bhttp::to_string(match.found->method)) + " " + match.found->path + " -> " +
                           std::to_string(answer.status) + " in " + log::duration(elapsed));
  co_return make_response(std::move(answer), version, keep_alive, head);
}

}  // namespace mrkv::http
