#include "mrkv/kv/clerk.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/http/client.hpp"
#include "mrkv/kv/protocol.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <random>
#include <sstream>

namespace mrkv::kv {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

std::string random_client_id() {
  std::random_device device;
  std::uint64_t bits = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  static constexpr char hex[] = "0123456789abcdef";
  std::string id(16, '0');
  for (auto& c : id) {
    c = hex[bits & 0xF];
    bits >>= 4;
  }
  return id;
}

std::string seconds_text(std::chrono::milliseconds d) {
  std::ostringstream out;
  out << static_cast<double>(d.count()) / 1000.0;
  return out.str();
}

void check_utf8(std::string_view text, const char* what) {
  if (!valid_utf8(text)) throw std::invalid_argument(std::string("the ") + what + " is not valid UTF-8");
}

// Marks the clerk busy for one call, so that two overlapping calls are caught instead of garbling the
// shared connection.
class call_guard {
 public:
  explicit call_guard(bool& busy) : busy_(busy) {
    if (busy_) throw std::logic_error("a clerk runs one call at a time; use one clerk per concurrent caller");
    busy_ = true;
  }
  ~call_guard() { busy_ = false; }
  call_guard(const call_guard&) = delete;
  call_guard& operator=(const call_guard&) = delete;

 private:
  bool& busy_;
};

}  // namespace

http::client_options clerk_options::default_connection() {
  http::client_options options;
  options.max_reply_body = std::size_t{1} << 30;
  return options;
}

struct clerk::impl {
  http::client http;
  clerk_options options;
  std::string server_text;
  std::uint64_t seq = 0;
  std::uint64_t attempts = 0;
  std::mt19937_64 rng{std::random_device{}()};
  bool busy = false;

  impl(asio::any_io_executor executor, http::url server, clerk_options opts)
      : http(executor, server, opts.connection),
        options(std::move(opts)) {
    if (options.client_id.empty()) options.client_id = random_client_id();
    server_text = server.scheme + "://" + http::to_string(server.address) + server.base_path;
  }

