#include "mrkv/mr/coordinator.hpp"

#include "mrkv/http/file_reply.hpp"
#include "mrkv/mr/job_spec.hpp"
#include "mrkv/mr/task_files.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/http/json_body.hpp"
#include "mrkv/http/reply.hpp"
#include "mrkv/mr/protocol.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>

namespace mrkv::mr {

namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

double seconds(clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

std::string describe(const assignment& a) {
  std::string text = std::string(to_string(a.kind)) + " task " + std::to_string(a.task) + " (attempt " +
                     std::to_string(a.attempt);
  if (a.backup) text += ", backup copy of a straggler";
  if (a.retry) text += ", previous attempt timed out";
  if (a.after_failure) text += ", previous attempt failed";
  return text + ")";
}

}  // namespace

coordinator::coordinator(coordinator_config config)
    : config_(std::move(config)), table_(config_.table, clock::now()) {}

coordinator::~coordinator() = default;

void coordinator::attach(asio::any_io_executor executor, std::function<void()> on_finished) {
  executor_ = std::move(executor);
  fetch_options fetching;
  fetching.client = config_.worker_calls;
  fetching.client.max_reply_body = std::size_t{4} << 30;
  fetching.keep_alive = false;  // this object outlives its server's io_context; one output per reduce anyway
  fetcher_.emplace(*executor_, fetching);
  on_finished_ = std::move(on_finished);
}

bool coordinator::job_done() const noexcept { return table_.phase() == job_phase::done; }

bool coordinator::job_failed() const noexcept { return table_.phase() == job_phase::failed; }

const std::string& coordinator::failure() const noexcept { return table_.failure(); }

http::router coordinator::routes() {
  http::router r;
  r.add_async(http::verb::post, protocol::next_path, [this](http::request req) { return next_task(std::move(req)); });
  r.add_async(http::verb::post, protocol::done_path, [this](http::request req) { return task_done(std::move(req)); });
  r.add(http::verb::post, protocol::failed_path, [this](const http::request& req) { return task_failed(req); });
  r.add(http::verb::post, protocol::fetch_failed_path, [this](const http::request& req) { return fetch_failed(req); });
  r.add(http::verb::get, protocol::job_path, [this](const http::request&) { return http::json_reply(status()); });
  r.add(http::verb::get, std::string(protocol::inputs_prefix) + "*",
        [this](const http::request& req) { return input(req); });
  return r;
}

void coordinator::wake_waiters() {
  // cancel() on a timer that already expired does nothing, but its waiter is about to look anyway.
  for (auto* timer : waiters_) timer->cancel();
}

asio::awaitable<http::reply> coordinator::next_task(http::request req) {
  const auto ask = protocol::decode_next_request(http::parse_json_object(req.body()));
  const auto wait = std::min(ask.wait.value_or(config_.max_poll_wait), config_.max_poll_wait);
  const auto deadline = clock::now() + wait;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    const auto now = clock::now();
    const auto known = table_.workers().size();
    auto picked = table_.assign(ask.worker, ask.host, now);
    if (table_.workers().size() != known)
      log::info("coordinator", "new worker " + ask.worker + " on host " + log::peer_text(ask.host));
    if (picked) {
      log::info("coordinator", describe(*picked) + " -> worker " + ask.worker);
      // A new running task moves the moment some waiter's next change falls due.
      wake_waiters();
      auto order = protocol::order_for(*picked, table_.n_map(), table_.n_reduce());
      order.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config_.table.task_timeout);
      if (picked->kind == task_kind::reduce) order.sources = protocol::sources_for(table_);
      co_return http::json_reply(protocol::encode(order));
    }
    if (table_.over()) {
      table_.mark_told_exit(ask.worker);
      log::info("coordinator", "worker " + ask.worker + " told to exit");
      if (executor_) asio::post(*executor_, [this] { maybe_release(); });
      protocol::order leave;
      leave.what = protocol::action::exit;
      co_return http::json_reply(protocol::encode(leave));
    }
    if (now >= deadline || released_) co_return http::json_reply(protocol::encode(protocol::order{}));

    auto wake = deadline;
    if (auto change = table_.next_change(now)) wake = std::min(wake, *change);
    timer.expires_at(wake);
    struct parked {
      std::list<asio::steady_timer*>& list;
      std::list<asio::steady_timer*>::iterator it;
      ~parked() { list.erase(it); }
    } guard{waiters_, waiters_.insert(waiters_.end(), &timer)};
    co_await timer.async_wait(use_tuple);
  }
}

