// This file contains the MapReduce application interface (a map, a reduce and an optional combine), the
// exception that reports a broken or unknown application, and load_application(), which returns either
// a built-in application (wc, indexer) or a plugin loaded from a shared library (see mrkv/plugin.h).
#pragma once

#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace mrkv::mr {

// An application that can't be loaded or that breaks its contract: unknown name, dlopen() failure,
// missing symbol, wrong ABI version, a reduce that doesn't emit exactly one pair for its key. The
// message is one line naming the application and the problem. Retrying the same task won't help.
class app_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where map puts its pairs: a non-owning reference to any callable taking (key, value). The views are
// valid only during the call, so the callee copies what it keeps. Like std::function_ref, it must not
// outlive the callable it was made from; use it as a parameter type only.
class emit_fn {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, emit_fn> &&
             std::is_invocable_v<F&, std::string_view, std::string_view>)
  emit_fn(F&& f) noexcept  // NOLINT(google-explicit-constructor): lambdas convert at call sites
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* object, std::string_view key, std::string_view value) {
          (*static_cast<std::remove_reference_t<F>*>(object))(key, value);
        }) {}

  void operator()(std::string_view key, std::string_view value) const { call_(object_, key, value); }

 private:
  void* object_;
  void (*call_)(void*, std::string_view, std::string_view);
};

// A MapReduce application. One object serves one task at a time: callers never call map or reduce on
// the same object from two threads at once (plugins are promised one call at a time per process).
class application {
 public:
  virtual ~application() = default;

  // "wc", "indexer", or the plugin path as it was given to load_application(); used in messages.
  virtual const std::string& name() const noexcept = 0;

  // Called once per input file: `filename` exactly as given to the coordinator, `contents` the whole
  // file. Calls emit(key, value) for each pair it produces.
  virtual void map(std::string_view filename, std::string_view contents, emit_fn emit) = 0;

  // Called once per distinct key with every value emitted for it, in no particular order. Returns the
  // text that follows "key " on the key's output line.
  virtual std::string reduce(std::string_view key, std::span<const std::string_view> values) = 0;

  // The combiner (the MapReduce paper's section 4.3): true when combine() does more than pass its
  // values on, so that a map task groups its output by key and calls it.
  virtual bool has_combiner() const noexcept { return false; }
  // Called once per distinct key of one map task's output with every value the map emitted for it,
  // before the output is written. The pairs it emits take their place (each goes to the partition of
  // its own key): usually one pair, the key and a partial result that reduce takes as a value. The
  // default passes the values on unchanged.
  virtual void combine(std::string_view key, std::span<const std::string_view> values, emit_fn emit);

 protected:
  application() = default;

 public:
  // Applications own resources such as a loaded library, and are used through a pointer to the base.
  application(const application&) = delete;
  application& operator=(const application&) = delete;
};

// Returns the application called `name_or_path`:
//  - "wc" and "indexer" are built in (lab semantics; wc's map pre-counts each file's words, see
//    application.cpp, which only changes what travels through the intermediate files);
//  - a name containing '/' or ending in ".so" is a plugin, loaded with dlopen(RTLD_NOW | RTLD_LOCAL).
//    A bare "x.so" means "./x.so": plugins are never looked up on the library search path. A relative
//    path is resolved against the current directory now, once; the plugin stays loaded as long as the
//    returned object lives.
// Throws app_error for an unknown name, a library that can't be loaded, a missing symbol
// (mrkv_plugin_abi, mrkv_map, mrkv_reduce; mrkv_combine is optional) or an ABI version other than
// MRKV_PLUGIN_ABI_VERSION.
std::unique_ptr<application> load_application(std::string name_or_path);

}  // namespace mrkv::mr
