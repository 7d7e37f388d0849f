// bad_abi: a plugin built for a future ABI (version 2); loading it must fail with a clear error.
#include "mrkv/plugin.h"

extern "C" {

int mrkv_plugin_abi(void) { return 2; }

void mrkv_map(const char* /*filename*/, const char* /*contents*/, size_t /*contents_len*/, mrkv_emit_fn /*emit*/,
              void* /*sink*/) {}

void mrkv_reduce(const char* key, size_t key_len, size_t /*n_values*/, const char* const* /*values*/,
                 const size_t* /*value_lens*/, mrkv_emit_fn emit, void* sink) {
  emit(sink, key, key_len, "", 0);
}

}  // extern "C"