asio::awaitable<http::reply> coordinator::task_done(http::request req) {
  auto report = protocol::decode_done_request(http::parse_json_object(req.body()));
  if (report.kind == task_kind::reduce && !report.location.empty() && fetcher_ &&
      report.task >= 0 && report.task < table_.n_reduce() && !table_.over() &&
      table_.tasks(task_kind::reduce, clock::now())[static_cast<std::size_t>(report.task)].state != task_state_kind::done) {
    // The reducer's work directory is its own: its output comes here before the task counts as done.
    auto error = co_await fetcher_->fetch_output(report.location, "", report.task,
                                                 config_.workdir / output_file_name(report.task));
    if (!error.empty()) {
      log::warn("coordinator", "reduce task " + std::to_string(report.task) + ": cannot fetch its output from " +
                                   report.location + ": " + log::peer_text(error, 500) + "; it will run again");
      table_.fail(report.worker, task_kind::reduce, report.task, report.attempt,
                  "its output could not be fetched: " + error, clock::now(), false);
      wake_waiters();
      co_return http::json_reply({{"result", "recorded"}});
    }
  }
  co_return done_reply(report);
}

http::reply coordinator::done_reply(const protocol::done_request& report) {
  const auto now = clock::now();
  const auto phase_before = table_.phase();
  const auto outcome = table_.complete(report.worker, report.kind, report.task, report.attempt, now,
                                       report.kind == task_kind::map ? report.location : std::string());
  const std::string task = std::string(to_string(report.kind)) + " task " + std::to_string(report.task);
  switch (outcome) {
    case report_outcome::completed:
      log::info("coordinator", task + " done by worker " + report.worker + " (attempt " +
                                   std::to_string(report.attempt) + ")");
      // Only the attempt that finished its task counts: a failed attempt never reports done, and the
      // loser of a backup race is already_done below.
      add_counters(counters_, report.counts);
      if (table_.phase() != phase_before)
        log::info("coordinator", "phase " + std::string(to_string(table_.phase())) + " after " +
                                     fixed(seconds(now - table_.started()), 3) + " s");
      wake_waiters();
      if (table_.phase() == job_phase::done) job_finished();
      return http::json_reply({{"result", "completed"}});
    case report_outcome::already_done:
      log::info("coordinator", "late report for " + task + " from worker " + report.worker + " (attempt " +
                                   std::to_string(report.attempt) + "): already done, ignored");
      return http::json_reply({{"result", "already_done"}});
    case report_outcome::unknown_task:
      throw http::request_error(404, "no " + task + " in this job");
    case report_outcome::never_assigned:
    default:
      throw http::request_error(409, "attempt " + std::to_string(report.attempt) + " of " + task +
                                         " was never handed out");
  }
}

http::reply coordinator::task_failed(const http::request& req) {
  auto report = protocol::decode_failed_request(http::parse_json_object(req.body()));
  const auto now = clock::now();
  const std::string task = std::string(to_string(report.kind)) + " task " + std::to_string(report.task);
  const std::string error = report.error;
  const auto outcome = table_.fail(report.worker, report.kind, report.task, report.attempt, std::move(report.error), now,
                                   !report.given_back);
  switch (outcome) {
    case report_outcome::recorded:
      if (report.given_back)
        log::info("coordinator", task + " attempt " + std::to_string(report.attempt) + " given back by worker " +
                                     report.worker + " (" + log::peer_text(error, 200) + "): handing it out again");
      else
        log::warn("coordinator", task + " attempt " + std::to_string(report.attempt) + " failed on worker " +
                                     report.worker + ": " + log::peer_text(error, 1000));
      // The task is idle again: a parked worker may take it now.
      wake_waiters();
      return http::json_reply({{"result", "recorded"}});
    case report_outcome::job_failed:
      log::error("coordinator", "job failed: " + log::peer_text(table_.failure(), 1000));
      wake_waiters();
      job_finished();
      return http::json_reply({{"result", "job_failed"}});
    case report_outcome::already_done:
      log::info("coordinator", "failure report for " + task + " from worker " + report.worker +
                                   " after it was over: ignored");
      return http::json_reply({{"result", "already_done"}});
    case report_outcome::unknown_task:
      throw http::request_error(404, "no " + task + " in this job");
    case report_outcome::never_assigned:
    default:
      throw http::request_error(409, "attempt " + std::to_string(report.attempt) + " of " + task +
                                         " was never handed out");
  }
}

http::reply coordinator::fetch_failed(const http::request& req) {
  const auto report = protocol::decode_fetch_failed_request(http::parse_json_object(req.body()));
  const auto now = clock::now();
  if (table_.over()) return http::json_reply({{"result", "already_done"}});
  if (report.map >= table_.n_map()) throw http::request_error(404, "no map task " + std::to_string(report.map));
  log::warn("coordinator", "reduce task " + std::to_string(report.task) + " on worker " + report.worker +
                               " could not fetch the output of map " + std::to_string(report.map) + ": " +
                               log::peer_text(report.error, 500));
  const auto outcome = table_.fail(report.worker, task_kind::reduce, report.task, report.attempt,
                                   "could not fetch map " + std::to_string(report.map) + "'s output: " + report.error,
                                   now, false);
  if (outcome == report_outcome::unknown_task) throw http::request_error(404, "no reduce task " + std::to_string(report.task));
  if (outcome == report_outcome::never_assigned)
    throw http::request_error(409, "attempt " + std::to_string(report.attempt) + " of reduce task " +
                                       std::to_string(report.task) + " was never handed out");
  const auto holder = table_.map_holder(report.map);
  bool silent = false;
  for (const auto& w : table_.workers())
    if (w.id == holder) silent = now - w.last_contact >= config_.table.task_timeout;
  const auto rerun = table_.report_fetch_failure(report.map, report.worker, report.gone, silent, now);
  if (!rerun.empty()) log::warn("coordinator", describe_lost_outputs(rerun, holder, report.gone, silent));
  wake_waiters();
  return http::json_reply({{"result", rerun.empty() ? "recorded" : "map_rerun"}});
}

