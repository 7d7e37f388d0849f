#include "mrkv/kv/clerk.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/http/client.hpp"
#include "mrkv/kv/protocol.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
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
                          "server " + server_text + " did not answer within " + seconds_text(options.deadline) + " s",
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
      if (error.what == http::call_error::kind::rejected && error.status < 500)
        throw clerk_error(clerk_error::reason::rejected, error.status,
                          "server " + server_text + " refused the request (HTTP " + std::to_string(error.status) +
                              "): " + error.message);
      if (error.what == http::call_error::kind::bad_reply && error.status < 500)
        throw clerk_error(clerk_error::reason::bad_reply, error.status,
                          "server " + server_text + " sent a reply that is not JSON (HTTP " +
                              std::to_string(error.status) + ")");
      last_failure = error.describe();
      log::debug("clerk", options.client_id + " attempt " + std::to_string(failures + 1) + " to " + target +
                              " failed: " + last_failure);
      auto pause = backoff(failures);
      if (deadline != clock::time_point::max())
        pause = std::min(pause, std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()));
      if (pause.count() > 0) {
        asio::steady_timer timer(co_await asio::this_coro::executor, pause);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      }
    }
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

const std::string& clerk::client_id() const noexcept { return impl_->options.client_id; }
std::uint64_t clerk::last_seq() const noexcept { return impl_->seq; }
std::uint64_t clerk::attempts() const noexcept { return impl_->attempts; }
std::size_t clerk::connections_opened() const noexcept { return impl_->http.connections_opened(); }

}  // namespace mrkv::kv
