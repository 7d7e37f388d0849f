// A file as a reply, with the one byte range a client may ask for.
#include "mrkv/http/file_reply.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using namespace mrkv::http;

request get_with_range(const std::string& range) {
  request req{verb::get, "/v1/inputs/-/0", 11};
  if (!range.empty()) req.set(boost::beast::http::field::range, range);
  return req;
}

std::string header(const reply& r, const std::string& name) {
  for (const auto& [n, v] : r.headers)
    if (n == name) return v;
  return "";
}

}  // namespace

TEST_SUITE("http") {
  TEST_CASE("file reply: whole files and byte ranges, 404 and 416") {
    const fs::path path = fs::temp_directory_path() / ("mrkv-file-reply-" + std::to_string(::getpid()));
    std::ofstream(path, std::ios::binary) << "0123456789";
    auto whole = file_reply(get_with_range(""), path);
    CHECK(whole.status == 200);
    CHECK(whole.body == "0123456789");  // no newline added: bytes go out as they are
    CHECK(std::string(whole.content_type) == octet_stream);
    CHECK(header(whole, "Accept-Ranges") == "bytes");

    auto middle = file_reply(get_with_range("bytes=2-4"), path);
    CHECK(middle.status == 206);
    CHECK(middle.body == "234");
    CHECK(header(middle, "Content-Range") == "bytes 2-4/10");
    CHECK(file_reply(get_with_range("bytes=7-"), path).body == "789");
    CHECK(file_reply(get_with_range("bytes=-3"), path).body == "789");
    CHECK(file_reply(get_with_range("bytes=8-100"), path).body == "89");
    // What this server does not take (several ranges, nonsense) is answered with the whole file.
    CHECK(file_reply(get_with_range("bytes=0-1,4-5"), path).status == 200);
    CHECK(file_reply(get_with_range("lines=1-2"), path).status == 200);
    try {
      file_reply(get_with_range("bytes=10-"), path);
      FAIL("expected 416");
    } catch (const request_error& e) {
      CHECK(e.status() == 416);
    }
    fs::remove(path);
    try {
      file_reply(get_with_range(""), path);
      FAIL("expected 404");
    } catch (const request_error& e) {
      CHECK(e.status() == 404);
    }
  }
}
