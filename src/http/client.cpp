#include "mrkv/http/client.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/http/name_lookup.hpp"
#include "wire.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>

#include <array>
#include <optional>

namespace mrkv::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

raw_result no_answer(std::string message, bool lasting = false) {
  return raw_result{0, {}, call_error{call_error::kind::no_answer, 0, std::move(message), lasting}};
}

}  // namespace

bool worth_retrying(const call_error& error, patience who) noexcept {
  if (error.what == call_error::kind::no_answer) return !error.lasting || who == patience::daemon;
  return error.status >= 500;
}

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
  std::shared_ptr<asio::ssl::context> tls;  // set for https:// servers
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  std::string wire;  // the head of the request being sent
  std::optional<tcp::resolver::results_type> resolved;
  std::size_t opened = 0;

  std::optional<name_lookup> lookup;  // for a server named by host name, not address

  asio::awaitable<boost::system::error_code> resolve(std::chrono::steady_clock::time_point deadline) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(server.address.host, ec);
    if (!ec) {
      resolved = tcp::resolver::results_type::create(tcp::endpoint(address, server.address.port),
                                                     server.address.host, std::to_string(server.address.port));
      co_return boost::system::error_code{};
    }
    if (!lookup) lookup.emplace(server.address.host, std::to_string(server.address.port));
    auto [lookup_ec, results] = co_await lookup->wait(deadline);
    if (lookup_ec) co_return lookup_ec;
    resolved = std::move(results);
    co_return boost::system::error_code{};
  }

  bool connected() const { return plain.has_value() || secure.has_value(); }

  void drop() {
    plain.reset();
    secure.reset();
  }

  asio::awaitable<std::optional<raw_result>> connect(std::chrono::steady_clock::time_point deadline) {
    if (!resolved) {
      if (auto ec = co_await resolve(deadline))
        co_return no_answer("resolving " + server.address.host + ": " + ec.message(),
                            ec == asio::error::host_not_found || ec == asio::error::no_data);
    }
    beast::tcp_stream stream(executor);
    buffer.clear();
    stream.expires_at(deadline);
    auto [ec, endpoint] = co_await stream.async_connect(*resolved, use_tuple);
    if (ec) {
      resolved.reset();  // a name may point somewhere else next time
      co_return no_answer("connecting to " + to_string(server.address) + ": " + ec.message());
    }
    ++opened;
    boost::system::error_code ignored;
    stream.socket().set_option(tcp::no_delay(true), ignored);
    if (!tls) {
      plain.emplace(std::move(stream));
      co_return std::nullopt;
    }
    secure.emplace(std::move(stream), *tls);
    // SNI, and a certificate that must name the host we asked for.
    SSL_set_tlsext_host_name(secure->native_handle(), server.address.host.c_str());
    secure->set_verify_callback(asio::ssl::host_name_verification(server.address.host));
    auto [handshake_ec] = co_await secure->async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (handshake_ec) {
      secure.reset();
      // OpenSSL's own verdicts (certificate verify failed, wrong version number from a plain-HTTP
      // server) stand; a reset or a timeout in mid-handshake may be a server restarting.
      co_return no_answer("TLS handshake with " + to_string(server.address) + ": " + handshake_ec.message(),
                          handshake_ec.category() == asio::error::get_ssl_category());
    }
    co_return std::nullopt;
  }

  asio::awaitable<raw_result> call_raw(bhttp::verb method, std::string target, std::string body,
                                       std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    bool reused = connected();
    if (!reused) {
      if (auto failed = co_await connect(deadline)) co_return std::move(*failed);
    }
    // The request's head, written by hand into a buffer the client reuses, then sent with the body in
    // one gathered write, as the server answers (Beast's serializer costs more than the rest of a small
    // call).
    wire.clear();
    wire += bhttp::to_string(method);
    wire += ' ';
    wire += server.base_path;
    wire += target;
    wire += " HTTP/1.1\r\nHost: ";
    wire += host_header;
    wire += "\r\nUser-Agent: mrkv/" MRKV_VERSION "\r\n";
    if (!options.auth_token.empty()) {
      wire += "Authorization: Bearer ";
      wire += options.auth_token;
      wire += "\r\n";
    }
    if (method != bhttp::verb::get && method != bhttp::verb::head) {
      wire += "Content-Type: application/json\r\nContent-Length: ";
      wire += std::to_string(body.size());
      wire += "\r\n";
    }
    wire += "\r\n";
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(options.max_reply_body);
    auto read_ec = plain ? co_await exchange(*plain, body, parser, deadline)
                         : co_await exchange(*secure, body, parser, deadline);
    if (read_ec) {
      drop();
      std::string what = read_ec == beast::error::timeout ? "timed out after " + log::duration(timeout)
                                                          : read_ec.message();
      if (reused && read_ec != beast::error::timeout) what += " (on a reused connection)";
      co_return no_answer(what + " from " + to_string(server.address));
    }
    auto res = parser.release();
    if (!res.keep_alive()) drop();
    co_return raw_result{res.result_int(), std::move(res.body()), std::nullopt};
  }

  asio::awaitable<call_result> call(bhttp::verb method, std::string target, std::string body,
                                    std::chrono::milliseconds timeout) {
    auto raw = co_await call_raw(method, std::move(target), std::move(body), timeout);
    if (raw.error) co_return call_result{{}, 0, std::move(raw.error)};
    const unsigned status = raw.status;
    auto parsed = nlohmann::json::parse(raw.body, nullptr, false);
    if (status >= 400) {
      std::string message = raw.body.substr(0, 500);
      if (!parsed.is_discarded() && parsed.is_object() && parsed.contains("error") && parsed["error"].is_string())
        message = parsed["error"].get<std::string>();
      co_return call_result{{}, status, call_error{call_error::kind::rejected, status, std::move(message)}};
    }
    if (parsed.is_discarded())
      co_return call_result{{}, status, call_error{call_error::kind::bad_reply, status, "reply is not valid JSON"}};
    co_return call_result{std::move(parsed), status, std::nullopt};
  }

  template <class Stream>
  asio::awaitable<boost::system::error_code> exchange(Stream& stream, const std::string& body,
                                                      bhttp::response_parser<bhttp::string_body>& parser,
                                                      std::chrono::steady_clock::time_point deadline) {
    beast::get_lowest_layer(stream).expires_at(deadline);
    if (auto write_ec = co_await write_head_and_body(stream, wire, body)) co_return write_ec;
    auto [read_ec, n] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
    co_return read_ec;
  }
};

client::client(asio::any_io_executor executor, url server, client_options options) : impl_(std::make_unique<impl>()) {
  impl_->executor = std::move(executor);
  impl_->host_header = to_string(server.address);
  impl_->server = std::move(server);
  impl_->options = std::move(options);
  if (impl_->server.scheme == "https") {
    impl_->tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    impl_->tls->set_default_verify_paths();
    if (!impl_->options.tls_ca_file.empty()) impl_->tls->load_verify_file(impl_->options.tls_ca_file);
    impl_->tls->set_verify_mode(asio::ssl::verify_peer);
  }
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

asio::awaitable<raw_result> client::call_raw(bhttp::verb method, std::string target, std::string body,
                                             std::chrono::milliseconds timeout) {
  return impl_->call_raw(method, std::move(target), std::move(body), timeout);
}

void client::close() { impl_->drop(); }

std::size_t client::connections_opened() const noexcept { return impl_->opened; }

const url& client::server() const noexcept { return impl_->server; }

}  // namespace mrkv::http
