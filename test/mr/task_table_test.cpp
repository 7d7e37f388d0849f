// The coordinator's task table, driven sans I/O with a hand-held clock.
#include "mrkv/mr/task_table.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>

namespace {

using namespace mrkv::mr;
using namespace std::chrono_literals;

constexpr auto timeout = 10s;

table_config job(int n_map, int n_reduce, bool backups = true) {
  table_config c;
  for (int i = 0; i < n_map; ++i) c.inputs.push_back("in-" + std::to_string(i));
  c.n_reduce = n_reduce;
  c.task_timeout = timeout;
  c.backup.enabled = backups;
  c.backup.min_age = timeout * 6 / 10;
  return c;
}

const clock::time_point t0{};

// Not `worker_name(i)`: GCC 12 at -O3 warns about that (-Wrestrict, bug 105651).
std::string worker_name(int i) {
  std::string name = "w";
  name += std::to_string(i);
  return name;
}

// Hands out and completes whatever is left of the current phase.
void finish_phase(task_table& table, task_kind kind, clock::time_point now) {
  while (auto a = table.assign("w", "h", now)) {
    REQUIRE(a->kind == kind);
    REQUIRE(table.complete("w", kind, a->task, a->attempt, now) == report_outcome::completed);
  }
}

}  // namespace

