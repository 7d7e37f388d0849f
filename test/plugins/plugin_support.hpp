// This file contains the helpers shared by the test plugins (test/plugins/*.cpp): emitting pairs,
// joining sorted values, sleeping, tunables read from the environment, a crypto-strength random
// draw, and the lab's "how many workers are in this phase right now" probe. Each plugin is its own
// shared library built from one .cpp, so everything here is inline and links nothing from mrkv.
#pragma once

#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "mrkv/plugin.h"

namespace mrkv::test_plugins {

inline void emit(mrkv_emit_fn fn, void* sink, std::string_view key, std::string_view value) {
  fn(sink, key.data(), key.size(), value.data(), value.size());
}

// The lab's probes end the worker with log.Fatal when the file system fails them; so do these.
[[noreturn]] inline void fatal(const std::string& what) {
  std::fprintf(stderr, "test plugin: %s\n", what.c_str());
  std::_Exit(1);
}

inline std::vector<std::string_view> views(std::size_t n, const char* const* values, const std::size_t* lens) {
  std::vector<std::string_view> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.emplace_back(values[i], lens[i]);
  return out;
}

// The values sorted byte-wise and joined with single spaces.
inline std::string sorted_join(std::size_t n, const char* const* values, const std::size_t* lens) {
  std::vector<std::string_view> v = views(n, values, lens);
  std::sort(v.begin(), v.end());
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out.push_back(' ');
    out.append(v[i]);
  }
  return out;
}

inline void sleep_ms(long long ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// A non-negative integer from the environment, or `fallback` when unset or malformed.
inline long long env_ms(const char* name, long long fallback) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return fallback;
  long long v = 0;
  const char* end = s + std::char_traits<char>::length(s);
  auto [p, ec] = std::from_chars(s, end, v);
  if (ec != std::errc{} || p != end || v < 0) return fallback;
  return v;
}

// A non-negative number from the environment, or `fallback` when unset or malformed.
inline double env_scale(const char* name, double fallback) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0) || v > 1e6) return fallback;
  return v;
}

// Uniform in [0, bound) from the kernel's CSPRNG, like the lab's crypto/rand; bound > 0.
inline std::uint32_t crypto_below(std::uint32_t bound) {
  // Rejecting the top partial range keeps the draw unbiased.
  const std::uint32_t limit = UINT32_MAX - UINT32_MAX % bound;
  for (;;) {
    std::uint32_t v = 0;
    const ssize_t n = ::getrandom(&v, sizeof v, 0);
    if (n != static_cast<ssize_t>(sizeof v)) {
      if (n < 0 && errno == EINTR) continue;
      fatal("getrandom failed");
    }
    if (v < limit) return v % bound;
  }
}

inline void write_marker(const std::string& name) {
  std::FILE* f = std::fopen(name.c_str(), "w");
  if (f == nullptr || std::fputs("x", f) < 0 || std::fclose(f) != 0) fatal("cannot create marker " + name);
}

// The lab's nparallel(phase): announce this process with marker "mr-worker-<phase>-<pid>" in the
// current directory, count the markers of that phase whose process is alive (this one included),
// give the others a second to see us, then withdraw.
inline int workers_in_phase(const std::string& phase) {
  const std::string prefix = "mr-worker-" + phase + "-";
  const std::string mine = prefix + std::to_string(::getpid());
  write_marker(mine);

  int alive = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(".", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    long pid = 0;
    // Like Go's Sscanf("...%d"): a leading number is enough, trailing text is ignored.
    auto [p, err] = std::from_chars(name.data() + prefix.size(), name.data() + name.size(), pid);
    (void)p;
    if (err == std::errc{} && pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0) ++alive;
  }
  if (ec) fatal("cannot list the current directory: " + ec.message());

  sleep_ms(1000);
  if (std::remove(mine.c_str()) != 0) fatal("cannot remove marker " + mine);
  return alive;
}

// The lab's crash/nocrash map: four pairs describing the call.
inline void describe_call(const char* filename, std::size_t contents_len, mrkv_emit_fn fn, void* sink) {
  const std::string_view name(filename);
  emit(fn, sink, "a", name);
  emit(fn, sink, "b", std::to_string(name.size()));
  emit(fn, sink, "c", std::to_string(contents_len));
  emit(fn, sink, "d", "xyzzy");
}

}  // namespace mrkv::test_plugins
