// crash: the lab's failure injector. At the start of every map and reduce call the process exits at
// once with status 1 (33%), or sleeps up to MRKV_CRASH_MAX_SLEEP_MS ms (default 10000, as in the lab;
// 33%), or carries on (34%). Its output is nocrash's.
#include "plugin_support.hpp"

using namespace mrkv::test_plugins;

namespace {

void maybe_crash() {
  const std::uint32_t r = crypto_below(1000);
  if (r < 330) {
    // _Exit, not exit: a real crash runs no destructors or atexit handlers in the worker's other threads.
    std::_Exit(1);
  }
  if (r < 660) {
    const long long max_ms = env_ms("MRKV_CRASH_MAX_SLEEP_MS", 10000);
    if (max_ms > 0) sleep_ms(crypto_below(static_cast<std::uint32_t>(std::min<long long>(max_ms, UINT32_MAX))));
  }
}

}  // namespace

extern "C" {

int mrkv_plugin_abi(void) { return MRKV_PLUGIN_ABI_VERSION; }

void mrkv_map(const char* filename, const char* /*contents*/, size_t contents_len, mrkv_emit_fn emit_fn, void* sink) {
  maybe_crash();
  describe_call(filename, contents_len, emit_fn, sink);
}

void mrkv_reduce(const char* key, size_t key_len, size_t n_values, const char* const* values, const size_t* value_lens,
                 mrkv_emit_fn emit_fn, void* sink) {
  maybe_crash();
  emit(emit_fn, sink, std::string_view(key, key_len), sorted_join(n_values, values, value_lens));
}

}  // extern "C"
