// The backup-task rule (task_table.hpp, backup_config) on a simulated clock: thousands of random jobs
// run through a real task_table by simulated workers, so both halves of the rule are checked on far more
// schedules than process-level tests could try. Ordinary jobs shaped like the lab's job-count test must
// never get a backup copy (that test counts map executions); a job with one straggler must get one
// soon after the straggler stands out, whatever the task timeout.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "mrkv/mr/task_table.hpp"

using namespace std::chrono_literals;
using mrkv::mr::assignment;
using mrkv::mr::backup_config;
using sim_clock = mrkv::mr::clock;  // the table's clock, driven by hand here
using mrkv::mr::table_config;
using mrkv::mr::task_kind;
using mrkv::mr::task_table;

namespace {

using seconds_d = std::chrono::duration<double>;

struct job_shape {
  std::vector<sim_clock::duration> maps;     // how long each map takes on an ordinary attempt
  std::vector<sim_clock::duration> reduces;  // the same for reduce tasks
  int workers = 4;
  sim_clock::duration task_timeout = 10s;
  int straggler = -1;  // a map whose first attempt takes `slowdown` times as long (a sick machine)
  double slowdown = 10;
  backup_config backup;
};

struct job_run {
  int map_runs = 0;
  int reduce_runs = 0;
  int backups = 0;
  int reassignments = 0;
  std::optional<sim_clock::time_point> straggler_started, straggler_backed_up, straggler_finished;
  sim_clock::time_point finished{};
  bool finished_in_time = false;
};

sim_clock::duration uniform(std::mt19937& rng, double low_s, double high_s) {
  return std::chrono::duration_cast<sim_clock::duration>(seconds_d(std::uniform_real_distribution<double>(low_s, high_s)(rng)));
}

// Workers ask for work whenever they are idle, at every event, as the coordinator wakes long-polling
// workers when a report or the table's next_change() makes work appear; a busy worker reports its
// task when its duration has passed.
job_run simulate(const job_shape& shape) {
  const sim_clock::time_point t0{};
  table_config config;
  for (std::size_t i = 0; i < shape.maps.size(); ++i) config.inputs.push_back("in-" + std::to_string(i));
  config.n_reduce = static_cast<int>(shape.reduces.size());
  config.task_timeout = shape.task_timeout;
  config.backup = shape.backup;
  task_table table(config, t0);

  struct worker {
    std::string id;
    std::optional<assignment> task;
    sim_clock::time_point done_at{};
  };
  std::vector<worker> workers;
  for (int i = 0; i < shape.workers; ++i) workers.push_back({"w" + std::to_string(i), std::nullopt, {}});

  job_run run;
  auto now = t0;
  for (int step = 0; step < 100000 && !table.over(); ++step) {
    for (auto& w : workers) {
      if (w.task) continue;
      w.task = table.assign(w.id, "h", now);
      if (!w.task) continue;
      const auto& a = *w.task;
      auto took = a.kind == task_kind::map ? shape.maps[static_cast<std::size_t>(a.task)]
                                           : shape.reduces[static_cast<std::size_t>(a.task)];
      if (a.kind == task_kind::map) {
        ++run.map_runs;
        if (a.task == shape.straggler && a.attempt == 1) {
          took = std::chrono::duration_cast<sim_clock::duration>(took * shape.slowdown);
          run.straggler_started = now;
        }
        if (a.task == shape.straggler && a.backup && !run.straggler_backed_up) run.straggler_backed_up = now;
      } else {
        ++run.reduce_runs;
      }
      w.done_at = now + took;
    }
    std::optional<sim_clock::time_point> next = table.next_change(now);
    for (const auto& w : workers)
      if (w.task && (!next || w.done_at < *next)) next = w.done_at;
    if (!next) break;
    now = std::max(now, *next);
    for (auto& w : workers) {
      if (!w.task || w.done_at > now) continue;
      if (w.task->kind == task_kind::map && w.task->task == shape.straggler && w.task->attempt == 1)
        run.straggler_finished = now;
      table.complete(w.id, w.task->kind, w.task->task, w.task->attempt, now);
      w.task.reset();
    }
  }
  run.backups = table.stats().backups;
  run.reassignments = table.stats().reassignments;
  run.finished = now;
  run.finished_in_time = table.phase() == mrkv::mr::job_phase::done;
  return run;
}

// The lab's job-count test: 8 maps of 2 to 5 s each, quick reduces, 4 workers, a 10 s task timeout.
job_shape lab_job_count_shape(std::mt19937& rng, int workers = 4) {
  job_shape shape;
  for (int i = 0; i < 8; ++i) shape.maps.push_back(uniform(rng, 2, 5));
  for (int i = 0; i < 10; ++i) shape.reduces.push_back(uniform(rng, 0.005, 0.05));
  shape.workers = workers;
  return shape;
}

// When the straggler stands out, by the simulation's own knowledge (the table sees only finished tasks):
// once it has run three times the median of what its siblings take, and at least a second.
sim_clock::duration stands_out_after(const job_shape& shape) {
  std::vector<sim_clock::duration> siblings;
  for (std::size_t i = 0; i < shape.maps.size(); ++i)
    if (static_cast<int>(i) != shape.straggler) siblings.push_back(shape.maps[i]);
  std::sort(siblings.begin(), siblings.end());
  const auto median = siblings[siblings.size() / 2];
  return std::max<sim_clock::duration>(median * 3, 1s);
}

struct lag_figures {
  double worst = 0, total = 0;
  int jobs = 0, late = 0;
  int unneeded = 0;  // the slow attempt ended before it stood out: nothing to measure
};

// Jobs of 8 maps with one straggler, under `timeout`; returns how long after standing out each got its backup.
lag_figures straggler_lags(std::mt19937& rng, double low_s, double high_s, sim_clock::duration timeout,
                           const backup_config& rule, int jobs) {
  lag_figures figures;
  for (int j = 0; j < jobs; ++j) {
    job_shape shape;
    for (int i = 0; i < 8; ++i) shape.maps.push_back(uniform(rng, low_s, high_s));
    for (int i = 0; i < 4; ++i) shape.reduces.push_back(uniform(rng, 0.005, 0.05));
    shape.workers = 4;
    shape.task_timeout = timeout;
    shape.straggler = std::uniform_int_distribution<int>(0, 7)(rng);
    shape.backup = rule;
    const auto run = simulate(shape);
    REQUIRE(run.finished_in_time);
    REQUIRE(run.straggler_started);
    const auto stood_out = *run.straggler_started + stands_out_after(shape);
    if (!run.straggler_backed_up && run.straggler_finished && *run.straggler_finished <= stood_out) {
      ++figures.unneeded;
      continue;
    }
    // Without a backup the straggler's own attempt (or its timeout) ends it: the lag is that long.
    const auto copied = run.straggler_backed_up.value_or(run.straggler_finished.value_or(run.finished));
    const double lag = seconds_d(copied - stood_out).count();
    figures.worst = std::max(figures.worst, lag);
    figures.total += lag;
    figures.late += lag > 2.0;
    ++figures.jobs;
  }
  return figures;
}

std::string describe(const char* what, const lag_figures& f) {
  char line[200];
  std::snprintf(line, sizeof line,
                "%s: %d stragglers, backed up %.2f s after standing out on average, %.2f s at worst, %d over 2 s "
                "(%d more ended before standing out)",
                what, f.jobs, f.jobs ? f.total / f.jobs : 0.0, f.worst, f.late, f.unneeded);
  return line;
}

}  // namespace

