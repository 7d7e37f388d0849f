#include "mrkv/mr/job_service.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/http/file_reply.hpp"
#include "mrkv/http/json_body.hpp"
#include "mrkv/http/reply.hpp"
#include "mrkv/mr/job_files.hpp"
#include "mrkv/mr/job_page.hpp"
#include "mrkv/mr/task_files.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace mrkv::mr {

namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr const char* jobs_path = "/v1/jobs";
constexpr const char* job_prefix = "/v1/jobs/";
constexpr const char* workers_path = "/v1/workers";

double seconds(clock::duration d) { return std::chrono::duration<double>(d).count(); }

nlohmann::json text_or_null(const std::optional<std::string>& text) {
  return text ? nlohmann::json(*text) : nlohmann::json(nullptr);
}

bool over(job_state s) { return s == job_state::done || s == job_state::failed || s == job_state::cancelled; }

std::optional<job_state> parse_job_state(std::string_view text) {
  for (auto s : {job_state::queued, job_state::map, job_state::reduce, job_state::done, job_state::failed,
                 job_state::cancelled})
    if (to_string(s) == text) return s;
  return std::nullopt;
}

// The ID in "/v1/jobs/ID[?query]"; 404 for an empty or odd one.
std::string id_in(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view id = path.substr(std::string_view(job_prefix).size());
  if (id.empty() || id.size() > protocol::max_name_length || id.find('/') != std::string_view::npos)
    throw http::request_error(404, "no such job");
  return std::string(id);
}

table_config table_for(const job_spec& spec, const service_config& config) {
  table_config table;
  table.inputs = spec.inputs;
  table.n_reduce = spec.n_reduce;
  table.task_timeout = spec.task_timeout;
  table.backup = config.backup;
  if (config.backup_min_age) table.backup.min_age = *config.backup_min_age;
  table.max_failed_attempts = spec.max_attempts;
  table.timeouts_count_as_failures = true;
  return table;
}

void log_spawn_error(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error("coordinator", std::string("job sweep failed: ") + ex.what());
  }
}

}  // namespace

std::string_view to_string(job_state state) noexcept {
  switch (state) {
    case job_state::queued: return "queued";
    case job_state::map: return "map";
    case job_state::reduce: return "reduce";
    case job_state::done: return "done";
    case job_state::failed: return "failed";
    case job_state::cancelled: return "cancelled";
    default: return "unknown";
  }
}

struct job_service::job {
  std::string id;
  std::uint64_t seq = 0;
  job_spec spec;
  job_state state = job_state::queued;
  std::string submitted;
  std::optional<std::string> started;
  std::optional<std::string> finished;
  std::optional<clock::time_point> started_at;  // steady, for the elapsed time of a live job
  std::optional<task_table> table;              // none for a job restored after it ended
  counters counts;
  std::string error;
  nlohmann::json restored;  // the record a table-less job was restored from
};

job_service::job_service(service_config config)
    : config_(std::move(config)),
      history_((config_.workdir = std::filesystem::weakly_canonical(std::filesystem::absolute(config_.workdir)))) {
  restore();
}

job_service::~job_service() = default;

void job_service::attach(asio::any_io_executor executor) {
  executor_ = std::move(executor);
  fetch_options fetching;
  fetching.client = config_.worker_calls;
  fetching.client.max_reply_body = std::size_t{4} << 30;
  fetching.keep_alive = false;  // this object outlives its server's io_context; one output per reduce anyway
  fetcher_.emplace(*executor_, fetching);
  asio::co_spawn(*executor_, sweep(), log_spawn_error);
}

http::router job_service::routes() {
  http::router r;
  r.add(http::verb::post, jobs_path, [this](const http::request& req) { return submit(req); });
  r.add(http::verb::get, jobs_path, [this](const http::request&) { return http::json_reply(list()); });
  r.add(http::verb::get, std::string(job_prefix) + "*",
        [this](const http::request& req) { return http::json_reply(details(job_for(req))); });
  r.add(http::verb::delete_, std::string(job_prefix) + "*", [this](const http::request& req) { return cancel(req); });
  r.add(http::verb::get, workers_path,
        [this](const http::request&) { return http::json_reply({{"workers", workers_json()}}); });
  r.add_async(http::verb::post, protocol::next_path, [this](http::request req) { return next_task(std::move(req)); });
  r.add_async(http::verb::post, protocol::done_path, [this](http::request req) { return task_done(std::move(req)); });
  r.add(http::verb::post, protocol::failed_path, [this](const http::request& req) { return task_failed(req); });
  r.add(http::verb::post, protocol::fetch_failed_path, [this](const http::request& req) { return fetch_failed(req); });
  r.add(http::verb::get, std::string(protocol::inputs_prefix) + "*",
        [this](const http::request& req) { return input(req); });
  // Public: a browser loads the page before it can send a token, then sends the token with every call.
  r.add_public(http::verb::get, "/", [](const http::request&) {
    http::reply page;
    page.body = std::string(job_page_html());
    page.content_type = "text/html; charset=utf-8";
    return page;
  });
  return r;
}

