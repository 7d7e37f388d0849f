// slow: a word count whose map first sleeps MRKV_SLOW_MAP_MS milliseconds when that variable is set in
// this process's environment, so one worker started with it is a straggler while the others are not
// (for showing that backup tasks help). MRKV_SLOW_REDUCE_MS does the same for each reduce task: keys
// come to reduce in increasing order within a task, so a key not greater than the one before (or the
// first key ever) starts a task, and it sleeps there once per task rather than once per key. Words
// are maximal runs of ASCII letters, which equals wc's Unicode tokenizer on ASCII text such as the
// lab's inputs; map emits ("word", "1") per occurrence and reduce counts, exactly the lab's wc.
#include "plugin_support.hpp"

#include <string>
#include <string_view>

using namespace mrkv::test_plugins;

namespace {
bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
}  // namespace

extern "C" {

int mrkv_plugin_abi(void) { return MRKV_PLUGIN_ABI_VERSION; }

void mrkv_map(const char* /*filename*/, const char* contents, size_t contents_len, mrkv_emit_fn emit_fn, void* sink) {
  sleep_ms(env_ms("MRKV_SLOW_MAP_MS", 0));
  std::size_t i = 0;
  while (i < contents_len) {
    while (i < contents_len && !is_ascii_letter(contents[i])) ++i;
    const std::size_t start = i;
    while (i < contents_len && is_ascii_letter(contents[i])) ++i;
    if (i > start) emit_fn(sink, contents + start, i - start, "1", 1);
  }
}

void mrkv_reduce(const char* key, size_t key_len, size_t n_values, const char* const* /*values*/,
                 const size_t* /*value_lens*/, mrkv_emit_fn emit_fn, void* sink) {
  static std::string previous_key;
  static bool first = true;
  const std::string_view this_key(key, key_len);
  if (first || this_key <= previous_key) sleep_ms(env_ms("MRKV_SLOW_REDUCE_MS", 0));
  first = false;
  previous_key.assign(this_key);
  emit(emit_fn, sink, std::string_view(key, key_len), std::to_string(n_values));
}

}  // extern "C"
