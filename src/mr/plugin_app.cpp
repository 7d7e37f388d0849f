#include "plugin_app.hpp"

#include <dlfcn.h>

#include <exception>
#include <filesystem>
#include <system_error>
#include <vector>

#include "mrkv/common/log.hpp"
#include "mrkv/plugin.h"

namespace mrkv::mr {
namespace {

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
  // `combine` may be null: the plugin has no mrkv_combine.
  plugin(std::string name, library_handle library, map_fn map, reduce_fn reduce, reduce_fn combine)
      : name_(std::move(name)), library_(std::move(library)), map_(map), reduce_(reduce), combine_(combine) {}

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
    set_arguments(values);
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

  bool has_combiner() const noexcept override { return combine_ != nullptr; }

  void combine(std::string_view key, std::span<const std::string_view> values, emit_fn emit) override {
    if (!combine_) return application::combine(key, values, emit);
    const std::string key_z(key);
    set_arguments(values);
    map_sink sink{&emit, nullptr};
    combine_(key_z.c_str(), key_z.size(), values.size(), pointers_.data(), lengths_.data(), &emit_to_map_sink, &sink);
    if (sink.error) std::rethrow_exception(sink.error);
    if (sink.null_pointer)
      throw app_error("plugin " + name_ + ": mrkv_combine emitted a null pointer with a non-zero length");
  }

 private:
  void set_arguments(std::span<const std::string_view> values) {
    pointers_.clear();
    lengths_.clear();
    for (std::string_view v : values) {
      pointers_.push_back(v.empty() ? "" : v.data());
      lengths_.push_back(v.size());
    }
  }

  std::string name_;
  library_handle library_;
  map_fn map_;
  reduce_fn reduce_;
  reduce_fn combine_;
  // Scratch arrays for the arguments of mrkv_reduce and mrkv_combine, reused across a task's many calls.
  std::vector<const char*> pointers_;
  std::vector<std::size_t> lengths_;
};

void* find_symbol(void* library, const char* symbol, const std::string& name) {
  ::dlerror();  // a symbol may legitimately be null, so errors are told apart through dlerror()
  void* p = ::dlsym(library, symbol);
  if (p == nullptr) throw app_error("plugin " + name + ": missing symbol " + symbol);
  return p;
}

}  // namespace

bool is_plugin_name(std::string_view name) {
  return name.find('/') != std::string_view::npos || name.ends_with(".so");
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
  ::dlerror();
  auto combine = reinterpret_cast<reduce_fn>(::dlsym(library.get(), "mrkv_combine"));  // optional
  const int version = abi();
  if (version != MRKV_PLUGIN_ABI_VERSION)
    throw app_error("plugin " + name + ": ABI version " + std::to_string(version) + ", expected " +
                    std::to_string(MRKV_PLUGIN_ABI_VERSION));
  log::debug("mr", "loaded plugin " + name + " from " + path.string() + (combine ? " (with a combiner)" : ""));
  return std::make_unique<plugin>(std::move(name), std::move(library), map, reduce, combine);
}

}  // namespace mrkv::mr
