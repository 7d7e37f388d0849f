// This file contains the apps a worker without --app has loaded: each job names its app, and the worker
// loads it the first time a task of it comes and keeps it, so a plugin is dlopen()ed once per worker
// however many jobs use it (and its static state lives as long as the worker, as with --app).
//
// Not thread-safe: the worker touches it from its task thread only.
#pragma once

#include "mrkv/mr/task_executor.hpp"

#include <cstddef>
#include <map>
#include <memory>
#include <string>

namespace mrkv::mr {

class app_cache {
 public:
  // Streaming apps get this sort buffer (the worker's --sort-buffer): jobs don't choose it.
  explicit app_cache(std::size_t sort_buffer = stream_commands{}.sort_buffer) : sort_buffer_(sort_buffer) {}

  // The executor of `app`, loaded now if it wasn't. Throws app_error as make_executor() does; a failed
  // load is not remembered, so a plugin that appears later loads then.
  task_executor& get(const app_spec& app);
  std::size_t size() const noexcept { return loaded_.size(); }

 private:
  std::size_t sort_buffer_;
  std::map<std::string, std::unique_ptr<task_executor>> loaded_;  // by app name and commands
};

}  // namespace mrkv::mr
