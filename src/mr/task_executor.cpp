#include "mrkv/mr/task_executor.hpp"

#include "mrkv/mr/sequential.hpp"
#include "mrkv/mr/task_runner.hpp"

#include <stdexcept>

namespace mrkv::mr {
namespace {

class app_executor : public task_executor {
 public:
  explicit app_executor(application& app) : app_(app) {}
  app_executor(std::unique_ptr<application> owned) : owned_(std::move(owned)), app_(*owned_) {}

  std::string name() const override { return app_.name(); }
  counters map(int map_id, const std::string& input, int n_reduce, const std::filesystem::path& workdir,
               const task_context& context) override {
    return run_map_task(app_, map_id, input, n_reduce, workdir, context.input_copy);
  }
  counters reduce(int reduce_id, int n_map, const std::filesystem::path& workdir,
                  const task_context& context) override {
    if (context.fetch) return run_reduce_task(app_, reduce_id, n_map, workdir, *context.fetch);
    return run_reduce_task(app_, reduce_id, n_map, workdir);
  }
  counters sequential(const std::vector<std::string>& inputs, const std::filesystem::path& output) override {
    run_sequential(app_, inputs, output);
    return {};
  }

 private:
  std::unique_ptr<application> owned_;
  application& app_;
};

// Streaming tasks read their input and the maps' spill files by path (streaming.hpp), so they run
// where those are: in a shared work directory.
std::string shared_only(const std::string& what) {
  return "a streaming app needs a shared work directory: " + what +
         " must be readable here (shared-nothing mode runs built-in and plugin apps)";
}

class stream_executor : public task_executor {
 public:
  explicit stream_executor(app_spec spec) : spec_(std::move(spec)) {}
  std::string name() const override { return spec_.describe(); }
  counters map(int map_id, const std::string& input, int n_reduce, const std::filesystem::path& workdir,
               const task_context& context) override {
    if (!context.input_copy.empty()) throw std::runtime_error(shared_only(input));
    return run_stream_map_task(spec_.stream, map_id, context.attempt, input, n_reduce, workdir, context.deadline);
  }
  counters reduce(int reduce_id, int n_map, const std::filesystem::path& workdir,
                  const task_context& context) override {
    if (context.fetch) throw std::runtime_error(shared_only("the map outputs"));
    return run_stream_reduce_task(spec_.stream, reduce_id, context.attempt, n_map, workdir, context.deadline);
  }
  counters sequential(const std::vector<std::string>& inputs, const std::filesystem::path& output) override {
    return run_stream_sequential(spec_.stream, inputs, output);
  }

 private:
  app_spec spec_;
};

}  // namespace

std::string app_spec::describe() const {
  if (!streaming()) return app;
  std::string text = "stream: mapper '" + stream.mapper + "', reducer '" + stream.reducer + "'";
  if (!stream.combiner.empty()) text += ", combiner '" + stream.combiner + "'";
  return text;
}

std::unique_ptr<task_executor> make_executor(application& app) { return std::make_unique<app_executor>(app); }

std::unique_ptr<task_executor> make_executor(const app_spec& spec) {
  if (spec.streaming() || !spec.stream.reducer.empty() || !spec.stream.combiner.empty()) {
    if (spec.stream.mapper.empty()) throw app_error("a streaming app needs a mapper (--mapper)");
    if (spec.stream.reducer.empty()) throw app_error("a streaming app needs a reducer (--reducer)");
    if (!spec.app.empty()) throw app_error("an app is either --app or --mapper/--reducer, not both");
    return std::make_unique<stream_executor>(spec);
  }
  return std::make_unique<app_executor>(load_application(spec.app));
}

}  // namespace mrkv::mr
