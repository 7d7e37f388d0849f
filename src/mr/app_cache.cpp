#include "mrkv/mr/app_cache.hpp"

#include "mrkv/common/log.hpp"

namespace mrkv::mr {

task_executor& app_cache::get(const app_spec& app) {
  // NUL cannot occur in a command line, so no two apps share a key.
  std::string key = app.app;
  for (const auto* part : {&app.stream.mapper, &app.stream.reducer, &app.stream.combiner}) key += '\0' + *part;
  if (auto it = loaded_.find(key); it != loaded_.end()) return *it->second;
  app_spec spec = app;
  spec.stream.sort_buffer = sort_buffer_;
  auto executor = make_executor(spec);
  log::info("worker", "loaded app " + log::peer_text(app.describe(), 300));
  return *loaded_.emplace(key, std::move(executor)).first->second;
}

}  // namespace mrkv::mr
