// combining_wc: a word count written the textbook way, map emitting (word, "1") for every occurrence,
// with the optional mrkv_combine summing one map task's counts. Words are runs of ASCII letters (the
// built-in wc takes every Unicode letter), so compare it with itself: through `mrkv sequential`, which
// never combines, and through map tasks with and without the combiner.
//   MRKV_TEST_NO_COMBINE=1 in the environment: mrkv_combine passes every value on unchanged.
#include <cctype>
#include <cstdlib>
#include <string>

#include "plugin_support.hpp"

using namespace mrkv::test_plugins;

namespace {

unsigned long long sum(size_t n, const char* const* values, const size_t* lens) {
  unsigned long long total = 0;
  for (size_t i = 0; i < n; ++i) total += std::strtoull(std::string(values[i], lens[i]).c_str(), nullptr, 10);
  return total;
}

}  // namespace

extern "C" {

int mrkv_plugin_abi(void) { return MRKV_PLUGIN_ABI_VERSION; }

// Words as the lab's wc: maximal runs of ASCII letters.
void mrkv_map(const char* /*filename*/, const char* contents, size_t len, mrkv_emit_fn emit_fn, void* sink) {
  size_t i = 0;
  while (i < len) {
    while (i < len && !std::isalpha(static_cast<unsigned char>(contents[i]))) ++i;
    const size_t start = i;
    while (i < len && std::isalpha(static_cast<unsigned char>(contents[i]))) ++i;
    if (i > start) emit(emit_fn, sink, std::string_view(contents + start, i - start), "1");
  }
}

void mrkv_reduce(const char* key, size_t key_len, size_t n_values, const char* const* values, const size_t* value_lens,
                 mrkv_emit_fn emit_fn, void* sink) {
  emit(emit_fn, sink, std::string_view(key, key_len), std::to_string(sum(n_values, values, value_lens)));
}

void mrkv_combine(const char* key, size_t key_len, size_t n_values, const char* const* values,
                  const size_t* value_lens, mrkv_emit_fn emit_fn, void* sink) {
  if (std::getenv("MRKV_TEST_NO_COMBINE") != nullptr) {
    for (size_t i = 0; i < n_values; ++i)
      emit(emit_fn, sink, std::string_view(key, key_len), std::string_view(values[i], value_lens[i]));
    return;
  }
  mrkv_reduce(key, key_len, n_values, values, value_lens, emit_fn, sink);
}

}  // extern "C"
