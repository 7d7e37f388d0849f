// mtiming: the lab's map parallelism probe. Each map call records its pid and start time and how
// many workers were mapping at that moment; reduce joins the sorted values with spaces.
#include <cstdio>

#include "plugin_support.hpp"

using namespace mrkv::test_plugins;

extern "C" {

int mrkv_plugin_abi(void) { return MRKV_PLUGIN_ABI_VERSION; }

void mrkv_map(const char* /*filename*/, const char* /*contents*/, size_t /*contents_len*/, mrkv_emit_fn emit_fn,
              void* sink) {
  const double start = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string pid = std::to_string(::getpid());
  const int n = workers_in_phase("map");
  char time[32];
  std::snprintf(time, sizeof time, "%.1f", start);
  emit(emit_fn, sink, "times-" + pid, time);
  emit(emit_fn, sink, "parallel-" + pid, std::to_string(n));
}

void mrkv_reduce(const char* key, size_t key_len, size_t n_values, const char* const* values, const size_t* value_lens,
                 mrkv_emit_fn emit_fn, void* sink) {
  emit(emit_fn, sink, std::string_view(key, key_len), sorted_join(n_values, values, value_lens));
}

}  // extern "C"
