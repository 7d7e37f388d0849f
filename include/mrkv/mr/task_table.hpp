// This file contains the coordinator's bookkeeping as a pure state machine: which map and reduce
// tasks are idle, running or done, which attempts were handed to which worker, when a running task
// may be handed out again (its worker timed out, or it is a straggler worth a backup copy), and the
// workers seen. No I/O and no clock of its own: every call that depends on time takes `now`, so tests
// drive time by hand and the HTTP layer passes steady_clock::now().
//
// Rules (the lab's plus the paper's backup tasks):
//  - Phases run in order map -> reduce -> done; no reduce task is handed out before every map is done.
//  - assign() hands out, in this order: a task never handed out (lowest index first); a running task
//    whose newest attempt is older than task_timeout (its worker is taken for dead); a backup copy of a
//    straggler (see backup_config). Otherwise nothing: the worker waits.
//  - A task is done at its first completion report, whichever attempt sends it. Later reports for it
//    (the loser of a backup race, a worker that was taken for dead) change nothing.
//  - Without timeouts or stragglers no task is handed out twice, which is what the lab's job-count test
//    checks.
//  - A map whose output was lost with its worker (report_lost_output()) is idle again, and the phase is
//    map until it is done again.
//  - A worker may report an attempt failed (fail()): the task is idle again at once, with that error as
//    its last error. After `max_failed_attempts` attempts of one task *reported* failed the job fails
//    (phase failed) with that task's last error. Attempts that timed out (a worker that died or went
//    silent) never count: the lab's crash test kills workers at random and must still finish. A job of
//    the job service counts them too (timeouts_count_as_failures): there a plugin that crashes its
//    worker every time must fail its job rather than take the pool down forever.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mrkv::mr {

enum class task_kind { map, reduce };
enum class job_phase { map, reduce, done, failed };

std::string_view to_string(task_kind kind) noexcept;
std::string_view to_string(job_phase phase) noexcept;
// "map" or "reduce"; nullopt for anything else.
std::optional<task_kind> parse_task_kind(std::string_view text) noexcept;

using clock = std::chrono::steady_clock;

// Backup tasks (MapReduce paper, section 3.6). When every task of the phase has been handed out and at
// least half of them are done, a worker asking for work is given a copy of the task that has run
// longest, if that task has run more than `factor` times the median duration of the phase's finished
// tasks and at least `min_age`. A task gets at most one backup per attempt it has.
//
// Neither number depends on the task timeout, so a straggler is copied as soon after it stands out
// under a 600 s timeout as under a 10 s one. `factor` is what keeps tasks of ordinary length from
// running twice: the lab's job-count test has maps that vary 2.5-fold (2 to 5 s), and the finished
// ones are the short ones, so the median seen can be 2 s while a 5 s map still runs; three times it is
// above any of them. `min_age` keeps sub-second tasks, whose spread is mostly noise, from being copied.
// test/mr/backup_simulation_test.cpp checks both on thousands of simulated jobs.
struct backup_config {
  bool enabled = true;
  double factor = 3.0;
  clock::duration min_age = std::chrono::seconds(1);
};

struct table_config {
  std::vector<std::string> inputs;  // one map task per input, index = position
  int n_reduce = 10;
  clock::duration task_timeout = std::chrono::seconds(10);
  backup_config backup;
  int max_failed_attempts = 4;  // reported failures of one task that fail the job, as Hadoop's default
  // An attempt that timed out counts as a failed one (see expire_attempts()); off for the lab's jobs.
  bool timeouts_count_as_failures = false;
};

// What a worker is told to do.
struct assignment {
  task_kind kind = task_kind::map;
  int task = 0;         // map task index in [0, n_map) or reduce task index in [0, n_reduce)
  int attempt = 1;      // 1 for the first hand-out of this task, then 2, 3, ...
  bool backup = false;  // a copy of a task that is still running elsewhere
  bool retry = false;   // the previous attempt timed out
  bool after_failure = false;  // the previous attempt was reported failed
  std::string input;    // map tasks: the input path exactly as the coordinator was given it
};

enum class report_outcome {
  completed,       // this report finished the task
  already_done,    // the task was finished earlier by another report: harmless, nothing changes
  unknown_task,    // no such task (index out of range): the HTTP layer answers 404
  never_assigned,  // the task exists but no such attempt was ever handed out: 409
  recorded,        // fail(): the failure is noted and the task will be handed out again
  job_failed,      // fail(): that was the last failure allowed, the job has failed
};