job_service::job* job_service::find(const std::string& id) {
  for (auto& j : jobs_)
    if (j->id == id) return j.get();
  return nullptr;
}

job_service::job& job_service::job_for(const http::request& req) {
  const auto id = id_in(req.target());
  if (auto* j = find(id)) return *j;
  throw http::request_error(404, "no job " + id);
}

void job_service::wake_waiters() {
  for (auto* timer : waiters_) timer->cancel();
}

void job_service::save(const job& j) const {
  try {
    // Submission and the end are fsync'ed: they must not be lost. A lost start or phase change only
    // shows the job queued after a crash of the machine, and it runs again.
    history_.save(j.id, details(j), j.state == job_state::queued || over(j.state));
  } catch (const std::exception& e) {
    // The job runs on; only its record after a restart is at stake.
    log::error("coordinator", "cannot save the record of job " + j.id + ": " + e.what());
  }
}

http::reply job_service::submit(const http::request& req) {
  auto spec = decode_job_spec(http::parse_json_object(req.body()), config_.defaults, config_.workdir);
  auto j = std::make_unique<job>();
  j->seq = next_seq_++;
  j->id = std::to_string(j->seq);
  j->spec = std::move(spec);
  j->submitted = log::utc_time(std::chrono::system_clock::now());
  j->table.emplace(table_for(j->spec, config_), clock::now());
  try {
    history_.save(j->id, details(*j), true);
  } catch (const std::exception& e) {
    throw http::request_error(500, std::string("cannot record the job: ") + e.what());
  }
  log::info("coordinator", "job " + j->id + " submitted: " + j->spec.app.describe() + ", " +
                               std::to_string(j->spec.inputs.size()) + " inputs, " + std::to_string(j->spec.n_reduce) +
                               " reduce tasks" +
                               (j->spec.name.empty() ? "" : ", name " + log::peer_text(j->spec.name)));
  jobs_.push_back(std::move(j));
  wake_waiters();
  return http::json_reply(summary(*jobs_.back()), 201);
}

http::reply job_service::cancel(const http::request& req) {
  auto& j = job_for(req);
  if (over(j.state))
    throw http::request_error(409, "job " + j.id + " has already ended (" + std::string(to_string(j.state)) + ")");
  end_job(j, job_state::cancelled, "cancelled");
  return http::json_reply(summary(j));
}

void job_service::follow_table(job& j) {
  if (!j.table || over(j.state)) return;
  switch (j.table->phase()) {
    case job_phase::map:
      break;
    case job_phase::reduce:
      if (j.state != job_state::reduce) {
        j.state = job_state::reduce;
        log::info("coordinator", "job " + j.id + ": reduce phase");
        save(j);
      }
      break;
    case job_phase::done: end_job(j, job_state::done, ""); break;
    case job_phase::failed:
    default: end_job(j, job_state::failed, j.table->failure()); break;
  }
}

void job_service::end_job(job& j, job_state state, std::string error) {
  j.state = state;
  j.error = std::move(error);
  j.finished = log::utc_time(std::chrono::system_clock::now());
  remove_task_files(j, state == job_state::cancelled);
  for (auto& [id, w] : workers_)
    if (w.running.starts_with("job " + j.id + ":")) w.running.clear();
  const double took = j.started_at ? seconds(clock::now() - *j.started_at) : 0.0;
  if (state == job_state::done)
    log::info("coordinator", "job " + j.id + " done in " +
                                 log::duration(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::duration<double>(took))));
  else
    log::warn("coordinator",
              "job " + j.id + " " + std::string(to_string(state)) + ": " + log::peer_text(j.error, 1000));
  save(j);
  wake_waiters();
}