TEST_SUITE("mr_coordinator") {

TEST_CASE("task table: maps in order - then reduces - then done") {
  task_table table(job(3, 2), t0);
  CHECK(table.phase() == job_phase::map);
  for (int i = 0; i < 3; ++i) {
    auto a = table.assign("w1", "h1", t0);
    REQUIRE(a);
    CHECK(a->kind == task_kind::map);
    CHECK(a->task == i);
    CHECK(a->attempt == 1);
    CHECK(a->input == "in-" + std::to_string(i));
    CHECK_FALSE(a->backup);
    CHECK_FALSE(a->retry);
  }
  // Every map handed out and running: no reduce before the maps are done.
  CHECK_FALSE(table.assign("w2", "h2", t0 + 1s));
  CHECK(table.counts(task_kind::map, t0 + 1s).running == 3);
  CHECK(table.complete("w1", task_kind::map, 0, 1, t0 + 2s) == report_outcome::completed);
  CHECK(table.complete("w1", task_kind::map, 1, 1, t0 + 2s) == report_outcome::completed);
  CHECK(table.phase() == job_phase::map);
  CHECK(table.complete("w1", task_kind::map, 2, 1, t0 + 2s) == report_outcome::completed);
  CHECK(table.phase() == job_phase::reduce);
  auto r = table.assign("w2", "h2", t0 + 3s);
  REQUIRE(r);
  CHECK(r->kind == task_kind::reduce);
  CHECK(r->task == 0);
  CHECK(table.complete("w2", task_kind::reduce, 0, 1, t0 + 4s) == report_outcome::completed);
  finish_phase(table, task_kind::reduce, t0 + 5s);
  CHECK(table.phase() == job_phase::done);
  CHECK(table.finished() == t0 + 5s);
  CHECK_FALSE(table.assign("w1", "h1", t0 + 6s));
  const auto m = table.counts(task_kind::map, t0 + 6s);
  const auto rc = table.counts(task_kind::reduce, t0 + 6s);
  CHECK(m.done == 3);
  CHECK(rc.done == 2);
  CHECK(table.stats().assignments == 5);
}

TEST_CASE("task table: a task whose worker went quiet is handed out again after the timeout - first report wins") {
  task_table table(job(1, 1), t0);
  auto first = table.assign("w1", "h", t0);
  REQUIRE(first);
  CHECK_FALSE(table.assign("w2", "h", t0 + timeout - 1ms));
  CHECK(table.next_change(t0 + 1s) == t0 + timeout);
  CHECK(table.counts(task_kind::map, t0 + timeout).idle == 1);  // taken for dead: idle again
  auto second = table.assign("w2", "h", t0 + timeout);
  REQUIRE(second);
  CHECK(second->task == 0);
  CHECK(second->attempt == 2);
  CHECK(second->retry);
  CHECK_FALSE(second->backup);
  CHECK(table.stats().reassignments == 1);
  // The original worker was only slow: its late report finishes the task, the retry's changes nothing.
  CHECK(table.complete("w1", task_kind::map, 0, 1, t0 + timeout + 1s) == report_outcome::completed);
  CHECK(table.phase() == job_phase::reduce);
  CHECK(table.complete("w2", task_kind::map, 0, 2, t0 + timeout + 2s) == report_outcome::already_done);
  CHECK(table.phase() == job_phase::reduce);
  CHECK(table.stats().late_reports == 1);
  CHECK(table.counts(task_kind::map, t0 + timeout + 2s).done == 1);
}

TEST_CASE("task table: a task that timed out goes out before nothing - oldest first") {
  task_table table(job(3, 1, false), t0);
  REQUIRE(table.assign("a", "h", t0));       // map 0
  REQUIRE(table.assign("b", "h", t0 + 1s));  // map 1
  REQUIRE(table.assign("c", "h", t0 + 2s));  // map 2
  auto again = table.assign("d", "h", t0 + timeout + 5s);
  REQUIRE(again);
  CHECK(again->task == 0);
  again = table.assign("e", "h", t0 + timeout + 5s);
  REQUIRE(again);
  CHECK(again->task == 1);
}

TEST_CASE("task table: bad reports are refused and change nothing") {
  task_table table(job(2, 2), t0);
  REQUIRE(table.assign("w", "h", t0));  // map 0, attempt 1
  const auto before_map = table.counts(task_kind::map, t0 + 1s);
  const auto before_reduce = table.counts(task_kind::reduce, t0 + 1s);
  CHECK(table.complete("w", task_kind::map, 2, 1, t0 + 1s) == report_outcome::unknown_task);
  CHECK(table.complete("w", task_kind::map, -1, 1, t0 + 1s) == report_outcome::unknown_task);
  CHECK(table.complete("w", task_kind::reduce, 7, 1, t0 + 1s) == report_outcome::unknown_task);
  CHECK(table.complete("w", task_kind::map, 1, 1, t0 + 1s) == report_outcome::never_assigned);  // never handed out
  CHECK(table.complete("w", task_kind::map, 0, 2, t0 + 1s) == report_outcome::never_assigned);  // no attempt 2
  CHECK(table.complete("w", task_kind::map, 0, 0, t0 + 1s) == report_outcome::never_assigned);
  CHECK(table.complete("w", task_kind::reduce, 0, 1, t0 + 1s) == report_outcome::never_assigned);
  const auto after_map = table.counts(task_kind::map, t0 + 1s);
  const auto after_reduce = table.counts(task_kind::reduce, t0 + 1s);
  CHECK(after_map.running == before_map.running);
  CHECK(after_map.idle == before_map.idle);
  CHECK(after_map.done == 0);
  CHECK(after_reduce.idle == before_reduce.idle);
  CHECK(table.phase() == job_phase::map);
  CHECK(table.workers().size() == 1);  // refused reports don't invent workers
}

TEST_CASE("task table: a straggler gets one backup copy near the end of its phase") {
  task_table table(job(4, 1), t0);
  auto slow = table.assign("slow", "h", t0);  // map 0
  REQUIRE(slow);
  // The other maps take 1 s each.
  for (int i = 1; i < 4; ++i) {
    auto a = table.assign("fast", "h", t0 + std::chrono::seconds(i - 1));
    REQUIRE(a);
    CHECK(table.complete("fast", task_kind::map, a->task, a->attempt, t0 + std::chrono::seconds(i)) ==
          report_outcome::completed);
  }
  // Median 1 s, so three times that is 3 s; but nothing is backed up before min_age (6 s).
  CHECK_FALSE(table.assign("fast", "h", t0 + 5s));
  CHECK(table.next_change(t0 + 5s) == t0 + 6s + clock::duration(1));
  CHECK_FALSE(table.assign("fast", "h", t0 + 6s));
  auto backup = table.assign("fast", "h", t0 + 6s + 1ms);
  REQUIRE(backup);
  CHECK(backup->task == 0);
  CHECK(backup->attempt == 2);
  CHECK(backup->backup);
  CHECK_FALSE(backup->retry);
  CHECK(table.stats().backups == 1);
  CHECK(table.counts(task_kind::map, t0 + 7s).running == 1);
  // One copy is enough.
  CHECK_FALSE(table.assign("third", "h", t0 + 7s));
  // The backup finishes first; the straggler's report changes nothing.
  CHECK(table.complete("fast", task_kind::map, 0, 2, t0 + 7s) == report_outcome::completed);
  CHECK(table.phase() == job_phase::reduce);
  CHECK(table.complete("slow", task_kind::map, 0, 1, t0 + 9s) == report_outcome::already_done);
}

TEST_CASE("task table: backups use three times the median when that is above min_age") {
  auto c = job(4, 1);
  c.backup.min_age = 1s;
  task_table table(c, t0);
  REQUIRE(table.assign("slow", "h", t0));
  for (int i = 1; i < 4; ++i) {
    auto a = table.assign("fast", "h", t0);
    REQUIRE(a);
    REQUIRE(table.complete("fast", task_kind::map, a->task, a->attempt, t0 + 2s) == report_outcome::completed);
  }
  CHECK_FALSE(table.assign("fast", "h", t0 + 6s));  // 3 x median (2 s): not yet
  auto backup = table.assign("fast", "h", t0 + 6s + 1ms);
  REQUIRE(backup);
  CHECK(backup->backup);
}

TEST_CASE("task table: no backups before half the phase is done - none when disabled - none to the worker holding the task") {
  SUBCASE("less than half done") {
    task_table table(job(4, 1), t0);
    for (int i = 0; i < 4; ++i) REQUIRE(table.assign(worker_name(i), "h", t0));
    REQUIRE(table.complete("w1", task_kind::map, 1, 1, t0 + 1s) == report_outcome::completed);
    CHECK_FALSE(table.assign("w1", "h", t0 + 9s));
  }
  SUBCASE("disabled") {
    task_table table(job(2, 1, false), t0);
    REQUIRE(table.assign("slow", "h", t0));
    auto a = table.assign("fast", "h", t0);
    REQUIRE(a);
    REQUIRE(table.complete("fast", task_kind::map, a->task, 1, t0 + 1s) == report_outcome::completed);
    CHECK_FALSE(table.assign("fast", "h", t0 + 9s));
    CHECK(table.next_change(t0 + 9s) == t0 + timeout);
  }
  SUBCASE("own worker") {
    task_table table(job(2, 1), t0);
    REQUIRE(table.assign("slow", "h", t0));
    auto a = table.assign("fast", "h", t0);
    REQUIRE(a);
    REQUIRE(table.complete("fast", task_kind::map, a->task, 1, t0 + 1s) == report_outcome::completed);
    CHECK_FALSE(table.assign("slow", "h", t0 + 9s));
    CHECK(table.assign("fast", "h", t0 + 9s));
  }
}

// The lab's job-count test: maps of 2 to 5 s under a 10 s timeout, no failures; every map must run
// exactly once. Simulated many times with random durations and 1 to 4 workers, backups on.
TEST_CASE("task table: without failures no task runs twice - the job-count property") {
  std::mt19937 rng(12345);
  for (int round = 0; round < 2000; ++round) {
    const int n_workers = 1 + round % 4;
    task_table table(job(8, 10), t0);
    std::uniform_int_distribution<int> map_ms(2000, 5000);
    std::uniform_int_distribution<int> reduce_ms(1, 300);
    struct busy {
      assignment task;
      clock::time_point until;
    };
    std::map<int, busy> running;  // by worker
    auto now = t0;
    int guard = 0;
    while (table.phase() != job_phase::done && ++guard < 10'000) {
      for (int w = 0; w < n_workers; ++w) {
        if (running.count(w)) continue;
        if (auto a = table.assign(worker_name(w), "h", now)) {
          const auto d = std::chrono::milliseconds(a->kind == task_kind::map ? map_ms(rng) : reduce_ms(rng));
          running[w] = busy{*a, now + d};
        }
      }
      // Advance to the next finish (or table change) and report it.
      auto next = clock::time_point::max();
      for (const auto& [w, b] : running) next = std::min(next, b.until);
      if (auto change = table.next_change(now)) next = std::min(next, *change);
      REQUIRE(next != clock::time_point::max());
      now = next;
      for (auto it = running.begin(); it != running.end();) {
        if (it->second.until <= now) {
          const auto& a = it->second.task;
          table.complete(worker_name(it->first), a.kind, a.task, a.attempt, now);
          it = running.erase(it);
        } else {
          ++it;
        }
      }
    }
    REQUIRE(table.phase() == job_phase::done);
    REQUIRE(table.stats().assignments == 18);
    REQUIRE(table.stats().backups == 0);
    REQUIRE(table.stats().reassignments == 0);
  }
}

TEST_CASE("task table: workers seen - and whether all were told to exit") {
  task_table table(job(1, 1), t0);
  CHECK(table.all_workers_told_exit());
  REQUIRE(table.assign("a", "host-a", t0));
  table.note_worker("b", "host-b", t0 + 1s);
  REQUIRE(table.workers().size() == 2);
  CHECK(table.workers()[0].id == "a");
  CHECK(table.workers()[0].host == "host-a");
  CHECK(table.workers()[0].tasks_assigned == 1);
  CHECK(table.workers()[1].last_contact == t0 + 1s);
  table.note_worker("b", "host-b", t0 + 3s);
  CHECK(table.workers()[1].last_contact == t0 + 3s);
  CHECK(table.workers()[1].first_contact == t0 + 1s);
  table.mark_told_exit("a");
  CHECK_FALSE(table.all_workers_told_exit());
  table.mark_told_exit("b");
  CHECK(table.all_workers_told_exit());
}

TEST_CASE("task table: impossible jobs are refused") {
  CHECK_THROWS_AS(task_table(job(0, 1), t0), std::invalid_argument);
  CHECK_THROWS_AS(task_table(job(1, 0), t0), std::invalid_argument);
}

TEST_CASE("task table: a reported failure makes the task idle at once - the 4th fails the job - timeouts never count") {
  task_table table(job(1, 1, false), t0);
  auto a = table.assign("w1", "h", t0);
  REQUIRE(a);
  REQUIRE(a->task == 0);
  CHECK(table.fail("w1", task_kind::map, 0, a->attempt, "cannot open in-0", t0 + 1s) == report_outcome::recorded);
  // The same report again is not a second failure.
  CHECK(table.fail("w1", task_kind::map, 0, a->attempt, "cannot open in-0", t0 + 1s) == report_outcome::recorded);
  auto counts = table.counts(task_kind::map, t0 + 1s);
  CHECK(counts.idle == 1);
  CHECK(counts.running == 0);
  // Handed out again at once, well before its timeout.
  auto b = table.assign("w2", "h", t0 + 1s);
  REQUIRE(b);
  CHECK(b->task == 0);
  CHECK(b->attempt == 2);
  CHECK(b->after_failure);
  CHECK_FALSE(b->retry);
  CHECK(table.fail("w2", task_kind::map, 0, 2, "second", t0 + 2s) == report_outcome::recorded);
  CHECK(table.fail("w2", task_kind::map, 0, 3, "never handed out", t0 + 2s) == report_outcome::never_assigned);
  CHECK(table.fail("w2", task_kind::map, 5, 1, "no such task", t0 + 2s) == report_outcome::unknown_task);
  const auto errors = table.errors();
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].failed_attempts == 2);
  CHECK(errors[0].attempts == 2);
  CHECK(errors[0].last_error == "second");
  for (int attempt = 3; attempt <= 4; ++attempt) {
    auto c = table.assign("w3", "h", t0 + 3s);
    REQUIRE(c);
    CHECK(c->task == 0);
    const auto outcome = table.fail("w3", task_kind::map, 0, c->attempt, "failure " + std::to_string(attempt), t0 + 3s);
    CHECK(outcome == (attempt == 4 ? report_outcome::job_failed : report_outcome::recorded));
  }
  CHECK(table.phase() == job_phase::failed);
  CHECK(table.over());
  CHECK(table.failure() == "map task 0 failed 4 times; last error: failure 4");
  CHECK_FALSE(table.assign("w1", "h", t0 + 4s));
  CHECK_FALSE(table.next_change(t0 + 4s));
  CHECK(table.complete("w1", task_kind::map, 0, 1, t0 + 4s) == report_outcome::already_done);
}

