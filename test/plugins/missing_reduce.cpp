// missing_reduce: a plugin without mrkv_reduce; loading it must fail with a clear error.
#include "mrkv/plugin.h"

extern "C" {

int mrkv_plugin_abi(void) { return MRKV_PLUGIN_ABI_VERSION; }

void mrkv_map(const char* /*filename*/, const char* /*contents*/, size_t /*contents_len*/, mrkv_emit_fn /*emit*/,
              void* /*sink*/) {}

}  // extern "C"
