#include "mrkv/mr/application.hpp"

#include "builtin_apps.hpp"
#include "mrkv/common/log.hpp"
#include "plugin_app.hpp"

namespace mrkv::mr {

void application::combine(std::string_view key, std::span<const std::string_view> values, emit_fn emit) {
  for (std::string_view v : values) emit(key, v);
}

std::unique_ptr<application> load_application(std::string name_or_path) {
  if (auto builtin = make_builtin_app(name_or_path)) return builtin;
  if (is_plugin_name(name_or_path)) return load_plugin(std::move(name_or_path));
  throw app_error("unknown application " + log::peer_text(name_or_path, 100) +
                  ": the built-ins are wc and indexer, and a plugin path must contain '/' or end in .so");
}

}  // namespace mrkv::mr