void job_service::remove_task_files(const job& j, bool outputs_too) const {
  try {
    remove_job_files(history_.dir(j.id),
                     outputs_too ? job_file_kinds::outputs_and_intermediate : job_file_kinds::intermediate);
  } catch (const std::exception& e) {
    log::warn("coordinator", "job " + j.id + ": cannot remove its task files: " + std::string(e.what()));
  }
}

asio::awaitable<http::reply> job_service::next_task(http::request req) {
  const auto ask = protocol::decode_next_request(http::parse_json_object(req.body()));
  const auto wait = std::min(ask.wait.value_or(config_.max_poll_wait), config_.max_poll_wait);
  const auto deadline = clock::now() + wait;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    const auto now = clock::now();
    auto [seen, is_new] = workers_.try_emplace(ask.worker);
    if (is_new)
      log::info("coordinator", "new worker " + ask.worker + " on host " + log::peer_text(ask.host) +
                                   (ask.app ? " for app " + ask.app->describe() : " for any app"));
    seen->second.host = ask.host;
    seen->second.last_contact = now;
    seen->second.running.clear();
    std::optional<clock::time_point> wake;
    for (auto& jp : jobs_) {
      auto& j = *jp;
      if (over(j.state) || !j.table) continue;
      if (ask.app && !protocol::same_app(*ask.app, j.spec.app)) continue;
      auto picked = j.table->assign(ask.worker, ask.host, now);
      if (j.table->over()) {
        follow_table(j);
        continue;
      }
      if (!picked) {
        if (auto change = j.table->next_change(now)) wake = wake ? std::min(*wake, *change) : *change;
        continue;
      }
      if (j.state == job_state::queued) {
        j.state = job_state::map;
        j.started = log::utc_time(std::chrono::system_clock::now());
        j.started_at = now;
        log::info("coordinator", "job " + j.id + " started");
        save(j);
      }
      follow_table(j);
      auto order = protocol::order_for(*picked, j.table->n_map(), j.table->n_reduce());
      order.timeout = j.spec.task_timeout;
      order.job = j.id;
      order.dir = job_history::relative_dir(j.id);
      order.app = j.spec.app;
      order.service = true;
      order.live_jobs = live_job_ids();
      if (picked->kind == task_kind::reduce) order.sources = protocol::sources_for(*j.table);
      seen->second.running = "job " + j.id + ": " + std::string(to_string(picked->kind)) + " task " +
                             std::to_string(picked->task);
      log::info("coordinator", "job " + j.id + ": " + std::string(to_string(picked->kind)) + " task " +
                                   std::to_string(picked->task) + " (attempt " + std::to_string(picked->attempt) +
                                   (picked->backup ? ", backup" : "") + ") -> worker " + ask.worker);
      wake_waiters();
      co_return http::json_reply(protocol::encode(order));
    }
    if (now >= deadline) {
      protocol::order idle;
      idle.service = true;
      idle.live_jobs = live_job_ids();
      co_return http::json_reply(protocol::encode(idle));
    }
    timer.expires_at(wake ? std::min(deadline, *wake) : deadline);
    struct parked {
      std::list<asio::steady_timer*>& list;
      std::list<asio::steady_timer*>::iterator it;
      ~parked() { list.erase(it); }
    } guard{waiters_, waiters_.insert(waiters_.end(), &timer)};
    co_await timer.async_wait(use_tuple);
  }
}

asio::awaitable<http::reply> job_service::task_done(http::request req) {
  const auto report = protocol::decode_done_request(http::parse_json_object(req.body()));
  if (report.job.empty()) throw http::request_error(400, "field 'job' is required: this coordinator runs many jobs");
  auto* j = find(report.job);
  if (!j) throw http::request_error(404, "no job " + report.job);
  if (auto w = workers_.find(report.worker); w != workers_.end()) {
    w->second.last_contact = clock::now();
    w->second.running.clear();
  }
  const bool pending_reduce =
      report.kind == task_kind::reduce && !over(j->state) && j->table && report.task >= 0 &&
      report.task < j->table->n_reduce() &&
      j->table->tasks(task_kind::reduce, clock::now())[static_cast<std::size_t>(report.task)].state !=
          task_state_kind::done;
  if (pending_reduce && !report.location.empty() && fetcher_) {
    // The reducer's work directory is its own: its output comes here before the task counts as done.
    auto error = co_await fetcher_->fetch_output(report.location, j->id, report.task,
                                                 history_.dir(j->id) / output_file_name(report.task));
    if (!error.empty()) {
      log::warn("coordinator", "job " + j->id + ": reduce task " + std::to_string(report.task) +
                                   ": cannot fetch its output from " + report.location + ": " +
                                   log::peer_text(error, 500) + "; it will run again");
      if (j->table && !over(j->state))
        j->table->fail(report.worker, task_kind::reduce, report.task, report.attempt,
                       "its output could not be fetched: " + error, clock::now(), false);
      wake_waiters();
      co_return http::json_reply({{"result", "recorded"}});
    }
  }
  co_return done_reply(*j, report);
}

