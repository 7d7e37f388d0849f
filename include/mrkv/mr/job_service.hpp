// This file contains the job service: a coordinator that stays up and runs the jobs submitted to it,
// one task_table per job (the one-job coordinator's scheduler, unchanged), for a pool of workers that
// stays between jobs. Its HTTP face:
//   POST   /v1/jobs      submit (job_spec.hpp) -> 201 the job's summary; 400 naming the field, no job made
//   GET    /v1/jobs      {"jobs": [summary, ...]}, newest first
//   GET    /v1/jobs/ID   the summary plus "spec", "tasks", "workers", "task_errors", "counters",
//                        "outputs" (when done) and "error" (when failed or cancelled); 404 unknown ID
//   DELETE /v1/jobs/ID   cancel a queued or running job -> 200 its summary; 409 when it already ended
//   GET    /v1/workers   {"workers": [...]}: every worker seen, its last contact and what it runs
//   POST   /v1/tasks/next, /v1/tasks/done, /v1/tasks/failed   the workers' protocol (protocol.hpp)
//   GET    /             the web page (job_page.hpp)
// A summary is {"id", "name", "app", "state", "submitted", "started", "finished" (UTC text or null),
// "map": {idle, running, done, total}, "reduce": {...}}; state is queued, map, reduce, done, failed or
// cancelled.
//
// Scheduling: a worker asking for work gets a task of the oldest job that has one for it (a job whose
// app it runs: any job for a worker without --app), so jobs run in submission order and a later job
// takes the workers that the one before it leaves idle at the end of a phase. A job is queued until its
// first task goes out. Attempts that time out count as failed ones here (table_config), so a plugin that
// crashes its worker every time fails its job after max_attempts instead of looping; the service goes on
// with the next job.
//
// Files: a job's task files and outputs live in WORKDIR/jobs/ID (the workers are told that directory),
// outputs as mr-out-R; its intermediate files are removed when it ends, and a cancelled job's outputs
// too. Its record (job_history.hpp) is rewritten at each change of state. At start the records found
// are loaded: ended jobs are listed as they were, queued jobs are queued again, and a job that was
// running is marked failed ("the coordinator stopped while the job ran").
//
// Thread model and lifetime: as coordinator.hpp. Everything runs on the server's single thread; construct
// the service before the server that gets its routes and destroy it after.
#pragma once

#include "mrkv/http/router.hpp"
#include "mrkv/mr/protocol.hpp"
#include "mrkv/mr/shuffle_fetcher.hpp"
#include "mrkv/mr/counters.hpp"
#include "mrkv/mr/job_history.hpp"
#include "mrkv/mr/job_spec.hpp"
#include "mrkv/mr/protocol.hpp"
#include "mrkv/mr/task_table.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mrkv::mr {

enum class job_state { queued, map, reduce, done, failed, cancelled };
std::string_view to_string(job_state state) noexcept;

struct service_config {
  std::filesystem::path workdir = ".";  // made absolute by the constructor
  job_defaults defaults;
  backup_config backup;                          // the rule of task_table.hpp, the same for every job
  std::optional<clock::duration> backup_min_age;  // --backup-after: replaces backup.min_age
  std::chrono::milliseconds max_poll_wait{5'000};
  // How often the service looks for attempts that timed out when no worker asks (all of them died).
  std::chrono::milliseconds sweep_every{250};
  // How the service calls a shared-nothing worker for a reduce's output (its token).
  http::client_options worker_calls;
};

class job_service {
 public:
  // Loads the job history under config.workdir (see the file comment). Throws std::filesystem errors
  // when the work directory is unusable.
  explicit job_service(service_config config);
  ~job_service();
  job_service(const job_service&) = delete;
  job_service& operator=(const job_service&) = delete;

  http::router routes();
  // The executor of the server's single thread; starts the sweep. Call before the server starts.
  void attach(boost::asio::any_io_executor executor);

  // Prometheus lines for GET /metrics (server_config::extra_metrics): jobs by state, tasks of the
  // running jobs by kind and state, workers seen, task durations. Call on the service's thread.
  std::string metrics(const std::string& mode) const;

  nlohmann::json list() const;
  std::size_t job_count() const noexcept { return jobs_.size(); }

 private:
  struct job;
  struct worker_seen {
    std::string host;
    clock::time_point last_contact;
    std::string running;  // "job 3: map task 2", empty when idle
    int tasks_done = 0;
  };

  job* find(const std::string& id);
  job& job_for(const http::request& req);
  http::reply submit(const http::request& req);
  http::reply cancel(const http::request& req);
  boost::asio::awaitable<http::reply> next_task(http::request req);
  boost::asio::awaitable<http::reply> task_done(http::request req);
  http::reply done_reply(job& j, const protocol::done_request& report);
  http::reply task_failed(const http::request& req);
  http::reply fetch_failed(const http::request& req);
  // The jobs not over, for the orders' "live_jobs" (protocol.hpp).
  std::vector<std::string> live_job_ids() const;
  http::reply input(const http::request& req);
  // Moves the job's state along its table's phase; ends it when the table says so.
  void follow_table(job& j);
  void end_job(job& j, job_state state, std::string error);
  void remove_task_files(const job& j, bool outputs_too) const;
  void save(const job& j) const;
  void restore();
  boost::asio::awaitable<void> sweep();
  void wake_waiters();
  nlohmann::json summary(const job& j) const;
  nlohmann::json details(const job& j) const;
  nlohmann::json workers_json() const;
  void record_duration(clock::duration d) noexcept;

  service_config config_;
  job_history history_;
  std::vector<std::unique_ptr<job>> jobs_;  // submission order; never shrinks, so job pointers stay valid
  std::uint64_t next_seq_ = 1;
  std::map<std::string, worker_seen> workers_;
  std::optional<boost::asio::any_io_executor> executor_;
  std::optional<shuffle_fetcher> fetcher_;  // made in attach()
  // As in coordinator.hpp: the timers belong to the parked coroutine frames.
  std::list<boost::asio::steady_timer*> waiters_;
  static constexpr std::array<double, 10> duration_bounds{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1800};
  std::array<std::uint64_t, duration_bounds.size() + 1> duration_buckets_{};
  double duration_sum_ = 0;
};

}  // namespace mrkv::mr