TEST_CASE("task table: attempts lost to timeouts are retried forever - a failure on a done task changes nothing") {
  task_table table(job(1, 1, false), t0);
  auto now = t0;
  for (int i = 0; i < 20; ++i) {
    auto a = table.assign("w", "h", now);
    REQUIRE(a);
    CHECK(a->attempt == i + 1);
    now += timeout;
  }
  CHECK(table.phase() == job_phase::map);
  auto last = table.assign("w", "h", now);
  REQUIRE(last);
  CHECK(table.complete("w", task_kind::map, 0, last->attempt, now) == report_outcome::completed);
  CHECK(table.fail("w", task_kind::map, 0, 1, "late", now) == report_outcome::already_done);
  CHECK(table.errors().empty());
}

TEST_CASE("task table: for the job service attempts lost to timeouts count - max_failed_attempts of them fail the job") {
  auto config = job(2, 1, false);
  config.timeouts_count_as_failures = true;
  config.max_failed_attempts = 2;
  task_table table(config, t0);
  auto a = table.assign("w1", "h", t0);
  auto b = table.assign("w2", "h", t0);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(table.complete("w2", task_kind::map, b->task, b->attempt, t0 + 1s) == report_outcome::completed);
  // Nothing is due before the timeout; at it the lost attempt counts once, however often one looks.
  CHECK_FALSE(table.expire_attempts(t0 + timeout - 1s));
  CHECK(table.errors().empty());
  CHECK_FALSE(table.expire_attempts(t0 + timeout));
  CHECK_FALSE(table.expire_attempts(t0 + timeout + 1s));
  auto errors = table.errors();
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].failed_attempts == 1);
  CHECK(errors[0].last_error.find("worker w1 did not finish within 10 s") != std::string::npos);
  // The views say who ran what.
  auto maps = table.tasks(task_kind::map, t0 + timeout);
  REQUIRE(maps.size() == 2);
  CHECK(maps[static_cast<std::size_t>(a->task)].state == task_state_kind::idle);
  CHECK(maps[static_cast<std::size_t>(a->task)].worker == "w1");
  CHECK(maps[static_cast<std::size_t>(b->task)].state == task_state_kind::done);
  CHECK(maps[static_cast<std::size_t>(b->task)].worker == "w2");
  CHECK(maps[static_cast<std::size_t>(b->task)].duration == 1s);
  // The second lost attempt is the last allowed, found by assign() as well as by a sweep.
  auto c = table.assign("w3", "h", t0 + timeout + 1s);
  REQUIRE(c);
  CHECK(c->task == a->task);
  CHECK(c->attempt == 2);
  CHECK_FALSE(table.assign("w4", "h", t0 + 2 * timeout + 1s));
  CHECK(table.phase() == job_phase::failed);
  CHECK(table.failure().find("failed 2 times") != std::string::npos);
  CHECK(table.finished() == t0 + 2 * timeout + 1s);
  CHECK_FALSE(table.expire_attempts(t0 + 3 * timeout));
}