http::reply job_service::done_reply(job& job_ref, const protocol::done_request& report) {
  auto* j = &job_ref;
  if (over(j->state) || !j->table) {
    // A late attempt may have published files after the job ended: take them away again.
    remove_task_files(*j, j->state == job_state::cancelled);
    return http::json_reply({{"result", "already_done"}});
  }
  const auto now = clock::now();
  const auto outcome = j->table->complete(report.worker, report.kind, report.task, report.attempt, now,
                                         report.kind == task_kind::map ? report.location : std::string());
  const std::string task = std::string(to_string(report.kind)) + " task " + std::to_string(report.task);
  switch (outcome) {
    case report_outcome::completed: {
      add_counters(j->counts, report.counts);
      record_duration(j->table->tasks(report.kind, now)[static_cast<std::size_t>(report.task)].duration);
      if (auto w = workers_.find(report.worker); w != workers_.end()) ++w->second.tasks_done;
      follow_table(*j);
      wake_waiters();
      return http::json_reply({{"result", "completed"}});
    }
    case report_outcome::already_done: return http::json_reply({{"result", "already_done"}});
    case report_outcome::unknown_task: throw http::request_error(404, "no " + task + " in job " + j->id);
    case report_outcome::never_assigned:
    default:
      throw http::request_error(409, "attempt " + std::to_string(report.attempt) + " of " + task + " of job " +
                                         j->id + " was never handed out");
  }
}

http::reply job_service::task_failed(const http::request& req) {
  auto report = protocol::decode_failed_request(http::parse_json_object(req.body()));
  if (report.job.empty()) throw http::request_error(400, "field 'job' is required: this coordinator runs many jobs");
  auto* j = find(report.job);
  if (!j) throw http::request_error(404, "no job " + report.job);
  if (auto w = workers_.find(report.worker); w != workers_.end()) {
    w->second.last_contact = clock::now();
    w->second.running.clear();
  }
  if (over(j->state) || !j->table) return http::json_reply({{"result", "already_done"}});
  const std::string task = std::string(to_string(report.kind)) + " task " + std::to_string(report.task);
  if (report.given_back)
    log::info("coordinator", "job " + j->id + ": " + task + " attempt " + std::to_string(report.attempt) +
                                 " given back by worker " + report.worker + " (" + log::peer_text(report.error, 200) +
                                 "): handing it out again");
  else
    log::warn("coordinator", "job " + j->id + ": " + task + " attempt " + std::to_string(report.attempt) +
                                 " failed on worker " + report.worker + ": " + log::peer_text(report.error, 1000));
  const auto outcome = j->table->fail(report.worker, report.kind, report.task, report.attempt, std::move(report.error),
                                      clock::now(), !report.given_back);
  switch (outcome) {
    case report_outcome::recorded: wake_waiters(); return http::json_reply({{"result", "recorded"}});
    case report_outcome::job_failed: follow_table(*j); return http::json_reply({{"result", "job_failed"}});
    case report_outcome::already_done: return http::json_reply({{"result", "already_done"}});
    case report_outcome::unknown_task: throw http::request_error(404, "no " + task + " in job " + j->id);
    case report_outcome::never_assigned:
    default:
      throw http::request_error(409, "attempt " + std::to_string(report.attempt) + " of " + task + " of job " +
                                         j->id + " was never handed out");
  }
}

std::vector<std::string> job_service::live_job_ids() const {
  std::vector<std::string> ids;
  for (const auto& j : jobs_)
    if (!over(j->state)) ids.push_back(j->id);
  return ids;
}

