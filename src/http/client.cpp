#include "mrkv/http/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <optional>

namespace mrkv::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

call_result no_answer(std::string message) {
  return call_result{{}, 0, call_error{call_error::kind::no_answer, 0, std::move(message)}};
}

}  // namespace

std::string call_error::describe() const {
  switch (what) {
    case kind::no_answer: return "no answer: " + message;
    case kind::rejected: return "HTTP " + std::to_string(status) + ": " + message;
    case kind::bad_reply: return "bad reply (HTTP " + std::to_string(status) + "): " + message;
    default: return message;
  }
}

struct client::impl {
  asio::any_io_executor executor;
  url server;
  client_options options;
  std::string host_header;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::optional<tcp::resolver::results_type> resolved;
  std::size_t opened = 0;

  // Resolution has no per-operation cancellation in Asio 1.81, so a timer cancels the resolver itself.
  asio::awaitable<boost::system::error_code> resolve(std::chrono::steady_clock::time_point deadline) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(server.address.host, ec);
    if (!ec) {
      resolved = tcp::resolver::results_type::create(tcp::endpoint(address, server.address.port),
                                                     server.address.host, std::to_string(server.address.port));
      co_return boost::system::error_code{};
    }
    auto resolver = std::make_shared<tcp::resolver>(executor);
    auto timer = std::make_shared<asio::steady_timer>(executor, deadline);
    timer->async_wait([resolver](boost::system::error_code timer_ec) {
      if (!timer_ec) resolver->cancel();
    });
    auto [resolve_ec, results] =
        co_await resolver->async_resolve(server.address.host, std::to_string(server.address.port), use_tuple);
    timer->cancel();
    if (resolve_ec) co_return resolve_ec == asio::error::operation_aborted ? beast::error::timeout : resolve_ec;
    resolved = std::move(results);
    co_return boost::system::error_code{};
  }

  asio::awaitable<call_result> call(bhttp::verb method, std::string target, std::string body,
                                    std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    bool reused = stream.has_value();
    if (!stream) {
      if (!resolved) {
        if (auto ec = co_await resolve(deadline)) co_return no_answer("resolving " + server.address.host + ": " + ec.message());
      }
      stream.emplace(executor);
      buffer.clear();
      stream->expires_at(deadline);
      auto [ec, endpoint] = co_await stream->async_connect(*resolved, use_tuple);
      if (ec) {
        stream.reset();
        resolved.reset();  // a name may point somewhere else next time
        co_return no_answer("connecting to " + to_string(server.address) + ": " + ec.message());
      }
      ++opened;
      boost::system::error_code ignored;
      stream->socket().set_option(tcp::no_delay(true), ignored);
    }
    bhttp::request<bhttp::string_body> req{method, server.base_path + target, 11};
    req.set(bhttp::field::host, host_header);
    req.set(bhttp::field::user_agent, "mrkv/" MRKV_VERSION);
    if (!options.auth_token.empty()) req.set(bhttp::field::authorization, "Bearer " + options.auth_token);
    if (method != bhttp::verb::get && method != bhttp::verb::head) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = std::move(body);
      req.prepare_payload();
    }
    req.keep_alive(true);
    stream->expires_at(deadline);
    auto [write_ec, written] = co_await bhttp::async_write(*stream, req, use_tuple);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(options.max_reply_body);
    boost::system::error_code read_ec = write_ec;
    if (!write_ec) {
      auto [ec, n] = co_await bhttp::async_read(*stream, buffer, parser, use_tuple);
      read_ec = ec;
    }
    if (read_ec) {
      stream.reset();
      std::string what = read_ec == beast::error::timeout ? "timed out after " + std::to_string(timeout.count()) + " ms"
                                                          : read_ec.message();
      if (reused && read_ec != beast::error::timeout) what += " (on a reused connection)";
      co_return no_answer(what + " from " + to_string(server.address));
    }
    auto res = parser.release();
    if (!res.keep_alive()) stream.reset();
    unsigned status = res.result_int();
    auto parsed = nlohmann::json::parse(res.body(), nullptr, false);
    if (status >= 400) {
      std::string message = res.body().substr(0, 500);
      if (!parsed.is_discarded() && parsed.is_object() && parsed.contains("error") && parsed["error"].is_string())
        message = parsed["error"].get<std::string>();
      co_return call_result{{}, status, call_error{call_error::kind::rejected, status, std::move(message)}};
    }
    if (parsed.is_discarded())
      co_return call_result{{}, status, call_error{call_error::kind::bad_reply, status, "reply is not valid JSON"}};
    co_return call_result{std::move(parsed), status, std::nullopt};
  }
};

client::client(asio::any_io_executor executor, url server, client_options options) : impl_(std::make_unique<impl>()) {
  impl_->executor = std::move(executor);
  impl_->host_header = to_string(server.address);
  impl_->server = std::move(server);
  impl_->options = std::move(options);
}

client::~client() = default;
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;

asio::awaitable<call_result> client::post(std::string target, const nlohmann::json& body,
                                          std::chrono::milliseconds timeout) {
  return impl_->call(bhttp::verb::post, std::move(target),
                     body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), timeout);
}

asio::awaitable<call_result> client::get(std::string target, std::chrono::milliseconds timeout) {
  return impl_->call(bhttp::verb::get, std::move(target), {}, timeout);
}

asio::awaitable<call_result> client::call(bhttp::verb method, std::string target, std::string body,
                                          std::chrono::milliseconds timeout) {
  return impl_->call(method, std::move(target), std::move(body), timeout);
}

void client::close() { impl_->stream.reset(); }

std::size_t client::connections_opened() const noexcept { return impl_->opened; }

const url& client::server() const noexcept { return impl_->server; }

}  // namespace mrkv::http
