// early_exit: one key per input file; the reduces of files named like "sherlock" or "tom" take 3 s,
// which catches workers or coordinators that exit while reduce tasks are still running.
#include "plugin_support.hpp"

using namespace mrkv::test_plugins;

extern "C" {

int mrkv_plugin_abi(void) { return MRKV_PLUGIN_ABI_VERSION; }

void mrkv_map(const char* filename, const char* /*contents*/, size_t /*contents_len*/, mrkv_emit_fn emit_fn,
              void* sink) {
  emit(emit_fn, sink, filename, "1");
}

void mrkv_reduce(const char* key, size_t key_len, size_t n_values, const char* const* /*values*/,
                 const size_t* /*value_lens*/, mrkv_emit_fn emit_fn, void* sink) {
  const std::string_view k(key, key_len);
  if (k.find("sherlock") != std::string_view::npos || k.find("tom") != std::string_view::npos) sleep_ms(3000);
  emit(emit_fn, sink, k, std::to_string(n_values));
}

}  // extern "C"
