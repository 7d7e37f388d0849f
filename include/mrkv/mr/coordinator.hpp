// This file contains the MapReduce coordinator's HTTP face: the routes of protocol.hpp over one
// task_table, the long poll that parks waiting workers, and the rule for when the coordinator is done.
//
// Thread model: the coordinator lives on ONE thread, the single I/O thread of its http::server
// (threads = 1), so the table needs no lock. Handlers, timers and the long-poll coroutines all run
// there. Waiting workers park on a steady_timer each; any change to the table (a hand-out, a report)
// cancels those timers so every waiter looks again, and a waiter also wakes on its own when the table
// says a running task will time out or become a backup candidate (task_table::next_change).
//
// Lifetime: construct the coordinator before the server that gets its routes, and destroy it after
// that server (the server's destructor ends the parked coroutines, which unregister themselves here).
//
// Finishing: once every reduce task is done, or the job has failed, each worker that asks is told "exit". on_finished runs
// (once) when every worker seen has been told, or `exit_grace` after the job was done, whichever is
// first; the caller stops the server then.
#pragma once

#include "mrkv/http/router.hpp"
#include "mrkv/mr/counters.hpp"
#include "mrkv/mr/protocol.hpp"
#include "mrkv/mr/shuffle_fetcher.hpp"
#include "mrkv/mr/task_table.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <list>
#include <optional>

namespace mrkv::mr {

struct coordinator_config {
  table_config table;
  // Where relative inputs are found (to serve them to workers that cannot read them) and where the
  // outputs of shared-nothing reducers are written.
  std::filesystem::path workdir = ".";
  // How the coordinator calls a shared-nothing worker for a reduce's output (its token, its CA).
  http::client_options worker_calls;
  std::chrono::milliseconds max_poll_wait{5'000};  // a long poll answers "wait" after at most this
  std::chrono::milliseconds exit_grace{2'000};     // after the job is done, wait this long for workers
};

class coordinator {
 public:
  // Throws std::invalid_argument for an impossible job (see task_table).
  explicit coordinator(coordinator_config config);
  ~coordinator();
  coordinator(const coordinator&) = delete;
  coordinator& operator=(const coordinator&) = delete;

  // POST /v1/tasks/next, /v1/tasks/done, /v1/tasks/failed, /v1/tasks/fetch-failed, GET /v1/job and
  // GET /v1/inputs/-/M (protocol.hpp). The handlers refer to this object.
  http::router routes();

  // Gives the coordinator the executor its server's single thread runs (http::server::main_context())
  // and what to call when it is finished. Call before the server starts.
  void attach(boost::asio::any_io_executor executor, std::function<void()> on_finished);

  // GET /v1/job: {"phase", "elapsed_seconds", "map": {idle, running, done, total}, "reduce": {...},
  // "shuffled_bytes", "map_outputs": [URL or "" per map] (with shared-nothing workers only),
  // "workers": [{id, host, last_contact (UTC), last_contact_seconds_ago, tasks_assigned,
  // tasks_completed, told_exit}], "stats": {...}, "task_errors": [{kind, task, attempts,
  // failed_attempts, last_error}], "counters": {GROUP: {NAME: N}}, "error": TEXT (when failed)}.
  // Call on the coordinator's thread.
  nlohmann::json status() const;

  // True once every reduce task is done. Call on the coordinator's thread, or after the server ended.
  bool job_done() const noexcept;
  // True once a task's attempts were reported failed too often (task_table); failure() says why.
  bool job_failed() const noexcept;
  const std::string& failure() const noexcept;

 private:
  boost::asio::awaitable<http::reply> next_task(http::request req);
  boost::asio::awaitable<http::reply> task_done(http::request req);
  http::reply done_reply(const protocol::done_request& report);
  http::reply task_failed(const http::request& req);
  http::reply fetch_failed(const http::request& req);
  http::reply input(const http::request& req) const;
  void wake_waiters();
  void job_finished();
  boost::asio::awaitable<void> release_after_grace();
  void maybe_release();

  coordinator_config config_;
  task_table table_;
  std::optional<boost::asio::any_io_executor> executor_;
  std::optional<shuffle_fetcher> fetcher_;  // made in attach(), on the server's thread's executor
  std::function<void()> on_finished_;
  // The timers parked long polls sleep on. They belong to the coroutine frames, never to this object:
  // a timer must not outlive its io_context, and the frames die with it.
  std::list<boost::asio::steady_timer*> waiters_;
  bool released_ = false;  // on_finished_ has run
  counters counters_;      // summed over the attempts that finished their tasks
};

}  // namespace mrkv::mr
