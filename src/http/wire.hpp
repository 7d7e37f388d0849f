// The bytes the server writes by hand rather than through Beast's serializer: a response's head, the
// interim 100 Continue, and the fixed 503 for a connection over the limit. Private to the http layer.
#pragma once

#include "mrkv/http/router.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <tuple>
#include <type_traits>

#include <array>
#include <string>
#include <string_view>

namespace mrkv::http {

// The response's status line and fields as bytes on the wire, in a buffer that the connection reuses;
// the body follows from the response itself in the same gathered write. Beast's serializer, which this
// replaces, cost about a third of a small request's instructions (callgrind).
void serialize_head_into(std::string& out, const response& res);

// Writes a message's head and body, in one gathered write where that works. Both sides use it: the
// server's replies and the client's requests.
template <class Stream>
boost::asio::awaitable<boost::system::error_code> write_head_and_body(Stream& stream, std::string_view head,
                                                                      std::string_view body) {
  using boost::asio::as_tuple, boost::asio::use_awaitable;
  // Over TLS (Boost 1.81's beast::ssl_stream), a gathered write of a head and a body that together pass
  // the 16 KiB its flat_stream coalesces loses the body (tested in server_test.cpp: the peer sees the
  // head, then a truncated stream). Two writes are what flat_stream does with such a message anyway (it
  // writes the head alone first), so this costs nothing; smaller messages stay one record.
  if constexpr (!std::is_same_v<Stream, boost::beast::tcp_stream>) {
    if (head.size() + body.size() > 16 * 1024) {
      auto [ec, written] = co_await boost::asio::async_write(stream, boost::asio::buffer(head), as_tuple(use_awaitable));
      if (ec) co_return ec;
      std::tie(ec, written) = co_await boost::asio::async_write(stream, boost::asio::buffer(body), as_tuple(use_awaitable));
      co_return ec;
    }
  }
  const std::array<boost::asio::const_buffer, 2> pieces{boost::asio::buffer(head), boost::asio::buffer(body)};
  auto [ec, written] = co_await boost::asio::async_write(stream, pieces, as_tuple(use_awaitable));
  co_return ec;
}

// Writes a response: its head from `head` (scratch space) and its body.
template <class Stream>
boost::asio::awaitable<boost::system::error_code> write_response(Stream& stream, std::string& head,
                                                                 const response& res) {
  serialize_head_into(head, res);
  co_return co_await write_head_and_body(stream, head, res.body());
}

inline constexpr std::string_view continue_bytes = "HTTP/1.1 100 Continue\r\n\r\n";

// 503 with Retry-After and Connection: close, for a connection accepted over --max-connections.
const std::string& refusal_bytes();

}  // namespace mrkv::http
