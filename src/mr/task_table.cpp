#include "mrkv/mr/task_table.hpp"

#include "mrkv/common/log.hpp"

#include <algorithm>
#include <stdexcept>

namespace mrkv::mr {

std::string_view to_string(task_kind kind) noexcept { return kind == task_kind::map ? "map" : "reduce"; }

std::string_view to_string(job_phase phase) noexcept {
  switch (phase) {
    case job_phase::map: return "map";
    case job_phase::reduce: return "reduce";
    case job_phase::done: return "done";
    case job_phase::failed: return "failed";
    default: return "unknown";
  }
}

std::string_view to_string(task_state_kind state) noexcept {
  switch (state) {
    case task_state_kind::idle: return "idle";
    case task_state_kind::running: return "running";
    case task_state_kind::done: return "done";
    default: return "unknown";
  }
}

std::optional<task_kind> parse_task_kind(std::string_view text) noexcept {
  if (text == "map") return task_kind::map;
  if (text == "reduce") return task_kind::reduce;
  return std::nullopt;
}

namespace {

clock::duration median(std::vector<clock::duration> values) {
  const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  if (values.size() % 2 == 1) return *middle;
  const auto lower = *std::max_element(values.begin(), middle);
  return lower + (*middle - lower) / 2;
}

}  // namespace

task_table::task_table(table_config config, clock::time_point now) : config_(std::move(config)), started_(now) {
  if (config_.inputs.empty()) throw std::invalid_argument("a job needs at least one input");
  if (config_.n_reduce < 1) throw std::invalid_argument("a job needs at least one reduce task");
  if (config_.task_timeout <= clock::duration::zero()) throw std::invalid_argument("the task timeout must be positive");
  map_tasks_.resize(config_.inputs.size());
  reduce_tasks_.resize(static_cast<std::size_t>(config_.n_reduce));
}

std::vector<task_table::task_state>& task_table::tasks_of(task_kind kind) noexcept {
  return kind == task_kind::map ? map_tasks_ : reduce_tasks_;
}

const std::vector<task_table::task_state>& task_table::tasks_of(task_kind kind) const noexcept {
  return kind == task_kind::map ? map_tasks_ : reduce_tasks_;
}

task_kind task_table::current_kind() const noexcept {
  return phase_ == job_phase::map ? task_kind::map : task_kind::reduce;
}

// "Timed out" is the newest attempt being given up on: past its timeout, or reported failed.
bool task_table::timed_out(const task_state& t, clock::time_point now) const noexcept {
  return !t.done && !t.attempts.empty() &&
         (t.attempts.back().failed || now - t.attempts.back().started >= config_.task_timeout);
}

bool task_table::live(const task_state& t, clock::time_point now) const noexcept {
  return !t.done && !t.attempts.empty() && !t.attempts.back().failed &&
         now - t.attempts.back().started < config_.task_timeout;
}

std::optional<clock::duration> task_table::backup_age(clock::time_point now) const {
  if (!config_.backup.enabled || over()) return std::nullopt;
  const auto kind = current_kind();
  const auto& tasks = tasks_of(kind);
  const auto& durations = kind == task_kind::map ? map_durations_ : reduce_durations_;
  // "Close to completion": everything handed out and at least half finished. Before that an idle
  // worker has ordinary work coming, and the median of a handful of tasks says little.
  for (const auto& t : tasks)
    if (t.attempts.empty() || timed_out(t, now)) return std::nullopt;
  if (durations.empty() || durations.size() * 2 < tasks.size()) return std::nullopt;
  const auto relative = std::chrono::duration_cast<clock::duration>(median(durations) * config_.backup.factor);
  return std::max(relative, config_.backup.min_age);
}

worker_info& task_table::worker(std::string_view id, std::string_view host, clock::time_point now) {
  auto it = std::find_if(workers_.begin(), workers_.end(), [&](const worker_info& w) { return w.id == id; });
  if (it == workers_.end()) {
    workers_.push_back(worker_info{std::string(id), std::string(host), now, now});
    return workers_.back();
  }
  it->last_contact = now;
  if (!host.empty()) it->host = std::string(host);
  return *it;
}

void task_table::note_worker(std::string_view id, std::string_view host, clock::time_point now) {
  worker(id, host, now);
}

void task_table::mark_told_exit(std::string_view id) {
  for (auto& w : workers_)
    if (w.id == id) w.told_exit = true;
}

bool task_table::all_workers_told_exit() const noexcept {
  return std::all_of(workers_.begin(), workers_.end(), [](const worker_info& w) { return w.told_exit; });
}

assignment task_table::hand_out(task_kind kind, int index, std::string_view worker_id, clock::time_point now) {
  auto& t = tasks_of(kind)[static_cast<std::size_t>(index)];
  assignment a;
  a.kind = kind;
  a.task = index;
  a.after_failure = !t.attempts.empty() && t.attempts.back().failed;
  a.retry = timed_out(t, now) && !a.after_failure;
  a.backup = live(t, now);
  if (a.backup) {
    t.backed_up = true;
    ++stats_.backups;
  } else {
    t.backed_up = false;  // a fresh attempt may be backed up in its turn
    if (a.retry) ++stats_.reassignments;
  }
  t.attempts.push_back(attempt_record{std::string(worker_id), now});
  a.attempt = static_cast<int>(t.attempts.size());
  if (kind == task_kind::map) a.input = config_.inputs[static_cast<std::size_t>(index)];
  ++stats_.assignments;
  return a;
}

std::optional<assignment> task_table::assign(std::string_view worker_id, std::string_view host,
                                             clock::time_point now) {
  auto& w = worker(worker_id, host, now);
  expire_attempts(now);
  if (over()) return std::nullopt;
  const auto kind = current_kind();
  const auto& tasks = tasks_of(kind);
  const int n = static_cast<int>(tasks.size());

  std::optional<assignment> picked;
  for (int i = 0; i < n && !picked; ++i)
    if (tasks[static_cast<std::size_t>(i)].attempts.empty()) picked = hand_out(kind, i, worker_id, now);

  if (!picked) {
    // A task given up on: failed ones first (nothing runs them), then the one whose worker went quiet first.
    int oldest = -1;
    for (int i = 0; i < n && oldest < 0; ++i) {
      const auto& t = tasks[static_cast<std::size_t>(i)];
      if (!t.done && !t.attempts.empty() && t.attempts.back().failed) oldest = i;
    }
    const bool failed_first = oldest >= 0;
    for (int i = 0; i < n && !failed_first; ++i) {
      const auto& t = tasks[static_cast<std::size_t>(i)];
      if (timed_out(t, now) &&
          (oldest < 0 || t.attempts.back().started < tasks[static_cast<std::size_t>(oldest)].attempts.back().started))
        oldest = i;
    }
    if (oldest >= 0) picked = hand_out(kind, oldest, worker_id, now);
  }

  if (!picked) {
    if (auto threshold = backup_age(now)) {
      int longest = -1;
      for (int i = 0; i < n; ++i) {
        const auto& t = tasks[static_cast<std::size_t>(i)];
        // A worker asking for work has given up whatever it held, so copying its own task to it is no backup.
        if (!live(t, now) || t.backed_up || t.attempts.back().worker == worker_id) continue;
        if (now - t.attempts.back().started <= *threshold) continue;
        if (longest < 0 || t.attempts.back().started < tasks[static_cast<std::size_t>(longest)].attempts.back().started)
          longest = i;
      }
      if (longest >= 0) picked = hand_out(kind, longest, worker_id, now);
    }
  }

  if (picked) ++w.tasks_assigned;
  return picked;
}

report_outcome task_table::complete(std::string_view worker_id, task_kind kind, int task, int attempt,
                                    clock::time_point now, std::string location) {
  auto& tasks = tasks_of(kind);
  if (task < 0 || task >= static_cast<int>(tasks.size())) return report_outcome::unknown_task;
  auto& t = tasks[static_cast<std::size_t>(task)];
  if (attempt < 1 || attempt > static_cast<int>(t.attempts.size())) return report_outcome::never_assigned;
  auto& w = worker(worker_id, "", now);
  if (t.done || phase_ == job_phase::failed) {
    ++stats_.late_reports;
    return report_outcome::already_done;
  }
  t.done = true;
  ++w.tasks_completed;
  const auto ran = now - t.attempts[static_cast<std::size_t>(attempt - 1)].started;
  t.winner = attempt;
  t.took = ran;
  t.location = std::move(location);
  t.lost_reports.clear();
  if (kind == task_kind::map) {
    map_durations_.push_back(ran);
    if (++maps_done_ == n_map() && phase_ == job_phase::map) phase_ = job_phase::reduce;
  } else {
    reduce_durations_.push_back(ran);
    if (++reduces_done_ == n_reduce()) {
      phase_ = job_phase::done;
      finished_ = now;
    }
  }
  return report_outcome::completed;
}

report_outcome task_table::fail(std::string_view worker_id, task_kind kind, int task, int attempt, std::string error,
                                clock::time_point now, bool counted) {
  auto& tasks = tasks_of(kind);
  if (task < 0 || task >= static_cast<int>(tasks.size())) return report_outcome::unknown_task;
  auto& t = tasks[static_cast<std::size_t>(task)];
  if (attempt < 1 || attempt > static_cast<int>(t.attempts.size())) return report_outcome::never_assigned;
  worker(worker_id, "", now);
  if (t.done || over()) return report_outcome::already_done;
  auto& record = t.attempts[static_cast<std::size_t>(attempt - 1)];
  t.last_error = std::move(error);
  if (!record.failed) {
    record.failed = true;
    if (counted) ++t.failures;
  }
  if (counted && count_failure(kind, task, t)) {
    finished_ = now;
    return report_outcome::job_failed;
  }
  return report_outcome::recorded;
}

std::vector<std::string> task_table::map_locations() const {
  std::vector<std::string> out;
  out.reserve(map_tasks_.size());
  for (const auto& t : map_tasks_) out.push_back(t.done ? t.location : std::string());
  return out;
}

std::string task_table::map_holder(int task) const {
  if (task < 0 || task >= n_map()) return {};
  const auto& t = map_tasks_[static_cast<std::size_t>(task)];
  return t.done ? t.attempts[static_cast<std::size_t>(t.winner - 1)].worker : std::string();
}

bool task_table::report_lost_output(int task, std::string_view reporter, bool certain, clock::time_point now) {
  if (task < 0 || task >= n_map() || over()) return false;
  auto& t = map_tasks_[static_cast<std::size_t>(task)];
  if (!t.done) return false;
  worker(reporter, "", now);
  if (std::find(t.lost_reports.begin(), t.lost_reports.end(), reporter) == t.lost_reports.end())
    t.lost_reports.emplace_back(reporter);
  if (!certain && t.lost_reports.size() < 2) return false;
  t.done = false;
  t.winner = 0;
  t.location.clear();
  t.lost_reports.clear();
  // Marked like a failed attempt, so that assign() hands it out at once, but not counted as one: the
  // map did nothing wrong.
  t.attempts.back().failed = true;
  t.backed_up = false;
  t.last_error = "its output was lost with its worker";
  --maps_done_;
  if (phase_ == job_phase::reduce) phase_ = job_phase::map;
  return true;
}

std::vector<int> task_table::report_fetch_failure(int task, std::string_view reporter, bool gone, bool holder_silent,
                                                  clock::time_point now) {
  std::vector<int> rerun;
  if (!holder_silent) {
    if (report_lost_output(task, reporter, gone, now)) rerun.push_back(task);
    return rerun;
  }
  const auto holder = map_holder(task);
  if (holder.empty()) return rerun;
  for (int m = 0; m < n_map(); ++m)
    if (map_holder(m) == holder && report_lost_output(m, reporter, true, now)) rerun.push_back(m);
  return rerun;
}

std::string describe_lost_outputs(const std::vector<int>& maps, std::string_view holder, bool gone, bool holder_silent) {
  std::string text = maps.size() == 1 ? "map task " : "map tasks ";
  for (std::size_t i = 0; i < maps.size(); ++i) text += (i ? ", " : "") + std::to_string(maps[i]);
  text += maps.size() == 1 ? ": its output on worker " : ": their outputs on worker ";
  text += holder;
  text += maps.size() == 1 ? " is taken for lost (" : " are taken for lost (";
  text += gone ? "its worker does not have it" : holder_silent ? "the worker is silent" : "two reducers failed";
  text += maps.size() == 1 ? "): running it again" : "): running them again";
  return text;
}

bool task_table::count_failure(task_kind kind, int index, task_state& t) {
  if (config_.max_failed_attempts <= 0 || t.failures < config_.max_failed_attempts) return false;
  phase_ = job_phase::failed;
  failure_ = std::string(to_string(kind)) + " task " + std::to_string(index) + " failed " +
             std::to_string(t.failures) + " times; last error: " + t.last_error;
  return true;
}

bool task_table::expire_attempts(clock::time_point now) {
  if (!config_.timeouts_count_as_failures || over()) return false;
  const auto kind = current_kind();
  auto& tasks = tasks_of(kind);
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    auto& t = tasks[i];
    if (!timed_out(t, now) || t.attempts.back().failed) continue;
    auto& record = t.attempts.back();
    record.failed = true;
    ++t.failures;
    t.last_error = "attempt " + std::to_string(t.attempts.size()) + " on worker " + record.worker +
                   " did not finish within " + log::duration(config_.task_timeout) +
                   " (the worker died or went silent)";
    if (count_failure(kind, static_cast<int>(i), t)) {
      finished_ = now;
      return true;
    }
  }
  return false;
}