TEST_SUITE("mr backup simulation") {

TEST_CASE("backup simulation: 5,000 jobs shaped like the lab's job-count test never run a task twice") {
  std::mt19937 rng(1);
  int jobs = 0;
  for (int j = 0; j < 5000; ++j, ++jobs) {
    // Most with the lab's 4 workers, some with 1 to 8: the rule must not depend on how waves line up.
    const int workers = j % 5 == 0 ? 1 + j / 5 % 8 : 4;
    const auto run = simulate(lab_job_count_shape(rng, workers));
    REQUIRE(run.finished_in_time);
    CHECK(run.map_runs == 8);
    CHECK(run.backups == 0);
    CHECK(run.reassignments == 0);
    if (run.backups != 0) break;
  }
  MESSAGE(jobs << " job-count-shaped jobs, no backup copies");
}

TEST_CASE("backup simulation: a straggler is copied within 2 s of standing out under 10, 60 and 600 s task timeouts") {
  std::mt19937 rng(2);
  const backup_config rule;  // the default rule, as the coordinator uses it
  for (const auto timeout : {10s, 60s, 600s}) {
    CAPTURE(timeout.count());
    // Sub-second tasks: the straggler (10x, up to 8 s) stays inside even the 10 s timeout.
    const auto quick = straggler_lags(rng, 0.2, 0.8, timeout, rule, 1000);
    MESSAGE(describe(("tasks of 0.2-0.8 s, timeout " + std::to_string(timeout.count()) + " s").c_str(), quick));
    CHECK(quick.late == 0);
    CHECK(quick.jobs > 800);
    if (timeout > 10s) {
      // The lab's 2-5 s maps: a 10x straggler (20-50 s) would time out under 10 s before it stands out.
      const auto lab = straggler_lags(rng, 2, 5, timeout, rule, 1000);
      MESSAGE(describe(("tasks of 2-5 s, timeout " + std::to_string(timeout.count()) + " s").c_str(), lab));
      CHECK(lab.late == 0);
      CHECK(lab.jobs > 800);
    }
  }
}

TEST_CASE("backup simulation: the old rule (backups after 60% of the task timeout) comes too late under long timeouts") {
  // The comparison that motivated the rule, kept so the simulation shows it can tell the two apart.
  std::mt19937 rng(3);
  backup_config old_rule;
  old_rule.factor = 2.0;
  old_rule.min_age = 36s;  // 60% of a 60 s timeout
  const auto figures = straggler_lags(rng, 2, 5, 60s, old_rule, 200);
  MESSAGE(describe("old rule, tasks of 2-5 s, timeout 60 s", figures));
  CHECK(figures.jobs > 150);
  CHECK(figures.late == figures.jobs);
}

}  // TEST_SUITE