  std::chrono::milliseconds backoff(unsigned failures) {
    auto cap = options.backoff_max;
    if (failures < 30) cap = std::min(cap, options.backoff_initial * (std::int64_t{1} << failures));
    if (cap.count() <= 0) return std::chrono::milliseconds(0);
    return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, cap.count())(rng));
  }

  // Sends `body` to `target` until an answer comes; returns the reply's JSON object.
  asio::awaitable<nlohmann::json> call(const char* target, std::string body) {
    const auto started = clock::now();
    const auto deadline = options.deadline.count() > 0 ? started + options.deadline : clock::time_point::max();
    std::string last_failure = "no attempt was made";
    for (unsigned failures = 0;; ++failures) {
      auto now = clock::now();
      if (now >= deadline) {
        throw clerk_error(clerk_error::reason::deadline_exceeded, 0,
                          "server " + server_text + " did not answer within " + seconds_text(options.deadline) +
                              " s (last: " + last_failure + ")",
                          last_failure);
      }
      auto timeout = options.attempt_timeout;
      if (deadline != clock::time_point::max())
        timeout = std::min(timeout, std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
      ++attempts;
      auto result = co_await http.call(boost::beast::http::verb::post, target, body, timeout);
      if (result.ok()) {
        if (!result.body.is_object())
          throw clerk_error(clerk_error::reason::bad_reply, result.status,
                            "server " + server_text + " sent a reply that is not a JSON object");
        co_return std::move(result.body);
      }
      const auto& error = *result.error;
      if (!http::worth_retrying(error, http::patience::person)) {
        if (error.what == http::call_error::kind::no_answer) throw unreachable(error);
        if (error.what == http::call_error::kind::rejected)
          throw clerk_error(clerk_error::reason::rejected, error.status,
                            "server " + server_text + " refused the request (HTTP " + std::to_string(error.status) +
                                "): " + error.message);
        throw clerk_error(clerk_error::reason::bad_reply, error.status,
                          "server " + server_text + " sent a reply that is not JSON (HTTP " +
                              std::to_string(error.status) + ")");
      }
      last_failure = error.what == http::call_error::kind::no_answer ? error.message : error.describe();
      log::debug("clerk", options.client_id + " attempt " + std::to_string(failures + 1) + " to " + target +
                              " failed: " + last_failure);
      co_await pause_before_retry(failures, deadline);
    }
  }

  clerk_error unreachable(const http::call_error& error) const {
    return clerk_error(clerk_error::reason::unreachable, 0,
                       "server " + server_text + " cannot be reached: " + error.message, error.message);
  }

  // The backoff after `failures` unanswered attempts, cut short by the deadline.
  asio::awaitable<void> pause_before_retry(unsigned failures, clock::time_point deadline) {
    auto pause = backoff(failures);
    if (deadline != clock::time_point::max())
      pause = std::min(pause, std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()));
    if (pause.count() <= 0) co_return;
    asio::steady_timer timer(co_await asio::this_coro::executor, pause);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  struct write_answer {
    nlohmann::json body;     // the 200 reply
    bool mismatch = false;   // a 412 version mismatch
    std::uint64_t version = 0;
    bool maybe = false;      // no answer by the deadline, or a mismatch that may be our own success
  };

  // A versioned write: like call(), but a 412 is an answer and a passed deadline is "maybe applied".
  asio::awaitable<write_answer> call_write(const char* target, std::string body) {
    const auto started = clock::now();
    const auto deadline = options.deadline.count() > 0 ? started + options.deadline : clock::time_point::max();
    bool lost_attempt = false;
    for (unsigned failures = 0;; ++failures) {
      auto now = clock::now();
      if (now >= deadline) {
        write_answer unknown;
        unknown.maybe = true;
        co_return unknown;
      }
      auto timeout = options.attempt_timeout;
      if (deadline != clock::time_point::max())
        timeout = std::min(timeout, std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
      ++attempts;
      auto result = co_await http.call_raw(boost::beast::http::verb::post, target, body, timeout);
      if (result.answered() && (result.status == 200 || result.status == 412)) {
        auto reply = nlohmann::json::parse(result.body, nullptr, false);
        auto version = reply.is_object() ? reply.find("version") : reply.end();
        if (!reply.is_object() || version == reply.end() || !version->is_number_unsigned())
          throw clerk_error(clerk_error::reason::bad_reply, result.status,
                            "server " + server_text + " sent a reply without a 'version'");
        write_answer answer;
        answer.version = version->get<std::uint64_t>();
        if (result.status == 412) {
          answer.mismatch = true;
          // Our own earlier attempt may have executed and this be its effect seen anew.
          answer.maybe = lost_attempt && (!options.request_ids || clock::now() - started >= options.server_client_ttl);
        }
        answer.body = std::move(reply);
        co_return answer;
      }
      if (result.answered() && result.status < 500) {
        auto reply = nlohmann::json::parse(result.body, nullptr, false);
        std::string message = reply.is_object() && reply.contains("error") && reply["error"].is_string()
                                  ? reply["error"].get<std::string>()
                                  : std::string("(no error text)");
        throw clerk_error(clerk_error::reason::rejected, result.status,
                          "server " + server_text + " refused the request (HTTP " + std::to_string(result.status) +
                              "): " + message);
      }
      if (!result.answered() && !http::worth_retrying(*result.error, http::patience::person)) {
        // After an attempt that went unanswered the write may have been applied: say so, not "unreachable".
        if (!lost_attempt) throw unreachable(*result.error);
        write_answer unknown;
        unknown.maybe = true;
        co_return unknown;
      }
      lost_attempt = true;
      std::string failure = result.answered() ? "HTTP " + std::to_string(result.status) : result.error->describe();
      log::debug("clerk", options.client_id + " attempt " + std::to_string(failures + 1) + " to " + target +
                              " failed: " + failure);
      co_await pause_before_retry(failures, deadline);
    }
  }

  asio::awaitable<write_outcome> versioned_write(const char* target, std::string key, const std::string* value,
                                                 write_options w) {
    check_utf8(key, "key");
    if (value) check_utf8(*value, "value");
    std::optional<std::uint32_t> lease_ms;
    if (w.lease) {
      if (w.lease->count() < 1 || w.lease->count() > std::numeric_limits<std::uint32_t>::max())
        throw std::invalid_argument("a lease is 1 ms to 2^32-1 ms");
      lease_ms = static_cast<std::uint32_t>(w.lease->count());
    }
    std::string_view value_view = value ? std::string_view(*value) : std::string_view();
    const std::uint64_t this_seq = ++seq;
    auto body = write_request_body(key, value ? &value_view : nullptr,
                                   options.request_ids ? std::string_view(options.client_id) : std::string_view(),
                                   this_seq, w.expected_version, lease_ms);
    auto answer = co_await call_write(target, std::move(body));
    write_outcome outcome;
    outcome.version = answer.version;
    if (answer.maybe) outcome.result = write_outcome::status::maybe_applied;
    else if (answer.mismatch) outcome.result = write_outcome::status::version_mismatch;
    else if (auto it = answer.body.find("value"); it != answer.body.end() && it->is_string())
      outcome.old_value = std::move(it->get_ref<std::string&>());
    co_return outcome;
  }

  std::string take_value(nlohmann::json& reply) {
    auto it = reply.find("value");
    if (it == reply.end() || !it->is_string())
      throw clerk_error(clerk_error::reason::bad_reply, 200,
                        "server " + server_text + " sent a reply without a string 'value'");
    return std::move(it->get_ref<std::string&>());
  }
};

clerk::clerk(asio::any_io_executor executor, http::url server, clerk_options options)
    : impl_(std::make_unique<impl>(std::move(executor), std::move(server), std::move(options))) {}

clerk::~clerk() = default;
clerk::clerk(clerk&&) noexcept = default;
clerk& clerk::operator=(clerk&&) noexcept = default;

asio::awaitable<std::string> clerk::get(std::string key) {
  call_guard guard(impl_->busy);
  check_utf8(key, "key");
  auto reply = co_await impl_->call("/v1/get", get_request_body(key));
  co_return impl_->take_value(reply);
}

asio::awaitable<void> clerk::put(std::string key, std::string value) {
  call_guard guard(impl_->busy);
  check_utf8(key, "key");
  check_utf8(value, "value");
  auto body = write_request_body(key, value, impl_->options.client_id, ++impl_->seq);
  std::string().swap(value);  // the body holds the only copy needed from here on
  co_await impl_->call("/v1/put", std::move(body));
}

asio::awaitable<std::string> clerk::append(std::string key, std::string value) {
  call_guard guard(impl_->busy);
  check_utf8(key, "key");
  check_utf8(value, "value");
  auto body = write_request_body(key, value, impl_->options.client_id, ++impl_->seq);
  std::string().swap(value);
  auto reply = co_await impl_->call("/v1/append", std::move(body));
  co_return impl_->take_value(reply);
}

asio::awaitable<versioned> clerk::get_versioned(std::string key) {
  call_guard guard(impl_->busy);
  check_utf8(key, "key");
  auto reply = co_await impl_->call("/v1/get", get_request_body(key));
  auto version = reply.find("version");
  if (version == reply.end() || !version->is_number_unsigned())
    throw clerk_error(clerk_error::reason::bad_reply, 200,
                      "server " + impl_->server_text + " sent a reply without a 'version'");
  versioned out;
  out.version = version->get<std::uint64_t>();
  out.value = impl_->take_value(reply);
  co_return out;
}

asio::awaitable<write_outcome> clerk::put(std::string key, std::string value, write_options options) {
  call_guard guard(impl_->busy);
  co_return co_await impl_->versioned_write("/v1/put", std::move(key), &value, options);
}

asio::awaitable<write_outcome> clerk::put(std::string key, std::string value, std::uint64_t expected_version) {
  write_options options;
  options.expected_version = expected_version;
  co_return co_await put(std::move(key), std::move(value), options);
}

asio::awaitable<write_outcome> clerk::append(std::string key, std::string value, write_options options) {
  call_guard guard(impl_->busy);
  if (options.lease) throw std::invalid_argument("a lease is set by a put only");
  co_return co_await impl_->versioned_write("/v1/append", std::move(key), &value, options);
}

asio::awaitable<write_outcome> clerk::remove(std::string key, std::optional<std::uint64_t> expected_version) {
  call_guard guard(impl_->busy);
  write_options options;
  options.expected_version = expected_version;
  co_return co_await impl_->versioned_write("/v1/delete", std::move(key), nullptr, options);
}

asio::awaitable<listed_page> clerk::list(std::string prefix, std::optional<std::string> after, std::size_t limit) {
  call_guard guard(impl_->busy);
  check_utf8(prefix, "prefix");
  if (after) check_utf8(*after, "key to list after");
  auto reply = co_await impl_->call(
      "/v1/list", list_request_body(prefix, after ? std::optional<std::string_view>(*after) : std::nullopt, limit));
  listed_page page;
  auto items = reply.find("items");
  auto more = reply.find("more");
  if (items == reply.end() || !items->is_array() || more == reply.end() || !more->is_boolean())
    throw clerk_error(clerk_error::reason::bad_reply, 200,
                      "server " + impl_->server_text + " sent a list reply without 'items' and 'more'");
  page.more = more->get<bool>();
  for (auto& item : *items) {
    if (!item.is_object() || !item.contains("key") || !item["key"].is_string() || !item.contains("value") ||
        !item["value"].is_string() || !item.contains("version") || !item["version"].is_number_unsigned())
      throw clerk_error(clerk_error::reason::bad_reply, 200,
                        "server " + impl_->server_text + " sent a list item without key, value and version");
    page.items.push_back(listed_key{std::move(item["key"].get_ref<std::string&>()),
                                    std::move(item["value"].get_ref<std::string&>()),
                                    item["version"].get<std::uint64_t>()});
  }
  co_return page;
}

const std::string& clerk::client_id() const noexcept { return impl_->options.client_id; }
std::uint64_t clerk::last_seq() const noexcept { return impl_->seq; }
std::uint64_t clerk::attempts() const noexcept { return impl_->attempts; }
std::size_t clerk::connections_opened() const noexcept { return impl_->http.connections_opened(); }

}  // namespace mrkv::kv