std::vector<task_view> task_table::tasks(task_kind kind, clock::time_point now) const {
  std::vector<task_view> out;
  for (const auto& t : tasks_of(kind)) {
    task_view v;
    v.attempts = static_cast<int>(t.attempts.size());
    v.failed_attempts = t.failures;
    if (t.done) {
      v.state = task_state_kind::done;
      v.worker = t.attempts[static_cast<std::size_t>(t.winner - 1)].worker;
      v.duration = t.took;
    } else if (!t.attempts.empty()) {
      v.state = live(t, now) ? task_state_kind::running : task_state_kind::idle;
      v.worker = t.attempts.back().worker;
      if (v.state == task_state_kind::running) v.duration = now - t.attempts.back().started;
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<task_error> task_table::errors() const {
  std::vector<task_error> out;
  for (auto kind : {task_kind::map, task_kind::reduce}) {
    const auto& tasks = tasks_of(kind);
    for (std::size_t i = 0; i < tasks.size(); ++i)
      if (tasks[i].failures > 0)
        out.push_back({kind, static_cast<int>(i), static_cast<int>(tasks[i].attempts.size()), tasks[i].failures,
                       tasks[i].last_error});
  }
  return out;
}

phase_counts task_table::counts(task_kind kind, clock::time_point now) const {
  phase_counts c;
  for (const auto& t : tasks_of(kind)) {
    if (t.done)
      ++c.done;
    else if (live(t, now))
      ++c.running;
    else
      ++c.idle;
  }
  return c;
}

std::optional<clock::time_point> task_table::next_change(clock::time_point now) const {
  if (over()) return std::nullopt;
  std::optional<clock::time_point> earliest;
  auto consider = [&](clock::time_point when) {
    if (when > now && (!earliest || when < *earliest)) earliest = when;
  };
  const auto threshold = backup_age(now);
  for (const auto& t : tasks_of(current_kind())) {
    if (!live(t, now)) continue;
    consider(t.attempts.back().started + config_.task_timeout);
    // +1 tick: assign() wants the age strictly past the threshold.
    if (threshold && !t.backed_up) consider(t.attempts.back().started + *threshold + clock::duration(1));
  }
  return earliest;
}

}  // namespace mrkv::mr