http::reply coordinator::input(const http::request& req) const {
  const auto ref = protocol::parse_input_target(req.target());
  if (!ref.job.empty() || ref.map >= static_cast<int>(config_.table.inputs.size()))
    throw http::request_error(404, "no input of map task " + std::to_string(ref.map) + " in this job");
  const auto& name = config_.table.inputs[static_cast<std::size_t>(ref.map)];
  if (is_input_url(name)) throw http::request_error(404, "the input of map task " + std::to_string(ref.map) + " is a URL");
  return http::file_reply(req, config_.workdir / name);
}

void coordinator::job_finished() {
  for (const auto& [group, names] : counters_)
    for (const auto& [name, value] : names)
      log::info("coordinator", "counter " + group + "," + name + " = " + std::to_string(value));
  if (table_.phase() == job_phase::failed) {
    log::info("coordinator", "job failed after " + fixed(seconds(*table_.finished() - table_.started()), 3) + " s");
    if (!executor_) return;
    asio::co_spawn(*executor_, release_after_grace(), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error("coordinator", std::string("grace timer failed: ") + ex.what());
      }
    });
    maybe_release();
    return;
  }
  log::info("coordinator", "job done in " + fixed(seconds(*table_.finished() - table_.started()), 3) + " s: " +
                               std::to_string(table_.stats().assignments) + " hand-outs, " +
                               std::to_string(table_.stats().reassignments) + " after timeouts, " +
                               std::to_string(table_.stats().backups) + " backups");
  if (!executor_) return;
  asio::co_spawn(*executor_, release_after_grace(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::error("coordinator", std::string("grace timer failed: ") + ex.what());
    }
  });
  maybe_release();
}

asio::awaitable<void> coordinator::release_after_grace() {
  asio::steady_timer timer(co_await asio::this_coro::executor, config_.exit_grace);
  co_await timer.async_wait(use_tuple);
  if (released_) co_return;
  int waiting = 0;
  for (const auto& w : table_.workers()) waiting += w.told_exit ? 0 : 1;
  log::info("coordinator", std::to_string(waiting) + " worker(s) not told to exit within the grace period; "
                           "they will find the coordinator gone");
  released_ = true;
  if (on_finished_) on_finished_();
}

void coordinator::maybe_release() {
  if (released_ || !table_.over() || !table_.all_workers_told_exit()) return;
  released_ = true;
  log::info("coordinator", "every worker was told to exit");
  if (on_finished_) on_finished_();
}

nlohmann::json coordinator::status() const {
  const auto now = clock::now();
  const auto wall_now = std::chrono::system_clock::now();
  nlohmann::json workers = nlohmann::json::array();
  for (const auto& w : table_.workers()) {
    const auto ago = now - w.last_contact;
    workers.push_back({{"id", w.id},
                       {"host", w.host},
                       {"last_contact", log::utc_time(wall_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(ago))},
                       {"last_contact_seconds_ago", seconds(ago)},
                       {"tasks_assigned", w.tasks_assigned},
                       {"tasks_completed", w.tasks_completed},
                       {"told_exit", w.told_exit}});
  }
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& e : table_.errors())
    errors.push_back({{"kind", to_string(e.kind)},
                      {"task", e.task},
                      {"attempts", e.attempts},
                      {"failed_attempts", e.failed_attempts},
                      {"last_error", e.last_error}});
  const auto& s = table_.stats();
  nlohmann::json job{{"phase", to_string(table_.phase())},
          {"elapsed_seconds", seconds(table_.finished().value_or(now) - table_.started())},
          {"map", protocol::encode(table_.counts(task_kind::map, now))},
          {"reduce", protocol::encode(table_.counts(task_kind::reduce, now))},
          {"workers", std::move(workers)},
          {"stats",
           {{"assignments", s.assignments},
            {"reassignments", s.reassignments},
            {"backups", s.backups},
            {"late_reports", s.late_reports}}},
          {"task_errors", std::move(errors)},
          {"counters", protocol::encode(counters_)},
          {"shuffled_bytes", shuffled_bytes(counters_)}};
  // Where each done map's output lives, when some live on shared-nothing workers ("" : the directory).
  if (auto sources = protocol::sources_for(table_); !sources.empty()) job["map_outputs"] = std::move(sources);
  if (table_.phase() == job_phase::failed) job["error"] = table_.failure();
  return job;
}

}  // namespace mrkv::mr
