#include <doctest/doctest.h>

#include <charconv>
#include <map>
#include <string>
#include <vector>

#include "mr/fixtures.hpp"
#include "mrkv/mr/application.hpp"
#include "mrkv/mr/sequential.hpp"
#include "mrkv/mr/words.hpp"

using namespace mrkv::mr;
using mrkv::mr::testing::plugin_path;
using mrkv::mr::testing::read_lines;
using mrkv::mr::testing::sample_inputs;
using mrkv::mr::testing::temp_dir;

namespace {

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  for_each_word(text, [&](std::string_view w) { out.emplace_back(w); });
  return out;
}

using pairs = std::vector<std::pair<std::string, std::string>>;

pairs map_all(application& app, std::string_view filename, std::string_view contents) {
  pairs out;
  app.map(filename, contents, [&](std::string_view k, std::string_view v) { out.emplace_back(k, v); });
  std::sort(out.begin(), out.end());
  return out;
}

std::string reduce(application& app, std::string_view key, std::vector<std::string_view> values) {
  return app.reduce(key, values);
}

// The message of the app_error that loading `name` throws, or "" if it doesn't throw one.
std::string load_error(const std::string& name) {
  try {
    load_application(name);
  } catch (const app_error& e) {
    return e.what();
  }
  return "";
}

std::uint64_t to_count(std::string_view s) {
  std::uint64_t n = 0;
  std::from_chars(s.data(), s.data() + s.size(), n);
  return n;
}

}  // namespace

