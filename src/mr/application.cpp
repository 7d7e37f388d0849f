#include "mrkv/mr/application.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <limits>
#include <system_error>
#include <unordered_set>
#include <vector>

#include "mrkv/common/log.hpp"
#include "mrkv/mr/words.hpp"
#include "mrkv/plugin.h"

namespace mrkv::mr {
namespace {

std::string_view decimal(std::uint64_t n, char (&buf)[24]) {
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;  // 24 bytes always hold a 64-bit decimal
  return {buf, static_cast<std::size_t>(end - buf)};
}

// Counts words by their text, keyed by views into one text buffer. An open-addressing table (linear
// probing, power-of-two capacity, at most half full) instead of std::unordered_map: one flat array,
// no allocation per distinct word, and each slot keeps the word's first 8 bytes as an integer, so most
// words (English ones are short) are hashed and compared with a single unaligned load and no memcmp.
class word_counter {
 public:
  // Every word added must lie inside `text`, which makes it safe to load 8 bytes at a time.
  explicit word_counter(std::string_view text) : end_(text.data() + text.size()) {}

  void add(std::string_view word) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    const std::uint64_t head = load_head(word);
    const std::uint64_t h = hash(word, head);
    std::size_t i = static_cast<std::size_t>(h) & (slots_.size() - 1);
    for (;;) {
      slot& s = slots_[i];
      if (s.count == 0) {
        s = slot{word.data(), word.size(), head, h, 1};
        ++size_;
        return;
      }
      if (s.head == head && s.size == word.size() &&
          (word.size() <= 8 || std::memcmp(s.data + 8, word.data() + 8, word.size() - 8) == 0)) {
        ++s.count;
        return;
      }
      i = (i + 1) & (slots_.size() - 1);
    }
  }

  template <class F>
  void for_each(F&& f) const {
    for (const slot& s : slots_)
      if (s.count != 0) f(std::string_view(s.data, s.size), s.count);
  }

 private:
  struct slot {
    const char* data = nullptr;
    std::size_t size = 0;
    std::uint64_t head = 0;   // the first min(size, 8) bytes, zero-padded
    std::uint64_t hash = 0;
    std::uint64_t count = 0;  // 0 marks an empty slot
  };

  static std::uint64_t load8(const char* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  }

  std::uint64_t load_head(std::string_view w) const noexcept {
    if (w.size() >= 8) return load8(w.data());
    if constexpr (std::endian::native == std::endian::little) {
      // Reading past the word is fine while inside the text; the mask drops the extra bytes.
      if (end_ - w.data() >= 8) return load8(w.data()) & ((std::uint64_t{1} << (8 * w.size())) - 1);
    }
    std::uint64_t v = 0;
    std::memcpy(&v, w.data(), w.size());
    return v;
  }

  static std::uint64_t mix(std::uint64_t h) noexcept {
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    return h ^ (h >> 32);
  }

  static std::uint64_t hash(std::string_view w, std::uint64_t head) noexcept {
    std::uint64_t h = mix(head ^ (w.size() * 0x9e3779b97f4a7c15ull));
    if (w.size() > 8) {
      // The middle 8-byte words, then the last 8 bytes (which may overlap the ones before).
      for (std::size_t i = 8; i + 8 < w.size(); i += 8) h = mix(h ^ load8(w.data() + i));
      h = mix(h ^ load8(w.data() + w.size() - 8));
    }
    return h;
  }

  void grow() {
    std::vector<slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 4096 : 2 * old.size(), slot{});
    for (const slot& s : old) {
      if (s.count == 0) continue;
      std::size_t i = static_cast<std::size_t>(s.hash) & (slots_.size() - 1);
      while (slots_[i].count != 0) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = s;
    }
  }

  const char* end_;
  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

// wc: the lab's word count. Its map emits one pair per distinct word of the file with the number of
// occurrences, instead of one ("word", "1") per occurrence, and its reduce sums the counts. The output
// lines are the lab's; on the lab corpus there are 12x fewer pairs to store and sort, and counting
// allocates nothing per token, since the table is keyed by views into `contents`. This is a combiner in
// the sense of the MapReduce paper, folded into map because the app knows its reduce is a sum.
class word_count final : public application {
 public:
  const std::string& name() const noexcept override { return name_; }