TEST_CASE("task table: without the job service's option expire_attempts does nothing") {
  task_table table(job(1, 1, false), t0);
  REQUIRE(table.assign("w1", "h", t0));
  CHECK_FALSE(table.expire_attempts(t0 + 5 * timeout));
  CHECK(table.errors().empty());
  CHECK(table.counts(task_kind::map, t0 + 5 * timeout).idle == 1);
  CHECK(table.tasks(task_kind::map, t0 + 5 * timeout)[0].attempts == 1);
}

}  // TEST_SUITE

TEST_SUITE("mr_coordinator") {

TEST_CASE("task table: a lost map output runs the map again: at once when certain, after two reducers otherwise") {
  task_table table(job(2, 2, false), t0);
  for (int m = 0; m < 2; ++m) {
    auto a = table.assign("mapper", "h", t0);
    REQUIRE(a);
    REQUIRE(table.complete("mapper", task_kind::map, a->task, a->attempt, t0, "http://mapper:1") ==
            report_outcome::completed);
  }
  CHECK(table.map_locations() == std::vector<std::string>{"http://mapper:1", "http://mapper:1"});
  CHECK(table.map_holder(1) == "mapper");
  auto r0 = table.assign("r1", "h", t0);
  auto r1 = table.assign("r2", "h", t0);
  REQUIRE(r0);
  REQUIRE(r1);
  // One reducer alone may only have a slow link: noted, nothing runs again, and its own attempt is handed
  // out again without counting as a failure.
  CHECK(table.fail("r1", task_kind::reduce, r0->task, r0->attempt, "no answer", t0, false) == report_outcome::recorded);
  CHECK_FALSE(table.report_lost_output(1, "r1", false, t0));
  CHECK(table.phase() == job_phase::reduce);
  // The same reducer again changes nothing; a second one does.
  CHECK_FALSE(table.report_lost_output(1, "r1", false, t0));
  CHECK(table.report_lost_output(1, "r2", false, t0));
  CHECK(table.phase() == job_phase::map);
  CHECK(table.map_locations()[1].empty());
  auto again = table.assign("other", "h", t0);
  REQUIRE(again);
  CHECK(again->kind == task_kind::map);
  CHECK(again->task == 1);
  CHECK(table.complete("other", task_kind::map, 1, again->attempt, t0, "http://other:2") == report_outcome::completed);
  CHECK(table.phase() == job_phase::reduce);
  CHECK(table.map_locations()[1] == "http://other:2");
  // A certain report (the holder is silent, or said the output is gone) needs no second opinion.
  CHECK(table.report_lost_output(0, "r2", true, t0));
  CHECK(table.phase() == job_phase::map);
  // Not failures: the job has none.
  CHECK(table.errors().empty());
}

TEST_CASE("task table: a fetch failure from a silent holder runs all its maps again, one that answered gone only that map") {
  task_table table(job(4, 1, false), t0);
  // Maps 0 and 2 on worker a, 1 and 3 on worker b.
  for (int m = 0; m < 4; ++m) {
    const std::string w = m % 2 == 0 ? "a" : "b";
    auto got = table.assign(w, "h", t0);
    REQUIRE(got);
    REQUIRE(table.complete(w, task_kind::map, got->task, got->attempt, t0, "http://" + w) == report_outcome::completed);
  }
  REQUIRE(table.map_holder(0) == "a");
  REQUIRE(table.map_holder(3) == "b");
  // b answered that map 1's output is missing: only map 1 runs again.
  CHECK(table.report_fetch_failure(1, "r", true, false, t0) == std::vector<int>{1});
  CHECK(table.map_holder(3) == "b");
  // a has been silent: both of its outputs are gone with it.
  CHECK(table.report_fetch_failure(2, "r", false, true, t0) == std::vector<int>{0, 2});
  CHECK(table.map_locations() == std::vector<std::string>{"", "", "", "http://b"});
  // A lone report without certainty changes nothing.
  CHECK(table.report_fetch_failure(3, "r", false, false, t0).empty());
  CHECK(describe_lost_outputs({0, 2}, "a", false, true) ==
        "map tasks 0, 2: their outputs on worker a are taken for lost (the worker is silent): running them again");
  CHECK(describe_lost_outputs({1}, "b", true, false) ==
        "map task 1: its output on worker b is taken for lost (its worker does not have it): running it again");
}

}  // TEST_SUITE
