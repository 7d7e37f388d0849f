// nocrash: crash's output without the crashes and sleeps; it produces the crash test's expected answer.
#include "plugin_support.hpp"

using namespace mrkv::test_plugins;

extern "C" {

int mrkv_plugin_abi(void) { return MRKV_PLUGIN_ABI_VERSION; }

void mrkv_map(const char* filename, const char* /*contents*/, size_t contents_len, mrkv_emit_fn emit_fn, void* sink) {
  describe_call(filename, contents_len, emit_fn, sink);
}

void mrkv_reduce(const char* key, size_t key_len, size_t n_values, const char* const* values, const size_t* value_lens,
                 mrkv_emit_fn emit_fn, void* sink) {
  emit(emit_fn, sink, std::string_view(key, key_len), sorted_join(n_values, values, value_lens));
}

}  // extern "C"
