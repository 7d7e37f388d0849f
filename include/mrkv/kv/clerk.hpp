// This file contains the clerk: the client library of the kvserver, with the lab's Get/Put/Append as
// coroutines. Each clerk has a random client id and numbers its writes 1, 2, 3, ...; a write is sent with
// the same (client, seq) until an answer comes back, so the server executes it once however many
// attempts were lost, timed out or cut off by a dropped connection.
//
// Outcomes:
//   - an answer: get's value, append's old value, put's nothing;
//   - the server answered no (any 4xx: a 409 for a stale seq, a 400 for a bad request, a 401, a 413):
//     throws clerk_error{rejected} at once, without retrying;
//   - a 2xx reply that is not this protocol's JSON: throws clerk_error{bad_reply} (not retried either);
//   - the deadline passed without an answer: throws clerk_error{deadline_exceeded}. For a write the
//     outcome is then unknown: it may or may not have been applied (once at most).
// No answer (refused, reset, timed out) and 5xx replies are retried with capped exponential backoff with
// full jitter, on a kept-alive connection that is reopened after a failure. The default deadline is
// none: like the lab's clerk, it retries until it gets an answer.
//
// Versioned calls (issue 13): get_versioned returns value and version; put with write_options (an
// expected version, a lease) and remove answer ok (with the new version), version_mismatch (with the
// current version) or maybe_applied. With request ids (the default) a retry is answered from the
// server's duplicate table, so a mismatch is the true answer even after lost attempts; only a call that
// kept retrying for longer than the server keeps client entries (`server_client_ttl`), or a clerk
// without request ids that met a mismatch after an attempt without answer (the lab's ErrMaybe), reports
// maybe_applied, as does a versioned write whose deadline passed (its outcome is unknown).
//
// A clerk is used by one coroutine at a time (the lab's assumption: one call in flight per clerk), and
// must outlive its calls; make one clerk per concurrent caller. Not thread-safe.
#pragma once

#include "mrkv/http/client.hpp"
#include "mrkv/http/endpoint.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mrkv::kv {

struct clerk_options {
  std::string client_id;  // empty: 16 random hex digits
  // One attempt's bound (connect, send, wait for the reply); values of tens of MiB need seconds.
  std::chrono::milliseconds attempt_timeout{10'000};
  // The whole call's bound, over all attempts and pauses; zero means no bound (retry forever).
  std::chrono::milliseconds deadline{0};
  // The pause before retry n (n = 0, 1, ...) is uniform in [0, min(backoff_max, backoff_initial * 2^n)].
  std::chrono::milliseconds backoff_initial{5};
  std::chrono::milliseconds backoff_max{1'000};
  // Bearer token, TLS trust, reply size cap. A get may return a value far larger than any request
  // body (appends add up), so the reply cap defaults higher here than for other clients.
  http::client_options connection = default_connection();

  static http::client_options default_connection();  // no token, replies up to 1 GiB
  // Send writes without (client, seq), as the lab's kvsrv1 clerk does: retries then execute again.
  bool request_ids = true;
  // The server's --client-ttl: a versioned write retried for longer may meet its own success as a
  // mismatch, and is then reported as maybe applied.
  std::chrono::seconds server_client_ttl{3600};
};

struct versioned {
  std::string value;
  std::uint64_t version = 0;  // 0: missing
};

struct write_options {
  std::optional<std::uint64_t> expected_version;  // execute only if the key has this version
  std::optional<std::chrono::milliseconds> lease;  // put only: the key disappears unless renewed
};

struct write_outcome {
  enum class status { ok, version_mismatch, maybe_applied };
  status result = status::ok;
  std::uint64_t version = 0;  // ok: the key's new version; version_mismatch: its current one
  std::string old_value;      // an append's old value
  bool ok() const noexcept { return result == status::ok; }
};

struct listed_key {
  std::string key;
  std::string value;
  std::uint64_t version = 0;
};

struct listed_page {
  std::vector<listed_key> items;
  bool more = false;
};

class clerk_error : public std::runtime_error {
 public:
  // unreachable: no answer, and retrying cannot help (see http::call_error::lasting), so the clerk
  // stopped at once instead of at its deadline.
  enum class reason { rejected, bad_reply, deadline_exceeded, unreachable };
  clerk_error(reason why, unsigned status, const std::string& message, std::string last_failure = {})
      : std::runtime_error(message), why_(why), status_(status), last_failure_(std::move(last_failure)) {}
  reason why() const noexcept { return why_; }
  unsigned status() const noexcept { return status_; }  // the HTTP status of a rejection
  // deadline_exceeded and unreachable: what went wrong with the last attempt (e.g. "connection refused").
  const std::string& last_failure() const noexcept { return last_failure_; }

 private:
  reason why_;
  unsigned status_;
  std::string last_failure_;
};

class clerk {
 public:
  clerk(boost::asio::any_io_executor executor, http::url server, clerk_options options = {});
  ~clerk();
  clerk(clerk&&) noexcept;
  clerk& operator=(clerk&&) noexcept;

  // Keys and values must be valid UTF-8 (JSON strings carry nothing else): std::invalid_argument otherwise.
  boost::asio::awaitable<std::string> get(std::string key);
  boost::asio::awaitable<void> put(std::string key, std::string value);
  // Returns the value before the append.
  boost::asio::awaitable<std::string> append(std::string key, std::string value);

  // Issue 13. Keys missing: {"", 0}.
  boost::asio::awaitable<versioned> get_versioned(std::string key);
  boost::asio::awaitable<write_outcome> put(std::string key, std::string value, write_options options);
  boost::asio::awaitable<write_outcome> put(std::string key, std::string value, std::uint64_t expected_version);
  boost::asio::awaitable<write_outcome> append(std::string key, std::string value, write_options options);
  boost::asio::awaitable<write_outcome> remove(std::string key,
                                               std::optional<std::uint64_t> expected_version = std::nullopt);
  // One page of keys starting with `prefix` after `after` (nullopt: from the first; limit 1 to 10,000).
  boost::asio::awaitable<listed_page> list(std::string prefix, std::optional<std::string> after = std::nullopt,
                                           std::size_t limit = 100);

  const std::string& client_id() const noexcept;
  std::uint64_t last_seq() const noexcept;          // the seq of the latest write
  std::uint64_t attempts() const noexcept;          // requests sent so far, retries included
  std::size_t connections_opened() const noexcept;  // TCP connections opened so far

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// The lab's spelling.
using Clerk = clerk;

}  // namespace mrkv::kv
