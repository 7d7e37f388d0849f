// jobcount: counts how many times map ran over the whole job. Each map call leaves a marker file
// "mr-worker-jobcount-<pid>-<n>" in the current directory and sleeps 2 to 5 s; the single reduce
// (key "a") returns the number of markers. MRKV_JOBCOUNT_SLEEP_SCALE (default 1.0) scales the sleep
// for tests that use short task timeouts.
#include <random>

#include "plugin_support.hpp"

using namespace mrkv::test_plugins;

namespace {
// Calls come one at a time per process (plugin.h), so these need no lock.
int map_calls = 0;
std::mt19937 rng{std::random_device{}()};
}  // namespace

extern "C" {

int mrkv_plugin_abi(void) { return MRKV_PLUGIN_ABI_VERSION; }

void mrkv_map(const char* /*filename*/, const char* /*contents*/, size_t /*contents_len*/, mrkv_emit_fn emit_fn,
              void* sink) {
  write_marker("mr-worker-jobcount-" + std::to_string(::getpid()) + "-" + std::to_string(map_calls++));
  const double ms = 2000.0 + std::uniform_int_distribution<int>(0, 2999)(rng);
  sleep_ms(static_cast<long long>(ms * env_scale("MRKV_JOBCOUNT_SLEEP_SCALE", 1.0)));
  emit(emit_fn, sink, "a", "x");
}

void mrkv_reduce(const char* key, size_t key_len, size_t /*n_values*/, const char* const* /*values*/,
                 const size_t* /*value_lens*/, mrkv_emit_fn emit_fn, void* sink) {
  int markers = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(".", ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().starts_with("mr-worker-jobcount")) ++markers;
  if (ec) fatal("cannot list the current directory: " + ec.message());
  emit(emit_fn, sink, std::string_view(key, key_len), std::to_string(markers));
}

}  // extern "C"
