// bad_reduce: a plugin that breaks the emit contract on purpose, so the tests can check that the host
// reports it instead of writing wrong output. Its reduce emits, by key: "none" nothing, "two" two
// pairs, "other" a different key, "null" a null pointer with a length, and anything else the value
// count. Its map emits a null key pointer when the file name is "null", else ("k", "v").
#include "plugin_support.hpp"

using namespace mrkv::test_plugins;

extern "C" {

int mrkv_plugin_abi(void) { return MRKV_PLUGIN_ABI_VERSION; }

void mrkv_map(const char* filename, const char* /*contents*/, size_t /*contents_len*/, mrkv_emit_fn emit_fn,
              void* sink) {
  if (std::string_view(filename) == "null")
    emit_fn(sink, nullptr, 3, "v", 1);
  else
    emit(emit_fn, sink, "k", "v");
}

void mrkv_reduce(const char* key, size_t key_len, size_t n_values, const char* const* /*values*/,
                 const size_t* /*value_lens*/, mrkv_emit_fn emit_fn, void* sink) {
  const std::string_view k(key, key_len);
  if (k == "none") return;
  if (k == "two") emit(emit_fn, sink, k, "1");
  if (k == "other") {
    emit(emit_fn, sink, "not-other", "1");
    return;
  }
  if (k == "null") {
    emit_fn(sink, key, key_len, nullptr, 5);
    return;
  }
  emit(emit_fn, sink, k, std::to_string(n_values));
}

}  // extern "C"
