#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "mr/fixtures.hpp"
#include "mrkv/mr/map_output.hpp"
#include "mrkv/mr/task_files.hpp"

using namespace mrkv::mr;
using mrkv::mr::testing::temp_dir;

namespace {

std::string encode(const std::vector<std::pair<std::string, std::string>>& records) {
  intermediate_encoder enc;
  for (const auto& [k, v] : records) enc.add(k, v);
  return enc.finish();
}

std::vector<std::pair<std::string, std::string>> decode(std::string_view image) {
  std::vector<kv_view> views;
  decode_intermediate(image, "test", views);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& p : views) out.emplace_back(p.key, p.value);
  return out;
}

bool rejected(std::string_view image) {
  std::vector<kv_view> views{{"keep", "me"}};
  try {
    decode_intermediate(image, "test", views);
  } catch (const task_file_error& e) {
    // A failed decode must leave what was there before, and say what is wrong.
    return e.why() == task_file_error::kind::corrupt && views.size() == 1 && views[0].key == "keep" &&
           std::string_view(e.what()).starts_with("corrupt intermediate file test: ");
  }
  return false;
}

void put_le64(std::string& s, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Rewrites the footer of an image built from `body` (records only) with `count` and a valid checksum,
// so the decoder gets past the checksum and has to cope with the records themselves.
std::string forge(std::string_view body, std::uint64_t count) {
  std::string image("mrkvint\x01", 8);
  image.append(body);
  image.append(8, '\0');
  put_le64(image, image.size() - 8, count);
  const std::uint64_t sum = intermediate_checksum(image);
  image.append(8, '\0');
  put_le64(image, image.size() - 8, sum);
  image.append("mrkvend\n");
  return image;
}

}  // namespace