TEST_SUITE("mr") {
  TEST_CASE("mr words: ASCII separators") {
    using v = std::vector<std::string>;
    CHECK(words("") == v{});
    CHECK(words("  ,.; ") == v{});
    CHECK(words("Hello, world!") == v{"Hello", "world"});
    CHECK(words("don't") == v{"don", "t"});
    CHECK(words("well-known snake_case abc123def 4th") == v{"well", "known", "snake", "case", "abc", "def", "th"});
    CHECK(words("The the THE") == v{"The", "the", "THE"});
    CHECK(words("tail") == v{"tail"});
    CHECK(words("\tx\ny\r\nz") == v{"x", "y", "z"});
  }

  TEST_CASE("mr words: UTF-8 letters join and other code points separate") {
    using v = std::vector<std::string>;
    CHECK(words("caf\xc3\xa9 au lait") == v{"caf\xc3\xa9", "au", "lait"});             // café
    CHECK(words("Gr\xc3\xbc\xc3\x9f" "e!") == v{"Gr\xc3\xbc\xc3\x9f" "e"});            // Grüße
    CHECK(words("\xce\xbb\xcf\x8c\xce\xb3\xce\xbf\xcf\x82") == v{"\xce\xbb\xcf\x8c\xce\xb3\xce\xbf\xcf\x82"});  // λόγος
    CHECK(words("\xd1\x81\xd0\xbb\xd0\xbe\xd0\xb2\xd0\xbe") == v{"\xd1\x81\xd0\xbb\xd0\xbe\xd0\xb2\xd0\xbe"});  // слово
    CHECK(words("\xe6\xbc\xa2\xe5\xad\x97") == v{"\xe6\xbc\xa2\xe5\xad\x97"});        // 漢字 (Lo)
    CHECK(words("a\xc3\x97" "b") == v{"a", "b"});                                    // × is a symbol
    CHECK(words("x\xe2\x80\x94y") == v{"x", "y"});                                   // em dash
    CHECK(words("e\xcc\x81t\xc3\xa9") == v{"e", "t\xc3\xa9"});                       // combining accent (Mn)
    CHECK(words("n\xc2\xaa" "1") == v{"n\xc2\xaa"});                                 // ª is Lo
    CHECK(words("\xf0\xa0\x80\x80z") == v{"\xf0\xa0\x80\x80z"});                     // U+20000, a CJK letter
    CHECK(words("a\xf0\x9f\x98\x80" "b") == v{"a", "b"});                            // emoji
  }

  TEST_CASE("mr words: malformed UTF-8 bytes are separators") {
    using v = std::vector<std::string>;
    CHECK(words("a\xff" "b") == v{"a", "b"});
    CHECK(words("a\x80" "b") == v{"a", "b"});                    // lone continuation byte
    CHECK(words("caf\xc3x") == v{"caf", "x"});                   // truncated sequence: only its lead is dropped
    CHECK(words("caf\xc3") == v{"caf"});                         // truncated at the end
    CHECK(words("\xc1\x81" "A") == v{"A"});                      // overlong 'A' is not a letter
    CHECK(words("x\xe0\x80\x80y") == v{"x", "y"});               // overlong NUL
    CHECK(words("x\xed\xa0\x80y") == v{"x", "y"});               // surrogate
    CHECK(words("x\xf4\x90\x80\x80y") == v{"x", "y"});           // above U+10FFFF
    CHECK(words("\xc3\xa9\xa9\xc3\xa9") == v{"\xc3\xa9", "\xc3\xa9"});  // stray continuation splits
  }

  TEST_CASE("mr words: is_letter table") {
    CHECK(is_letter(U'A'));
    CHECK(is_letter(U'z'));
    CHECK_FALSE(is_letter(U'0'));
    CHECK_FALSE(is_letter(U'_'));
    CHECK(is_letter(0x00AA));   // first non-ASCII range
    CHECK(is_letter(0x00E9));   // é
    CHECK_FALSE(is_letter(0x00D7));  // ×
    CHECK_FALSE(is_letter(0x00F7));  // ÷
    CHECK(is_letter(0x0391));   // Α
    CHECK(is_letter(0x0436));   // ж
    CHECK(is_letter(0x05D0));   // א
    CHECK(is_letter(0x0628));   // ب
    CHECK_FALSE(is_letter(0x0661));  // Arabic-Indic digit one
    CHECK(is_letter(0x4E00));
    CHECK(is_letter(0xAC00));   // Hangul syllable
    CHECK_FALSE(is_letter(0x3000));  // ideographic space
    CHECK_FALSE(is_letter(0x1F600));
    CHECK(is_letter(0x3134A));  // last range
    CHECK_FALSE(is_letter(0x3134B));
    CHECK_FALSE(is_letter(0x10FFFF));
    CHECK_FALSE(is_letter(0x110000));
  }

  TEST_CASE("mr apps: wc map counts each file's words and reduce sums") {
    auto wc = load_application("wc");
    CHECK(wc->name() == "wc");
    CHECK(map_all(*wc, "f", "a b, a! don't") == pairs{{"a", "2"}, {"b", "1"}, {"don", "1"}, {"t", "1"}});
    CHECK(map_all(*wc, "f", "").empty());
    // "1" per occurrence (the lab's encoding) and pre-counted values reduce alike.
    CHECK(reduce(*wc, "a", {"1", "1", "1"}) == "3");
    CHECK(reduce(*wc, "a", {"2", "40"}) == "42");
    CHECK_THROWS_AS(reduce(*wc, "a", {"1", "x"}), app_error);
    CHECK_THROWS_AS(reduce(*wc, "a", {""}), app_error);
    CHECK_THROWS_AS(reduce(*wc, "a", {"18446744073709551615", "1"}), app_error);
  }

  TEST_CASE("mr apps: indexer") {
    auto ix = load_application("indexer");
    CHECK(ix->name() == "indexer");
    CHECK(map_all(*ix, "../doc.txt", "b a b c a") ==
          pairs{{"a", "../doc.txt"}, {"b", "../doc.txt"}, {"c", "../doc.txt"}});
    CHECK(reduce(*ix, "w", {"b.txt", "a.txt", "c.txt"}) == "3 a.txt,b.txt,c.txt");
    CHECK(reduce(*ix, "w", {"only"}) == "1 only");
  }

  TEST_CASE("mr apps: wc over the lab corpus matches the golden counts") {
    temp_dir dir;
    auto wc = load_application("wc");
    run_sequential(*wc, sample_inputs(), dir.path() / "mr-out-0");
    const auto lines = read_lines(dir.path() / "mr-out-0");
    CHECK(lines.size() == 22107);
    std::map<std::string, std::string> counts;
    std::uint64_t tokens = 0;
    for (const auto& line : lines) {
      const auto space = line.find(' ');
      REQUIRE(space != std::string::npos);
      counts[line.substr(0, space)] = line.substr(space + 1);
      tokens += to_count(line.substr(space + 1));
    }
    CHECK(tokens == 623948);
    CHECK(counts["A"] == "509");
    CHECK(counts["ABOUT"] == "2");
    CHECK(counts["ACT"] == "8");
    CHECK(counts["the"] == "29748");
    CHECK(std::is_sorted(lines.begin(), lines.end()));
    CHECK(dir.entries() == std::vector<std::string>{"mr-out-0"});
  }

  TEST_CASE("mr apps: indexer over the lab corpus") {
    temp_dir dir;
    auto ix = load_application("indexer");
    const auto inputs = sample_inputs();
    run_sequential(*ix, inputs, dir.path() / "mr-out-0");
    const auto lines = read_lines(dir.path() / "mr-out-0");
    CHECK(lines.size() == 22107);
    const std::string ernest = inputs[0];  // pg-being_ernest.txt sorts first
    const std::string tom = inputs[7];     // pg-tom_sawyer.txt sorts last
    CHECK(std::find(lines.begin(), lines.end(), "Earnest 2 " + ernest + "," + tom) != lines.end());
  }

  TEST_CASE("mr apps: unknown names") {
    CHECK(load_error("nope").find("unknown application \"nope\"") != std::string::npos);
    CHECK(load_error("").find("unknown application") != std::string::npos);
    CHECK(load_error("WC").find("unknown application") != std::string::npos);
  }

  TEST_CASE("mr plugins: nocrash loads and runs through the C ABI") {
    const std::string path = plugin_path("nocrash");
    auto app = load_application(path);
    CHECK(app->name() == path);
    CHECK(map_all(*app, "../pg-x.txt", "hello") ==
          pairs{{"a", "../pg-x.txt"}, {"b", "11"}, {"c", "5"}, {"d", "xyzzy"}});
    CHECK(reduce(*app, "a", {"y", "x", "z"}) == "x y z");
    CHECK(reduce(*app, "d", {}) == "");

    // Loading twice gives two independent handles on the one library.
    auto again = load_application(path);
    CHECK(reduce(*again, "b", {"2", "10"}) == "10 2");
  }

  TEST_CASE("mr plugins: nocrash over the lab corpus gives the crash test's c and d lines") {
    temp_dir dir;
    auto app = load_application(plugin_path("nocrash"));
    run_sequential(*app, sample_inputs(), dir.path() / "mr-out-0");
    const auto lines = read_lines(dir.path() / "mr-out-0");
    REQUIRE(lines.size() == 4);
    CHECK(lines[0].starts_with("a /"));
    CHECK(lines[1].starts_with("b "));
    CHECK(lines[2] == "c 138885 139054 412665 441033 453168 540174 581863 594262");
    CHECK(lines[3] == "d xyzzy xyzzy xyzzy xyzzy xyzzy xyzzy xyzzy xyzzy");
  }

  TEST_CASE("mr plugins: slow without MRKV_SLOW_MAP_MS is wc") {
    temp_dir dir;
    auto slow = load_application(plugin_path("slow"));
    auto wc = load_application("wc");
    run_sequential(*slow, sample_inputs(), dir.path() / "slow");
    run_sequential(*wc, sample_inputs(), dir.path() / "wc");
    CHECK(read_whole_file(dir.path() / "slow") == read_whole_file(dir.path() / "wc"));
  }

  TEST_CASE("mr plugins: rtiming and early_exit maps") {
    auto rt = load_application(plugin_path("rtiming"));
    const auto p = map_all(*rt, "whatever", "ignored");
    REQUIRE(p.size() == 10);
    CHECK(p.front() == std::pair<std::string, std::string>{"a", "1"});
    CHECK(p.back() == std::pair<std::string, std::string>{"j", "1"});

    auto ee = load_application(plugin_path("early_exit"));
    CHECK(map_all(*ee, "../pg-grimm.txt", "text") == pairs{{"../pg-grimm.txt", "1"}});
    CHECK(reduce(*ee, "../pg-grimm.txt", {"1"}) == "1");
  }

  TEST_CASE("mr plugins: load failures are app_errors naming the plugin and the problem") {
    const std::string bad_abi = plugin_path("bad_abi");
    CHECK(load_error(bad_abi) == "plugin " + bad_abi + ": ABI version 2, expected 1");

    const std::string missing = plugin_path("missing_reduce");
    CHECK(load_error(missing) == "plugin " + missing + ": missing symbol mrkv_reduce");

    const std::string absent = plugin_path("no_such_plugin");
    const std::string e = load_error(absent);
    CHECK(e.starts_with("plugin " + absent + ": cannot load: "));
    CHECK(e.find("No such file") != std::string::npos);
    CHECK(e.find('\n') == std::string::npos);

    // A bare "x.so" means the current directory, not the library search path.
    CHECK(load_error("libc.so.6.so").starts_with("plugin libc.so.6.so: cannot load: "));
    CHECK(load_error("./not-a-plugin").starts_with("plugin ./not-a-plugin: cannot load: "));
    // A file that exists but is not a shared library.
    const std::string not_elf = std::string(MRKV_SAMPLE_DATA_DIR) + "/README.md";
    CHECK(load_error(not_elf).starts_with("plugin " + not_elf + ": cannot load: "));
  }

  TEST_CASE("mr plugins: a plugin that breaks the emit contract is reported") {
    const std::string path = plugin_path("bad_reduce");
    auto app = load_application(path);
    CHECK(reduce(*app, "fine", {"x", "y"}) == "2");

    auto error_of = [&](std::string_view key) -> std::string {
      try {
        reduce(*app, key, {"x"});
      } catch (const app_error& e) {
        return e.what();
      }
      return "";
    };
    CHECK(error_of("none") == "plugin " + path + ": mrkv_reduce emitted 0 pairs for key \"none\", expected exactly 1");
    CHECK(error_of("two") == "plugin " + path + ": mrkv_reduce emitted 2 pairs for key \"two\", expected exactly 1");
    CHECK(error_of("other") == "plugin " + path + ": mrkv_reduce for key \"other\" emitted key \"not-other\"");
    CHECK(error_of("null").find("null pointer") != std::string::npos);

    CHECK(map_all(*app, "fine", "") == pairs{{"k", "v"}});
    CHECK_THROWS_WITH_AS(map_all(*app, "null", ""), doctest::Contains("mrkv_map emitted a null pointer"), app_error);
  }

  TEST_CASE("mr plugins: an exception thrown by the sink comes back out of the plugin") {
    auto app = load_application(plugin_path("rtiming"));
    int calls = 0;
    CHECK_THROWS_WITH_AS(app->map("f", "", [&](std::string_view, std::string_view) {
      ++calls;
      throw std::runtime_error("disk full");
    }), "disk full", std::runtime_error);
    CHECK(calls == 1);  // later emits are dropped, not delivered after the failure
  }
}
