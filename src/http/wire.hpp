// The bytes the server writes by hand rather than through Beast's serializer: a response's head, the
// interim 100 Continue, and the fixed 503 for a connection over the limit. Private to the http layer.
#pragma once

#include "mrkv/http/router.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <string>
#include <string_view>

namespace mrkv::http {

// The response's status line and fields as bytes on the wire, in a buffer that the connection reuses;
// the body follows from the response itself in the same gathered write. Beast's serializer, which this
// replaces, cost about a third of a small request's instructions (callgrind).
void serialize_head_into(std::string& out, const response& res);

// Writes a response: its head from `head` (scratch space) and its body, in one gathered write.
template <class Stream>
boost::asio::awaitable<boost::system::error_code> write_response(Stream& stream, std::string& head,
                                                                 const response& res) {
  serialize_head_into(head, res);
  const std::array<boost::asio::const_buffer, 2> pieces{boost::asio::buffer(head), boost::asio::buffer(res.body())};
  auto [ec, written] =
      co_await boost::asio::async_write(stream, pieces, boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return ec;
}

inline constexpr std::string_view continue_bytes = "HTTP/1.1 100 Continue\r\n\r\n";

// 503 with Retry-After and Connection: close, for a connection accepted over --max-connections.
const std::string& refusal_bytes();

}  // namespace mrkv::http
