// This file contains what a worker runs its tasks with, whatever kind of app the job has: a built-in
// or plugin application (application.hpp, in-process) or streaming commands (streaming.hpp, child
// processes). An app_spec is the job's app as a value (what `--app` or `--mapper/--reducer/--combiner`
// say, or what a job description will say once jobs carry their app), and make_executor() turns it
// into the object that runs the tasks.
#pragma once

#include "mrkv/mr/application.hpp"
#include "mrkv/mr/counters.hpp"
#include "mrkv/mr/streaming.hpp"
#include "mrkv/mr/task_runner.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace mrkv::mr {

struct app_spec {
  std::string app;         // wc, indexer or a plugin path; empty for a streaming app
  stream_commands stream;  // used when stream.mapper is set
  bool streaming() const noexcept { return !stream.mapper.empty(); }
  // "wc", the plugin path, or "stream: mapper 'M', reducer 'R'[, combiner 'C']".
  std::string describe() const;
};

struct task_context {
  int attempt = 1;
  // When a streaming command still running is killed; in-process apps can't be interrupted.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // Shared-nothing mode. Map: where the input's bytes are when the worker fetched them (the map still
  // sees the input's name as the coordinator gave it); empty: read the input itself. Reduce: where the
  // partitions come from; null: the map output files in the work directory.
  std::filesystem::path input_copy;
  const partition_fetcher* fetch = nullptr;
};

// Runs tasks of one app, one at a time. Failures are exceptions as in task_runner.hpp and streaming.hpp;
// an app_error means no task of this app can run in this process.
class task_executor {
 public:
  virtual ~task_executor() = default;
  virtual std::string name() const = 0;
  virtual counters map(int map_id, const std::string& input, int n_reduce, const std::filesystem::path& workdir,
                       const task_context& context) = 0;
  virtual counters reduce(int reduce_id, int n_map, const std::filesystem::path& workdir,
                          const task_context& context) = 0;
  // The whole job in this process, as `mrkv sequential` runs it.
  virtual counters sequential(const std::vector<std::string>& inputs, const std::filesystem::path& output) = 0;

 protected:
  task_executor() = default;

 public:
  task_executor(const task_executor&) = delete;
  task_executor& operator=(const task_executor&) = delete;
};

// An executor over an application the caller keeps alive.
std::unique_ptr<task_executor> make_executor(application& app);
// Loads spec.app (app_error as load_application) or takes the streaming commands (app_error when the
// mapper or reducer is missing).
std::unique_ptr<task_executor> make_executor(const app_spec& spec);

}  // namespace mrkv::mr