http::reply job_service::fetch_failed(const http::request& req) {
  const auto report = protocol::decode_fetch_failed_request(http::parse_json_object(req.body()));
  if (report.job.empty()) throw http::request_error(400, "field 'job' is required: this coordinator runs many jobs");
  auto* j = find(report.job);
  if (!j) throw http::request_error(404, "no job " + report.job);
  const auto now = clock::now();
  if (auto w = workers_.find(report.worker); w != workers_.end()) {
    w->second.last_contact = now;
    w->second.running.clear();
  }
  if (over(j->state) || !j->table) return http::json_reply({{"result", "already_done"}});
  auto& table = *j->table;
  if (report.map >= table.n_map()) throw http::request_error(404, "no map task " + std::to_string(report.map));
  log::warn("coordinator", "job " + j->id + ": reduce task " + std::to_string(report.task) + " on worker " +
                               report.worker + " could not fetch the output of map " + std::to_string(report.map) +
                               ": " + log::peer_text(report.error, 500));
  const auto outcome = table.fail(report.worker, task_kind::reduce, report.task, report.attempt,
                                  "could not fetch map " + std::to_string(report.map) + "'s output: " + report.error,
                                  now, false);
  if (outcome == report_outcome::unknown_task) throw http::request_error(404, "no reduce task " + std::to_string(report.task));
  if (outcome == report_outcome::never_assigned)
    throw http::request_error(409, "attempt " + std::to_string(report.attempt) + " of reduce task " +
                                       std::to_string(report.task) + " was never handed out");
  const auto holder = table.map_holder(report.map);
  const auto seen = workers_.find(holder);
  const bool silent = seen == workers_.end() || now - seen->second.last_contact >= j->spec.task_timeout;
  const auto rerun = table.report_fetch_failure(report.map, report.worker, report.gone, silent, now);
  if (!rerun.empty()) {
    log::warn("coordinator", "job " + j->id + ": " + describe_lost_outputs(rerun, holder, report.gone, silent));
    follow_table(*j);
  }
  wake_waiters();
  return http::json_reply({{"result", rerun.empty() ? "recorded" : "map_rerun"}});
}

http::reply job_service::input(const http::request& req) {
  const auto ref = protocol::parse_input_target(req.target());
  auto* j = find(ref.job);
  if (!j || ref.map >= static_cast<int>(j->spec.inputs.size()))
    throw http::request_error(404, "no input of map task " + std::to_string(ref.map) + " in job " + ref.job.substr(0, 64));
  const auto& name = j->spec.inputs[static_cast<std::size_t>(ref.map)];
  if (is_input_url(name)) throw http::request_error(404, "the input of map task " + std::to_string(ref.map) + " is a URL");
  return http::file_reply(req, config_.workdir / name);
}

asio::awaitable<void> job_service::sweep() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(config_.sweep_every);
    auto [ec] = co_await timer.async_wait(use_tuple);
    if (ec && ec != asio::error::operation_aborted) co_return;
    const auto now = clock::now();
    for (auto& j : jobs_) {
      if (over(j->state) || !j->table) continue;
      if (j->table->expire_attempts(now)) follow_table(*j);
    }
  }
}

void job_service::record_duration(clock::duration d) noexcept {
  const double s = seconds(d);
  std::size_t i = 0;
  while (i < duration_bounds.size() && s > duration_bounds[i]) ++i;
  ++duration_buckets_[i];
  duration_sum_ += s;
}

nlohmann::json job_service::summary(const job& j) const {
  nlohmann::json s{{"id", j.id},
                   {"name", j.spec.name},
                   {"app", j.spec.app.describe()},
                   {"state", to_string(j.state)},
                   {"submitted", j.submitted},
                   {"started", text_or_null(j.started)},
                   {"finished", text_or_null(j.finished)}};
  if (j.table) {
    const auto now = clock::now();
    s["map"] = protocol::encode(j.table->counts(task_kind::map, now));
    s["reduce"] = protocol::encode(j.table->counts(task_kind::reduce, now));
  } else {
    s["map"] = j.restored.value("map", nlohmann::json::object());
    s["reduce"] = j.restored.value("reduce", nlohmann::json::object());
  }
  return s;
}