TEST_SUITE("mr") {
  TEST_CASE("mr task files: names") {
    CHECK(output_file_name(7) == "mr-out-7");
    CHECK(output_file_name(12) == "mr-out-12");
    CHECK(map_output_file_name(3) == "mr-3.map");
  }

  TEST_CASE("mr task files: intermediate round trip") {
    const std::string long_key(300, 'k');      // a two-byte length
    const std::string huge_value(70000, 'v');  // a three-byte length
    const std::vector<std::pair<std::string, std::string>> records = {
        {"a", "1"},
        {"", ""},
        {std::string("nul\0inside", 10), "\n\xff\x80"},
        {long_key, huge_value},
        {"a", "2"},
    };
    const std::string image = encode(records);
    CHECK(decode(image) == records);

    // An empty bucket is a valid file with no records.
    const std::string empty = encode({});
    CHECK(empty.size() == 32);
    CHECK(decode(empty).empty());

    // Decoding appends, so one vector can gather several files.
    const std::string other = encode({{"z", "9"}});
    std::vector<kv_view> all;
    decode_intermediate(image, "one", all);
    decode_intermediate(other, "two", all);
    REQUIRE(all.size() == records.size() + 1);
    CHECK(all.back().key == "z");

    // The encoder starts over after finish().
    intermediate_encoder enc;
    enc.add("x", "y");
    CHECK(enc.records() == 1);
    const std::string first = enc.finish();
    CHECK(enc.records() == 0);
    CHECK(enc.finish() == empty);
    CHECK(decode(first).size() == 1);
  }

  TEST_CASE("mr task files: every truncation and every bit flip is rejected") {
    const std::string image = encode({{"hello", "1"}, {"world", "22"}, {"", "x"}, {"caf\xc3\xa9", "333"}});
    for (std::size_t n = 0; n < image.size(); ++n) {
      CAPTURE(n);
      CHECK(rejected(std::string_view(image).substr(0, n)));
    }
    for (std::size_t i = 0; i < image.size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string bad = image;
        bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
        CAPTURE(i);
        CAPTURE(bit);
        CHECK(rejected(bad));
      }
    }
    CHECK(rejected(image + "x"));
    CHECK(rejected("x" + image));
  }

  TEST_CASE("mr task files: hostile images that pass the checksum are rejected without over-allocating") {
    CHECK(decode(forge("", 0)).empty());
    CHECK(decode(forge(std::string("\x01k\x01v", 4), 1)).size() == 1);

    CHECK(rejected(forge("", 1)));                                     // a record that isn't there
    CHECK(rejected(forge("", ~std::uint64_t{0})));                     // absurd count, nothing reserved
    CHECK(rejected(forge(std::string(100, '\0'), 1'000'000'000'000)));  // count far beyond the bytes
    CHECK(rejected(forge(std::string("\x01k\x01v", 4), 0)));           // stray bytes after the records
    CHECK(rejected(forge(std::string("\x01k\x01v\x00", 5), 1)));
    CHECK(rejected(forge(std::string("\x05k\x01v", 4), 1)));           // key overruns the body
    CHECK(rejected(forge(std::string("\x01k\x7fv", 4), 1)));           // value overruns the body
    CHECK(rejected(forge(std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10), 1)));  // 70-bit length
    CHECK(rejected(forge(std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10), 1)));  // 2^64-1 bytes
    CHECK(rejected(forge(std::string("\x80\x80\x80", 3), 1)));         // varint runs off the end
    std::string wrong_version = encode({});
    wrong_version[7] = '\x02';
    CHECK_THROWS_WITH_AS(decode(wrong_version), doctest::Contains("format version 2, expected 1"), task_file_error);
    CHECK_THROWS_WITH_AS(decode("{\"Key\":\"a\",\"Value\":\"1\"}\n---------"), doctest::Contains("bad magic"),
                         task_file_error);
  }

  TEST_CASE("mr task files: random garbage never crashes the decoder") {
    std::mt19937_64 rng(20240402);
    const std::string valid = encode({{"a", "1"}, {"bb", "22"}, {"ccc", "333"}});
    for (int round = 0; round < 20000; ++round) {
      std::string s;
      if (round % 2 == 0) {
        s.resize(rng() % 80);
        for (char& c : s) c = static_cast<char>(rng());
        if (round % 4 == 0 && s.size() >= 8) std::memcpy(s.data(), "mrkvint\x01", 8);
      } else {
        // A valid body with random edits, re-signed so the parser itself is exercised.
        std::string body = valid.substr(8, valid.size() - 32);
        for (int e = 0; e < 3; ++e) {
          if (body.empty()) break;
          body[rng() % body.size()] = static_cast<char>(rng());
        }
        s = forge(body, rng() % 6);
      }
      std::vector<kv_view> out;
      try {
        decode_intermediate(s, "fuzz", out);
        for (const auto& p : out) {
          // Whatever was accepted lies inside the image.
          CHECK(p.key.data() >= s.data());
          CHECK(p.value.data() + p.value.size() <= s.data() + s.size());
        }
      } catch (const task_file_error& e) {
        CHECK(e.why() == task_file_error::kind::corrupt);
      }
    }
  }

  TEST_CASE("mr task files: atomic write publishes whole files and leaves no temporary behind") {
    temp_dir dir;
    const auto target = dir.path() / "mr-out-3";
    write_file_atomically(target, "first\n");
    CHECK(read_whole_file(target) == "first\n");
    write_file_atomically(target, "second, longer\n", sync_mode::fsync);
    CHECK(read_whole_file(target) == "second, longer\n");
    write_file_atomically(target, "");
    CHECK(read_whole_file(target).empty());
    CHECK(dir.entries() == std::vector<std::string>{"mr-out-3"});

    // A big file (several write() calls' worth) arrives intact.
    std::string big(5'000'000, 'x');
    for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i % 26);
    write_file_atomically(dir.path() / "mr-1-2", big);
    CHECK(read_whole_file(dir.path() / "mr-1-2") == big);
    CHECK(dir.entries() == std::vector<std::string>{"mr-1-2", "mr-out-3"});
  }

  TEST_CASE("mr task files: a failed atomic write cleans up and says why") {
    temp_dir dir;
    // The target is a non-empty directory, so the final rename fails after the data was written.
    std::filesystem::create_directories(dir.path() / "mr-out-0" / "inside");
    try {
      write_file_atomically(dir.path() / "mr-out-0", "data");
      FAIL("expected task_file_error");
    } catch (const task_file_error& e) {
      CHECK(e.why() == task_file_error::kind::io);
      CHECK(std::string_view(e.what()).find("cannot rename") != std::string_view::npos);
    }
    CHECK(dir.entries() == std::vector<std::string>{"mr-out-0"});

    try {
      write_file_atomically(dir.path() / "no-such-dir" / "mr-out-1", "data");
      FAIL("expected task_file_error");
    } catch (const task_file_error& e) {
      CHECK(e.why() == task_file_error::kind::io);  // a missing directory is no missing input
      CHECK(std::string_view(e.what()).find("cannot create a temporary file for") != std::string_view::npos);
    }
    CHECK(dir.entries() == std::vector<std::string>{"mr-out-0"});
  }

  TEST_CASE("mr task files: concurrent writers of one output never expose anything but the final name") {
    temp_dir dir;
    const auto target = dir.path() / "mr-out-0";
    const std::string contents(200'000, 'y');
    std::atomic<bool> done{false};
    std::atomic<int> failures{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < 3; ++t) {
      writers.emplace_back([&] {
        try {
          for (int i = 0; i < 30; ++i) write_file_atomically(target, contents);
        } catch (...) {
          ++failures;
        }
      });
    }
    // Watch the directory the way `sort mr-out*` would while the writers race.
    int bad_names = 0;
    int partial = 0;
    std::thread watcher([&] {
      while (!done.load()) {
        std::error_code ec;
        for (std::filesystem::directory_iterator it(dir.path(), ec), end; !ec && it != end; it.increment(ec)) {
          const std::string name = it->path().filename().string();
          if (name.starts_with("mr-") && name != "mr-out-0") ++bad_names;
          if (name == "mr-out-0") {
            std::error_code size_ec;
            const auto size = std::filesystem::file_size(it->path(), size_ec);
            if (!size_ec && size != contents.size()) ++partial;
          }
        }
      }
    });
    for (auto& w : writers) w.join();
    done = true;
    watcher.join();
    CHECK(failures == 0);
    CHECK(bad_names == 0);
    CHECK(partial == 0);
    CHECK(read_whole_file(target) == contents);
    CHECK(dir.entries() == std::vector<std::string>{"mr-out-0"});
  }

  TEST_CASE("mr task files: reading a missing or unreadable file") {
    temp_dir dir;
    try {
      read_whole_file(dir.path() / "mr-0-0");
      FAIL("expected task_file_error");
    } catch (const task_file_error& e) {
      CHECK(e.why() == task_file_error::kind::missing);
      CHECK(std::string_view(e.what()) == "cannot open " + (dir.path() / "mr-0-0").string() +
                                              ": No such file or directory");
    }
    CHECK_THROWS_WITH_AS(read_whole_file(dir.path()), doctest::Contains("Is a directory"), task_file_error);
    write_file_atomically(dir.path() / "empty", "");
    CHECK(read_whole_file(dir.path() / "empty").empty());
  }
}
