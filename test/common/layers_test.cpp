// The layers of CMakeLists.txt, checked where the build cannot see them: every header sits under the
// one include/ root, so an #include that reaches up a layer would compile. This reads the includes of
// each layer's sources and headers and fails on any that names a layer above it.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

// What each layer may include, itself among them; mirrors MRKV_LAYER_DEPS_* in CMakeLists.txt.
// "plugin.h" is the MapReduce plugin ABI, which only mr implements.
const std::map<std::string, std::set<std::string>> allowed{
    {"common", {"common"}},
    {"http", {"common", "http"}},
    {"mr", {"common", "http", "mr", "plugin.h"}},
    {"kv", {"common", "http", "kv"}},
    {"bench", {"common", "http", "bench"}},
    {"cli", {"common", "http", "mr", "kv", "bench", "cli", "plugin.h"}},
};

// The layer an include names: "mrkv/http/server.hpp" -> "http", "mrkv/plugin.h" -> "plugin.h".
std::string layer_of(const std::string& included) {
  const auto rest = included.substr(std::string("mrkv/").size());
  const auto slash = rest.find('/');
  return slash == std::string::npos ? rest : rest.substr(0, slash);
}

}  // namespace

TEST_SUITE("common") {
  TEST_CASE("no source or header includes a layer above its own") {
    const fs::path root = MRKV_SOURCE_DIR;
    const std::regex include_line(R"re(^\s*#\s*include\s*"(mrkv/[^"]+)")re");
    std::vector<std::string> violations;
    std::size_t files = 0;
    for (const auto& [layer, may_include] : allowed) {
      for (const fs::path& dir : {root / "src" / layer, root / "include" / "mrkv" / layer}) {
        if (!fs::exists(dir)) continue;
        for (const auto& entry : fs::recursive_directory_iterator(dir)) {
          if (!entry.is_regular_file()) continue;
          ++files;
          std::ifstream in(entry.path());
          std::string line;
          for (int number = 1; std::getline(in, line); ++number) {
            std::smatch m;
            if (!std::regex_search(line, m, include_line)) continue;
            if (!may_include.count(layer_of(m[1].str())))
              violations.push_back(fs::relative(entry.path(), root).string() + ":" + std::to_string(number) + " (" +
                                   layer + ") includes " + m[1].str());
          }
        }
      }
    }
    CHECK(files > 40);  // the walk found the tree
    for (const auto& v : violations) FAIL_CHECK(v);
  }
}
