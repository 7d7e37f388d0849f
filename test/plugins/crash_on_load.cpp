// crash_on_load: a plugin whose static initialiser dies of SIGSEGV, so the worker that loads it dies
// inside dlopen, before it can ask for a task. The rest of the job must not notice.
#include "plugin_support.hpp"

namespace {

struct segfault_while_loading {
  segfault_while_loading() { ::raise(SIGSEGV); }
};
const segfault_while_loading dies_here;

}  // namespace

extern "C" {

int mrkv_plugin_abi(void) { return MRKV_PLUGIN_ABI_VERSION; }

void mrkv_map(const char* /*filename*/, const char* /*contents*/, size_t /*contents_len*/, mrkv_emit_fn /*emit*/,
              void* /*sink*/) {}

void mrkv_reduce(const char* key, size_t key_len, size_t /*n_values*/, const char* const* /*values*/,
                 const size_t* /*value_lens*/, mrkv_emit_fn emit, void* sink) {
  emit(sink, key, key_len, "", 0);
}

}  // extern "C"