nlohmann::json job_service::details(const job& j) const {
  auto d = summary(j);
  d["seq"] = j.seq;
  d["spec"] = encode(j.spec);
  if (!j.error.empty()) d["error"] = j.error;
  if (j.state == job_state::done) {
    nlohmann::json outputs = nlohmann::json::array();
    for (int r = 0; r < j.spec.n_reduce; ++r) outputs.push_back((history_.dir(j.id) / output_file_name(r)).string());
    d["outputs"] = std::move(outputs);
  }
  if (!j.table) {
    for (const char* member : {"tasks", "task_errors", "counters", "workers", "elapsed_seconds"})
      if (j.restored.contains(member)) d[member] = j.restored[member];
    return d;
  }
  const auto now = clock::now();
  nlohmann::json tasks = nlohmann::json::object();
  for (auto kind : {task_kind::map, task_kind::reduce}) {
    nlohmann::json list = nlohmann::json::array();
    int index = 0;
    const auto locations = j.table->map_locations();
    for (const auto& t : j.table->tasks(kind, now)) {
      nlohmann::json task{{"task", index},
                          {"state", to_string(t.state)},
                          {"worker", t.worker},
                          {"attempts", t.attempts},
                          {"failed_attempts", t.failed_attempts},
                          {"duration_seconds", seconds(t.duration)}};
      // Where a done map's output lives: its worker's URL (shared nothing) or the job's directory.
      if (kind == task_kind::map && t.state == task_state_kind::done) {
        const auto& where = locations[static_cast<std::size_t>(index)];
        task["output"] = where.empty() ? std::string("shared directory") : where;
      }
      list.push_back(std::move(task));
      ++index;
    }
    tasks[std::string(to_string(kind))] = std::move(list);
  }
  d["tasks"] = std::move(tasks);
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& e : j.table->errors())
    errors.push_back({{"kind", to_string(e.kind)},
                      {"task", e.task},
                      {"attempts", e.attempts},
                      {"failed_attempts", e.failed_attempts},
                      {"last_error", e.last_error}});
  d["task_errors"] = std::move(errors);
  d["counters"] = protocol::encode(j.counts);
  d["shuffled_bytes"] = shuffled_bytes(j.counts);
  nlohmann::json workers = nlohmann::json::array();
  for (const auto& w : j.table->workers())
    if (w.tasks_assigned > 0)
      workers.push_back({{"id", w.id}, {"tasks_assigned", w.tasks_assigned}, {"tasks_completed", w.tasks_completed}});
  d["workers"] = std::move(workers);
  if (j.started_at) d["elapsed_seconds"] = seconds(j.table->finished().value_or(now) - *j.started_at);
  return d;
}

nlohmann::json job_service::list() const {
  nlohmann::json jobs = nlohmann::json::array();
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) jobs.push_back(summary(**it));
  return {{"jobs", std::move(jobs)}};
}

nlohmann::json job_service::workers_json() const {
  const auto now = clock::now();
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [id, w] : workers_)
    out.push_back({{"id", id},
                   {"host", w.host},
                   {"last_contact_seconds_ago", seconds(now - w.last_contact)},
                   {"running", w.running},
                   {"tasks_done", w.tasks_done}});
  return out;
}