  void map(std::string_view /*filename*/, std::string_view contents, emit_fn emit) override {
    word_counter counts(contents);
    for_each_word(contents, [&](std::string_view word) { counts.add(word); });
    char buf[24];
    counts.for_each([&](std::string_view word, std::uint64_t n) { emit(word, decimal(n, buf)); });
  }

  std::string reduce(std::string_view key, std::span<const std::string_view> values) override {
    std::uint64_t total = 0;
    for (std::string_view v : values) {
      std::uint64_t n = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc{} || end != v.data() + v.size() || v.empty() ||
          n > std::numeric_limits<std::uint64_t>::max() - total)
        throw app_error("wc: reduce of key " + log::peer_text(key, 60) + " got the value " + log::peer_text(v, 30) +
                        ", which is not a count");
      total += n;
    }
    char buf[24];
    return std::string(decimal(total, buf));
  }

 private:
  std::string name_ = "wc";
};

// indexer: the lab's inverted index. Map emits (word, filename) once per distinct word of the file;
// reduce returns "<n> <file>,<file>,..." with the names in byte order.
class indexer final : public application {
 public:
  const std::string& name() const noexcept override { return name_; }

  void map(std::string_view filename, std::string_view contents, emit_fn emit) override {
    std::unordered_set<std::string_view> seen;
    for_each_word(contents, [&](std::string_view word) {
      if (seen.insert(word).second) emit(word, filename);
    });
  }

  std::string reduce(std::string_view /*key*/, std::span<const std::string_view> values) override {
    std::vector<std::string_view> docs(values.begin(), values.end());
    std::sort(docs.begin(), docs.end());
    std::string out = std::to_string(docs.size());
    out.push_back(' ');
    for (std::size_t i = 0; i < docs.size(); ++i) {
      if (i > 0) out.push_back(',');
      out.append(docs[i]);
    }
    return out;
  }

 private:
  std::string name_ = "indexer";
};

// State shared with the C callbacks below. The callbacks never let an exception cross the plugin's C
// frames: they park it here and the adapter rethrows once the plugin has returned.
struct map_sink {
  const emit_fn* emit;
  std::exception_ptr error;
  bool null_pointer = false;
};

struct reduce_sink {
  std::size_t pairs = 0;
  std::string key;
  std::string value;
  std::exception_ptr error;
  bool null_pointer = false;
};

bool bad_range(const char* p, std::size_t len) { return p == nullptr && len != 0; }

extern "C" {

static void emit_to_map_sink(void* sink, const char* key, std::size_t key_len, const char* value,
                             std::size_t value_len) {
  auto* s = static_cast<map_sink*>(sink);
  if (s->error || s->null_pointer) return;
  if (bad_range(key, key_len) || bad_range(value, value_len)) {
    s->null_pointer = true;
    return;
  }
  try {
    (*s->emit)(std::string_view(key, key_len), std::string_view(value, value_len));
  } catch (...) {
    s->error = std::current_exception();
  }
}

static void emit_to_reduce_sink(void* sink, const char* key, std::size_t key_len, const char* value,
                                std::size_t value_len) {
  auto* s = static_cast<reduce_sink*>(sink);
  if (s->error || s->null_pointer) return;
  if (bad_range(key, key_len) || bad_range(value, value_len)) {
    s->null_pointer = true;
    return;
  }
  if (++s->pairs > 1) return;
  try {
    s->key.assign(key, key_len);
    s->value.assign(value, value_len);
  } catch (...) {
    s->error = std::current_exception();
  }
}

}  // extern "C"

using abi_fn = int (*)();
using map_fn = void (*)(const char*, const char*, std::size_t, mrkv_emit_fn, void*);
using reduce_fn = void (*)(const char*, std::size_t, std::size_t, const char* const*, const std::size_t*, mrkv_emit_fn,
                           void*);

struct library_closer {
  void operator()(void* handle) const noexcept { ::dlclose(handle); }
};
using library_handle = std::unique_ptr<void, library_closer>;

// An application whose map and reduce live in a shared library that follows mrkv/plugin.h.
class plugin final : public application {
 public:
  plugin(std::string name, library_handle library, map_fn map, reduce_fn reduce)
      : name_(std::move(name)), library_(std::move(library)), map_(map), reduce_(reduce) {}

  const std::string& name() const noexcept override { return name_; }