// A task with at least one attempt reported failed, for the job's status.
struct task_error {
  task_kind kind = task_kind::map;
  int task = 0;
  int attempts = 0;         // handed out so far
  int failed_attempts = 0;  // reported failed
  std::string last_error;
};

enum class task_state_kind { idle, running, done };
std::string_view to_string(task_state_kind state) noexcept;

// One task as a status page shows it.
struct task_view {
  task_state_kind state = task_state_kind::idle;
  int attempts = 0;          // handed out so far
  int failed_attempts = 0;   // reported failed (and timed out, with timeouts_count_as_failures)
  std::string worker;        // the winning attempt's worker when done, else the newest attempt's; may be empty
  clock::duration duration{};  // the winning attempt's when done, the newest's so far when running
};

struct phase_counts {
  int idle = 0;     // never handed out, or its every attempt timed out (it will be handed out again)
  int running = 0;  // at least one attempt still within its timeout
  int done = 0;
  int total() const noexcept { return idle + running + done; }
};

struct worker_info {
  std::string id;
  std::string host;
  clock::time_point first_contact;
  clock::time_point last_contact;
  int tasks_assigned = 0;
  int tasks_completed = 0;  // reports that finished a task
  bool told_exit = false;
};

struct table_stats {
  int assignments = 0;    // every hand-out, first attempts included
  int reassignments = 0;  // hand-outs after a timeout
  int backups = 0;        // backup copies handed out
  int late_reports = 0;   // reports for tasks that were already done
};

class task_table {
 public:
  // Throws std::invalid_argument when there are no inputs or n_reduce < 1.
  task_table(table_config config, clock::time_point now);

  // Records that `worker` (on `host`) asked for work, then picks its task as the file comment says.
  // nullopt: nothing to hand out now (wait), or the job is done (check phase()).
  std::optional<assignment> assign(std::string_view worker, std::string_view host, clock::time_point now);

  // A worker reports attempt `attempt` of a task finished. Never throws; see report_outcome. Once the
  // job has failed every report is already_done.
  // `location`: for a map task, the URL of the worker that serves its output (shared-nothing mode, see
  // map_location()); empty when the output is in the shared work directory.
  report_outcome complete(std::string_view worker, task_kind kind, int task, int attempt, clock::time_point now,
                          std::string location = {});

  // A worker reports attempt `attempt` failed with `error`: recorded or job_failed (see the file
  // comment); already_done when the task or the job is over; a second report of the same attempt is
  // recorded again without counting twice.
  // `counted` false: the attempt could not run for a reason that is not the task's (its input, a map's
  // output, could not be fetched): it is handed out again and never fails the job.
  report_outcome fail(std::string_view worker, task_kind kind, int task, int attempt, std::string error,
                      clock::time_point now, bool counted = true);

  // Shared-nothing mode (the MapReduce paper, section 3.3): where each map task's output lives, the URL
  // of the worker that ran its winning attempt, by map index ("" while not done, or when that worker
  // wrote it to the shared directory). Reduce orders carry these.
  std::vector<std::string> map_locations() const;
  // The worker that holds map `task`'s output; empty while it is not done.
  std::string map_holder(int task) const;
  // A reducer (`reporter`) could not fetch map `task`'s output. The output is taken for lost, and the
  // map is run again, when `certain` (its holder has been silent for the task timeout, which the caller
  // judges from its contacts, or answered that the output is missing or damaged) or when two different
  // workers have reported it: one reducer alone may only have a slow link, as Hadoop reasons. Returns
  // true when the map goes back to idle (phase map again until it is done; reduces already done stay
  // done). False: noted, or nothing to do (the map is not done, or the job is over).
  bool report_lost_output(int task, std::string_view reporter, bool certain, clock::time_point now);
  // The same as a reducer's report reaches a coordinator: `gone`, the holder answered that it does not
  // have the output; `holder_silent`, the holder has not been heard from for the task timeout, so it is
  // gone and with it every map output it held, which all go back to idle at once (each would otherwise
  // cost a reducer its whole fetch timeout to find out). Returns the maps run again, in order.
  std::vector<int> report_fetch_failure(int task, std::string_view reporter, bool gone, bool holder_silent,
                                        clock::time_point now);
  // With timeouts_count_as_failures: each task of the current phase whose newest attempt has timed out
  // is counted failed once ("attempt A on worker W did not finish within S s"), as if its worker had
  // reported it; the job fails when that was the last failure allowed. assign() calls it; a caller with
  // no worker asking (every worker dead) calls it from a timer. Returns true when it failed the job.
  // Without the option: does nothing.
  bool expire_attempts(clock::time_point now);
  // Every task of `kind`, by index.
  std::vector<task_view> tasks(task_kind kind, clock::time_point now) const;
  // The tasks with reported failures, map tasks first.
  std::vector<task_error> errors() const;
  // Why the job failed ("map task 3 failed 4 times, last: ..."); empty unless phase() is failed.
  const std::string& failure() const noexcept { return failure_; }
  bool over() const noexcept { return phase_ == job_phase::done || phase_ == job_phase::failed; }

