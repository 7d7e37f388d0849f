// A coroutine HTTP/1.1 client for JSON calls to one server: keep-alive connection reuse, a deadline on
// every call (resolve, connect, write and read all count against it), and one result type that keeps
// three outcomes apart:
//   - no answer: refused, reset, timed out, unresolvable; for a write the outcome is unknown;
//   - an answer that says no: HTTP 4xx/5xx, with the server's {"error": ...} text;
//   - a reply that is not valid JSON.
// A client is used by one coroutine at a time (calls are not pipelined); make one per concurrent caller.
// It never retries: callers that can retry safely (the clerk, the worker) decide how, by worth_retrying().
#pragma once

#include "mrkv/http/endpoint.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace mrkv::http {

struct call_error {
  enum class kind { no_answer, rejected, bad_reply };
  kind what = kind::no_answer;
  unsigned status = 0;    // the HTTP status for `rejected` and `bad_reply`
  std::string message;    // ours for no_answer/bad_reply; the server's error text for `rejected`
  // no_answer only: asking again cannot help (a host name that does not exist, a certificate that is
  // not trusted, TLS spoken to a plain-HTTP server), unlike refused, reset or timed out.
  bool lasting = false;
  std::string describe() const;  // one line for a person
};

// Who waits for the answer, which decides whether a lasting failure is worth another attempt: a person
// at a prompt wants it at once; a daemon (a worker) outlives a name that does not resolve yet (a
// compose service whose coordinator has not started) and a certificate about to be replaced.
enum class patience { person, daemon };

// The one rule of what is worth another attempt, for every caller that retries: no answer that may be
// passing (refused, reset, timed out; the request's outcome is unknown unless it was refused), a
// lasting one for a daemon only, and a server error (5xx: overloaded, disk full, a proxy without its
// upstream). A 4xx says no for good, and a reply that is not JSON with a success status comes from
// something that is not our server.
bool worth_retrying(const call_error& error, patience who) noexcept;

struct call_result {
  nlohmann::json body;                // the reply when ok()
  unsigned status = 0;                // HTTP status when an answer came
  std::optional<call_error> error;    // set when !ok()
  bool ok() const noexcept { return !error; }
};

// A reply as it came, body unread: what call_raw() returns. `error` is set (kind no_answer) only when no
// reply came; an HTTP error status is a reply like any other here.
struct raw_result {
  unsigned status = 0;
  std::string body;
  std::optional<call_error> error;
  bool answered() const noexcept { return !error; }
};

struct client_options {
  std::string auth_token;                 // sent as "Authorization: Bearer ..." when set
  std::size_t max_reply_body = 64 << 20;  // bytes
  std::string tls_ca_file;                // for https:// URLs: trust this CA (PEM) besides the system's
};

class client {
 public:
  client(boost::asio::any_io_executor executor, url server, client_options options = {});
  ~client();
  client(client&&) noexcept;
  client& operator=(client&&) noexcept;

  // POST `body` (serialized JSON) to base_path + target. `timeout` bounds the whole call.
  boost::asio::awaitable<call_result> post(std::string target, const nlohmann::json& body,
                                           std::chrono::milliseconds timeout);
  boost::asio::awaitable<call_result> get(std::string target, std::chrono::milliseconds timeout);
  boost::asio::awaitable<call_result> call(boost::beast::http::verb method, std::string target,
                                           std::string body, std::chrono::milliseconds timeout);
  // The same exchange, leaving the reply's body unread: for callers that check replies themselves
  // (the load generator, which must not spend its time building JSON trees).
  boost::asio::awaitable<raw_result> call_raw(boost::beast::http::verb method, std::string target,
                                              std::string body, std::chrono::milliseconds timeout);

  // Drops the kept-alive connection (the next call connects afresh).
  void close();
  // How many TCP connections this client has opened so far (tests check keep-alive with it).
  std::size_t connections_opened() const noexcept;
  const url& server() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mrkv::http
