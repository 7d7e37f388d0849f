#include "mrkv/http/file_reply.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

namespace mrkv::http {
namespace {

struct byte_range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
};

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return v;
}

// nullopt: no range asked for, or one this parser does not take (several ranges): the whole file,
// as RFC 9110 allows. A range past the end is a 416.
std::optional<byte_range> wanted_range(const request& req, std::uint64_t size) {
  const auto it = req.find(boost::beast::http::field::range);
  if (it == req.end()) return std::nullopt;
  std::string_view spec = it->value();
  if (!spec.starts_with("bytes=") || spec.find(',') != std::string_view::npos) return std::nullopt;
  spec.remove_prefix(6);
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto from = spec.substr(0, dash);
  const auto to = spec.substr(dash + 1);
  byte_range r;
  if (from.empty()) {  // the last N bytes
    const auto n = number(to);
    if (!n || *n == 0) return std::nullopt;
    if (size == 0) throw request_error(416, "the file is empty");
    r.first = *n >= size ? 0 : size - *n;
    r.last = size - 1;
    return r;
  }
  const auto first = number(from);
  if (!first) return std::nullopt;
  if (*first >= size) throw request_error(416, "the range starts at byte " + std::to_string(*first) +
                                                   " of a file of " + std::to_string(size) + " bytes");
  r.first = *first;
  r.last = size - 1;
  if (!to.empty()) {
    const auto last = number(to);
    if (!last || *last < *first) return std::nullopt;
    r.last = std::min(*last, size - 1);
  }
  return r;
}

}  // namespace

reply file_reply(const request& req, const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    if (err == ENOENT) throw request_error(404, "no file " + path.filename().string());
    return error_reply(500, "cannot open " + path.filename().string() + ": " + std::strerror(err));
  }
  std::ostringstream all;
  all << in.rdbuf();
  if (in.bad()) return error_reply(500, "cannot read " + path.filename().string());
  std::string bytes = std::move(all).str();
  reply r;
  r.content_type = octet_stream;
  r.headers.emplace_back("Accept-Ranges", "bytes");
  const auto size = static_cast<std::uint64_t>(bytes.size());
  if (auto range = wanted_range(req, size)) {
    r.status = 206;
    r.headers.emplace_back("Content-Range", "bytes " + std::to_string(range->first) + "-" +
                                                std::to_string(range->last) + "/" + std::to_string(size));
    r.body = bytes.substr(static_cast<std::size_t>(range->first),
                          static_cast<std::size_t>(range->last - range->first + 1));
    return r;
  }
  r.body = std::move(bytes);
  return r;
}

}  // namespace mrkv::http
