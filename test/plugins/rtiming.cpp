// rtiming: the lab's reduce parallelism probe. Map emits the keys "a".."j" whatever its input; each
// reduce call reports how many workers were reducing at that moment.
#include "plugin_support.hpp"

using namespace mrkv::test_plugins;

extern "C" {

int mrkv_plugin_abi(void) { return MRKV_PLUGIN_ABI_VERSION; }

void mrkv_map(const char* /*filename*/, const char* /*contents*/, size_t /*contents_len*/, mrkv_emit_fn emit_fn,
              void* sink) {
  for (const char* key : {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}) emit(emit_fn, sink, key, "1");
}

void mrkv_reduce(const char* key, size_t key_len, size_t /*n_values*/, const char* const* /*values*/,
                 const size_t* /*value_lens*/, mrkv_emit_fn emit_fn, void* sink) {
  const int n = workers_in_phase("reduce");
  emit(emit_fn, sink, std::string_view(key, key_len), std::to_string(n));
}

}  // extern "C"