  // Records contact from `worker` without assigning anything (e.g. it was told to exit).
  void note_worker(std::string_view worker, std::string_view host, clock::time_point now);
  void mark_told_exit(std::string_view worker);
  // True once every worker ever seen has been told to exit (vacuously true with none seen).
  bool all_workers_told_exit() const noexcept;

  job_phase phase() const noexcept { return phase_; }
  phase_counts counts(task_kind kind, clock::time_point now) const;
  const std::vector<worker_info>& workers() const noexcept { return workers_; }
  const table_stats& stats() const noexcept { return stats_; }
  int n_map() const noexcept { return static_cast<int>(map_tasks_.size()); }
  int n_reduce() const noexcept { return static_cast<int>(reduce_tasks_.size()); }
  clock::time_point started() const noexcept { return started_; }
  // When the job became done or failed; nullopt while it runs.
  std::optional<clock::time_point> finished() const noexcept { return finished_; }

  // The earliest moment after `now` at which assign() could hand out something it can't hand out now
  // (a running task times out or becomes a backup candidate) without any report arriving. nullopt when
  // only a report can change that. A waiting worker sleeps until then at the latest.
  std::optional<clock::time_point> next_change(clock::time_point now) const;

 private:
  struct attempt_record {
    std::string worker;
    clock::time_point started;
    bool failed = false;  // reported failed
  };
  struct task_state {
    std::vector<attempt_record> attempts;  // attempts[i] is attempt number i + 1
    bool done = false;
    bool backed_up = false;  // the newest attempt already has a backup copy
    int failures = 0;
    std::string last_error;
    int winner = 0;            // the attempt whose report finished the task (1-based); 0 while not done
    clock::duration took{};    // how long that attempt ran
    std::string location;      // map tasks: the winning attempt's output server, "" for the shared directory
    std::vector<std::string> lost_reports;  // workers that could not fetch that output
  };

  std::vector<task_state>& tasks_of(task_kind kind) noexcept;
  const std::vector<task_state>& tasks_of(task_kind kind) const noexcept;
  task_kind current_kind() const noexcept;
  bool timed_out(const task_state& t, clock::time_point now) const noexcept;
  bool live(const task_state& t, clock::time_point now) const noexcept;
  // The age a running task must pass to be backed up now; nullopt when backups are not due in this
  // phase (disabled, tasks still unassigned, less than half done).
  std::optional<clock::duration> backup_age(clock::time_point now) const;
  worker_info& worker(std::string_view id, std::string_view host, clock::time_point now);
  assignment hand_out(task_kind kind, int index, std::string_view worker, clock::time_point now);
  // Counts one more failure of `t` and fails the job when that was the last one allowed.
  bool count_failure(task_kind kind, int index, task_state& t);

  table_config config_;
  std::vector<task_state> map_tasks_;
  std::vector<task_state> reduce_tasks_;
  std::vector<clock::duration> map_durations_;     // of the winning attempt of each finished map
  std::vector<clock::duration> reduce_durations_;  // likewise for reduces
  std::vector<worker_info> workers_;
  job_phase phase_ = job_phase::map;
  int maps_done_ = 0;
  int reduces_done_ = 0;
  table_stats stats_;
  clock::time_point started_;
  std::optional<clock::time_point> finished_;
  std::string failure_;
};

// "map task 3: its output on worker W is taken for lost (why): running it again", for the log, from
// what report_fetch_failure() returned and why.
std::string describe_lost_outputs(const std::vector<int>& maps, std::string_view holder, bool gone, bool holder_silent);

}  // namespace mrkv::mr