  void map(std::string_view filename, std::string_view contents, emit_fn emit) override {
    const std::string filename_z(filename);  // the ABI promises a NUL-terminated name
    map_sink sink{&emit, nullptr};
    map_(filename_z.c_str(), contents.empty() ? "" : contents.data(), contents.size(), &emit_to_map_sink, &sink);
    if (sink.error) std::rethrow_exception(sink.error);
    if (sink.null_pointer) throw app_error("plugin " + name_ + ": mrkv_map emitted a null pointer with a non-zero length");
  }

  std::string reduce(std::string_view key, std::span<const std::string_view> values) override {
    const std::string key_z(key);
    pointers_.clear();
    lengths_.clear();
    for (std::string_view v : values) {
      pointers_.push_back(v.empty() ? "" : v.data());
      lengths_.push_back(v.size());
    }
    reduce_sink sink;
    reduce_(key_z.c_str(), key_z.size(), values.size(), pointers_.data(), lengths_.data(), &emit_to_reduce_sink, &sink);
    if (sink.error) std::rethrow_exception(sink.error);
    if (sink.null_pointer)
      throw app_error("plugin " + name_ + ": mrkv_reduce emitted a null pointer with a non-zero length");
    if (sink.pairs != 1)
      throw app_error("plugin " + name_ + ": mrkv_reduce emitted " + std::to_string(sink.pairs) + " pairs for key " +
                      log::peer_text(key, 60) + ", expected exactly 1");
    if (sink.key != key)
      throw app_error("plugin " + name_ + ": mrkv_reduce for key " + log::peer_text(key, 60) + " emitted key " +
                      log::peer_text(sink.key, 60));
    return std::move(sink.value);
  }

 private:
  std::string name_;
  library_handle library_;
  map_fn map_;
  reduce_fn reduce_;
  // Scratch arrays for mrkv_reduce's arguments, reused across the (many) reduce calls of a task.
  std::vector<const char*> pointers_;
  std::vector<std::size_t> lengths_;
};

bool is_plugin_name(std::string_view name) {
  return name.find('/') != std::string_view::npos || name.ends_with(".so");
}

void* find_symbol(void* library, const char* symbol, const std::string& name) {
  ::dlerror();  // a symbol may legitimately be null, so errors are told apart through dlerror()
  void* p = ::dlsym(library, symbol);
  if (p == nullptr) throw app_error("plugin " + name + ": missing symbol " + symbol);
  return p;
}

std::unique_ptr<application> load_plugin(std::string name) {
  std::filesystem::path path = name.find('/') == std::string::npos ? "./" + name : name;
  // Absolute, so that the library is found even if the process changes directory later and so that
  // dlopen() can't confuse it with an already loaded library of the same relative name.
  std::error_code ec;
  path = std::filesystem::absolute(path, ec);
  if (ec) throw app_error("plugin " + name + ": cannot resolve path: " + ec.message());

  ::dlerror();
  library_handle library(::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!library) {
    const char* why = ::dlerror();
    throw app_error("plugin " + name + ": cannot load: " + (why != nullptr ? why : "unknown dlopen error"));
  }
  auto abi = reinterpret_cast<abi_fn>(find_symbol(library.get(), "mrkv_plugin_abi", name));
  auto map = reinterpret_cast<map_fn>(find_symbol(library.get(), "mrkv_map", name));
  auto reduce = reinterpret_cast<reduce_fn>(find_symbol(library.get(), "mrkv_reduce", name));
  const int version = abi();
  if (version != MRKV_PLUGIN_ABI_VERSION)
    throw app_error("plugin " + name + ": ABI version " + std::to_string(version) + ", expected " +
                    std::to_string(MRKV_PLUGIN_ABI_VERSION));
  log::debug("mr", "loaded plugin " + name + " from " + path.string());
  return std::make_unique<plugin>(std::move(name), std::move(library), map, reduce);
}

}  // namespace

std::unique_ptr<application> load_application(std::string name_or_path) {
  if (name_or_path == "wc") return std::make_unique<word_count>();
  if (name_or_path == "indexer") return std::make_unique<indexer>();
  if (is_plugin_name(name_or_path)) return load_plugin(std::move(name_or_path));
  throw app_error("unknown application " + log::peer_text(name_or_path, 100) +
                  ": the built-ins are wc and indexer, and a plugin path must contain '/' or end in .so");
}

}  // namespace mrkv::mr