std::string job_service::metrics(const std::string& mode) const {
  std::map<job_state, int> by_state;
  for (auto s : {job_state::queued, job_state::map, job_state::reduce, job_state::done, job_state::failed,
                 job_state::cancelled})
    by_state[s] = 0;
  phase_counts tasks[2];
  const auto now = clock::now();
  for (const auto& j : jobs_) {
    ++by_state[j->state];
    if (!j->table || over(j->state)) continue;
    for (auto kind : {task_kind::map, task_kind::reduce}) {
      const auto c = j->table->counts(kind, now);
      auto& into = tasks[kind == task_kind::map ? 0 : 1];
      into.idle += c.idle;
      into.running += c.running;
      into.done += c.done;
    }
  }
  const std::string label = "mode=\"" + mode + "\"";
  std::string out = "# HELP mrkv_mr_jobs Jobs of the job service by state.\n# TYPE mrkv_mr_jobs gauge\n";
  for (const auto& [state, n] : by_state)
    out += "mrkv_mr_jobs{" + label + ",state=\"" + std::string(to_string(state)) + "\"} " + std::to_string(n) + "\n";
  out += "# HELP mrkv_mr_tasks Tasks of the queued and running jobs by kind and state.\n# TYPE mrkv_mr_tasks gauge\n";
  for (int k = 0; k < 2; ++k) {
    const std::string kind = k == 0 ? "map" : "reduce";
    const std::pair<const char*, int> states[] = {{"idle", tasks[k].idle}, {"running", tasks[k].running},
                                                  {"done", tasks[k].done}};
    for (const auto& [state, n] : states)
      out += "mrkv_mr_tasks{" + label + ",kind=\"" + kind + "\",state=\"" + state + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP mrkv_mr_workers_seen Workers that have asked for work since the coordinator started.\n"
         "# TYPE mrkv_mr_workers_seen gauge\n";
  out += "mrkv_mr_workers_seen{" + label + "} " + std::to_string(workers_.size()) + "\n";
  out += "# HELP mrkv_mr_task_duration_seconds Run time of the attempts that finished their tasks.\n"
         "# TYPE mrkv_mr_task_duration_seconds histogram\n";
  std::uint64_t cumulative = 0;
  char line[256];
  for (std::size_t i = 0; i <= duration_bounds.size(); ++i) {
    cumulative += duration_buckets_[i];
    if (i < duration_bounds.size())
      std::snprintf(line, sizeof line, "mrkv_mr_task_duration_seconds_bucket{%s,le=\"%g\"} %llu\n", label.c_str(),
                    duration_bounds[i], static_cast<unsigned long long>(cumulative));
    else
      std::snprintf(line, sizeof line, "mrkv_mr_task_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n", label.c_str(),
                    static_cast<unsigned long long>(cumulative));
    out += line;
  }
  std::snprintf(line, sizeof line,
                "mrkv_mr_task_duration_seconds_sum{%s} %.6f\nmrkv_mr_task_duration_seconds_count{%s} %llu\n",
                label.c_str(), duration_sum_, label.c_str(), static_cast<unsigned long long>(cumulative));
  out += line;
  return out;
}

void job_service::restore() {
  // A job directory whose record can't be read still holds that job's files: its id is never handed
  // out again, so a new job never writes beside an old one's outputs.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(history_.dir("0").parent_path(), ec)) {
    const auto name = entry.path().filename().string();
    std::uint64_t seq = 0;
    auto [end, parse] = std::from_chars(name.data(), name.data() + name.size(), seq);
    if (parse == std::errc{} && end == name.data() + name.size()) next_seq_ = std::max(next_seq_, seq + 1);
  }
  auto records = history_.load_all();
  std::sort(records.begin(), records.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a.value("seq", std::uint64_t{0}) < b.value("seq", std::uint64_t{0});
  });
  for (auto& record : records) {
    auto j = std::make_unique<job>();
    try {
      j->seq = record.at("seq").get<std::uint64_t>();
      j->id = record.at("id").get<std::string>();
      j->spec = decode_job_spec(record.at("spec"), config_.defaults, config_.workdir, false);
      auto state = parse_job_state(record.at("state").get<std::string>());
      if (!state) throw std::runtime_error("unknown state");
      j->state = *state;
      j->submitted = record.value("submitted", "");
      if (record.contains("started") && record["started"].is_string())
        j->started = record["started"].get<std::string>();
      if (record.contains("finished") && record["finished"].is_string())
        j->finished = record["finished"].get<std::string>();
      j->error = record.value("error", "");
    } catch (const std::exception& e) {
      log::warn("coordinator", "skipping a job record that does not read as one: " + std::string(e.what()));
      continue;
    }
    if (j->id != std::to_string(j->seq) || find(j->id)) {
      log::warn("coordinator", "skipping job record " + j->id + ": its id does not match its sequence number");
      continue;
    }
    next_seq_ = std::max(next_seq_, j->seq + 1);
    j->restored = record;
    if (j->state == job_state::queued) {
      // It never started: nothing of it is lost, it runs as if just submitted.
      j->table.emplace(table_for(j->spec, config_), clock::now());
      log::info("coordinator", "job " + j->id + " queued again after the restart");
    } else if (!over(j->state)) {
      const std::string was = std::string(to_string(j->state));
      j->state = job_state::failed;
      j->error = "the coordinator stopped while the job ran (in its " + was + " phase); submit it again";
      j->finished = log::utc_time(std::chrono::system_clock::now());
      remove_task_files(*j, false);
      save(*j);
      log::warn("coordinator", "job " + j->id + " marked failed: " + j->error);
    }
    jobs_.push_back(std::move(j));
  }
  if (!jobs_.empty())
    log::info("coordinator", std::to_string(jobs_.size()) + " job(s) found in " + history_.dir("").string());
}

}  // namespace mrkv::mr
