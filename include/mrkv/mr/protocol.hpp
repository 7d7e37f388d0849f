// This file contains the JSON messages between MapReduce workers and the coordinator, with their
// encoders and validating decoders. Both sides use these, so the wire format lives in one place.
//
//   POST /v1/tasks/next  {"worker": ID, "host": NAME, "wait_ms": N, "app": APP}  (wait_ms, app optional)
//     APP is {"app": NAME} or {"mapper": CMD, "reducer": CMD, "combiner": CMD} (combiner optional): the
//     only app the worker runs (its --app). Absent: the worker loads each job's app itself. A one-job
//     coordinator ignores it.
//     -> 200 {"action": "map", "task": M, "attempt": A, "input": PATH, "n_reduce": R, "backup": bool,
//             "timeout_ms": T}
//        200 {"action": "reduce", "task": R, "attempt": A, "n_map": M, "backup": bool, "timeout_ms": T}
//     timeout_ms (optional) is the task timeout: a streaming command still running after it is killed.
//     A job service (one coordinator, many jobs) adds to map and reduce orders "job": ID, "dir": DIR
//     (the job's directory, relative to the work directory: its task files go there) and "app": APP,
//     and "service": true to every order, so its workers stay up between jobs. Its workers send the
//     job's ID back as "job" in their reports.
//        200 {"action": "wait"}   nothing to do yet: ask again at once (the request already waited)
//        200 {"action": "exit"}   the job is done (a job service never says it)
//     A long poll: the coordinator answers as soon as a task is free, or after min(wait_ms, its own
//     limit) with "wait".
//   POST /v1/tasks/done  {"worker": ID, "kind": "map"|"reduce", "task": N, "attempt": A,
//                         "counters": {GROUP: {NAME: N, ...}, ...}}       (counters optional)
//     -> 200 {"result": "completed"}      this report finished the task
//        200 {"result": "already_done"}   another attempt finished it first; nothing changed
//        404 unknown task, 409 an attempt that was never handed out, 400 a malformed body
//   POST /v1/tasks/failed  {"worker": ID, "kind": ..., "task": N, "attempt": A, "error": TEXT,
//                           "given_back": true}   (given_back optional: a worker being stopped hands
//                                                   its task back; that attempt never counts as failed)
//     -> 200 {"result": "recorded"}       the task goes back to idle and will be handed out again
//        200 {"result": "job_failed"}     this was the last attempt allowed: the job has failed
//        200 {"result": "already_done"}   the task (or the job) is over; nothing changed
//        404, 409, 400 as for done
//   GET /v1/job -> the job's status (see coordinator.hpp)
//
// Shared-nothing mode (issue 15: the paper's shuffle over HTTP). A worker started with --serve keeps
// its map outputs in its own work directory and serves them; it says where in its reports:
//   POST /v1/tasks/done gets "location": URL (the worker's advertised URL) for map and reduce tasks.
//     A map's location is where reducers fetch its output; a reduce's is where the coordinator fetches
//     mr-out-R from (GET URL + output_target()) before it takes the task as done, so every output lands
//     in the coordinator's directory.
//   A reduce order gets "sources": [URL, ...], one per map ("" for a map whose output is in the shared
//     directory). The reducer fetches partition R of map M with GET URL + partition_target().
//   POST /v1/tasks/fetch-failed {"worker", "task": R, "attempt": A, "map": M, "error": TEXT, "gone": bool,
//                                "job"?}
//     a reducer could not fetch map M's output (after retrying): its attempt is handed out again (not
//     counted as a failure), and the map is run again when its output is taken for lost (task_table);
//     "gone": the mapper answered that it does not have the output or that it is damaged, which is
//     proof enough
//     -> 200 {"result": "recorded"} or {"result": "map_rerun"}; {"result": "already_done"} when over
//   GET /v1/inputs/JOB/M (JOB "-" for a one-job coordinator): the input file of map M, for a worker
//     that cannot read the path itself; "Range: bytes=A-B" is honoured (206).
//   A job service adds "live_jobs": [ID, ...] to every order: the jobs not over yet. A --serve worker
//     deletes the map outputs it wrote for any other job (no reducer will fetch them again), as it
//     deletes its one job's when told to exit.
#pragma once

#include "mrkv/mr/counters.hpp"
#include "mrkv/mr/task_executor.hpp"
#include "mrkv/mr/task_table.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace mrkv::mr::protocol {

inline constexpr const char* next_path = "/v1/tasks/next";
inline constexpr const char* done_path = "/v1/tasks/done";
inline constexpr const char* failed_path = "/v1/tasks/failed";
inline constexpr const char* job_path = "/v1/job";
inline constexpr const char* fetch_failed_path = "/v1/tasks/fetch-failed";
inline constexpr const char* inputs_prefix = "/v1/inputs/";
inline constexpr const char* shuffle_prefix = "/v1/shuffle/";
// A URL a worker advertises, or an input URL.
inline constexpr std::size_t max_url_length = 2048;

// "/v1/shuffle/JOB/map/M/R": partition R of map M's output, on the worker that ran M.
std::string partition_target(const std::string& job, int map, int reduce);
// "/v1/shuffle/JOB/out/R": mr-out-R, on the worker that ran reduce R.
std::string output_target(const std::string& job, int reduce);
// "/v1/inputs/JOB/M", on the coordinator.
std::string input_target(const std::string& job, int map);
struct input_ref {
  std::string job;  // "" for "-"
  int map = 0;
};
// The inverse of input_target() (a query string is ignored); 404 request_error for anything else.
input_ref parse_input_target(std::string_view target);

// Worker ids and host names are short printable tokens; longer or stranger ones are refused (400).
inline constexpr std::size_t max_name_length = 128;
// An app's name or command line.
inline constexpr std::size_t max_command_length = 4096;

struct next_request {
  std::string worker;
  std::string host;
  std::optional<std::chrono::milliseconds> wait;
  std::optional<app_spec> app;  // the worker's only app; nullopt: any job's
};

struct done_request {
  std::string worker;
  task_kind kind = task_kind::map;
  int task = 0;
  int attempt = 1;
  counters counts;
  std::string job = {};  // empty for a one-job coordinator
  std::string location = {};  // the worker's served URL, shared-nothing mode only
};

struct fetch_failed_request {
  std::string worker;
  int task = 0;  // the reduce task
  int attempt = 1;
  int map = 0;   // whose output could not be fetched
  std::string error;
  bool gone = false;  // the mapper answered that the output is missing or damaged (not silence)
  std::string job = {};
};

// Counters travel with bounds: at most this many, names at most max_name_length bytes.
inline constexpr std::size_t max_counters = 256;
// A failure's text is cut to this many bytes by the encoder and refused past it by the decoder.
inline constexpr std::size_t max_error_length = 4096;

struct failed_request {
  std::string worker;
  task_kind kind = task_kind::map;
  int task = 0;
  int attempt = 1;
  std::string error;
  std::string job = {};  // empty for a one-job coordinator
  bool given_back = false;  // the worker is being stopped: not the task's failure
};

enum class action { map, reduce, wait, exit };

// What the coordinator tells a worker.
struct order {
  action what = action::wait;
  int task = 0;
  int attempt = 1;
  bool backup = false;
  std::string input;  // map
  int n_reduce = 0;   // map
  int n_map = 0;      // reduce
  std::vector<std::string> sources;  // reduce, shared-nothing mode: each map's output server ("" shared)
  std::optional<std::chrono::milliseconds> timeout;  // map and reduce
  // Set by a job service (see the file comment).
  std::string job;
  std::string dir;
  std::optional<app_spec> app;
  bool service = false;
  std::optional<std::vector<std::string>> live_jobs;  // any action, from a job service
};

nlohmann::json encode(const next_request& r);
nlohmann::json encode(const done_request& r);
nlohmann::json encode(const failed_request& r);
nlohmann::json encode(const fetch_failed_request& r);
nlohmann::json encode(const counters& c);
// {"idle", "running", "done", "total"}: a phase's tasks in /v1/job and /v1/jobs.
nlohmann::json encode(const phase_counts& c);
nlohmann::json encode(const order& o);
// {"app": NAME} or {"mapper", "reducer"[, "combiner"]}; what make_executor() needs to run it.
nlohmann::json encode(const app_spec& app);
// Reads an app from `object`'s members "app", "mapper", "reducer", "combiner" (other members are the
// caller's business): 400 naming the field for both kinds at once, neither, a mapper without a reducer
// or the reverse, or a member that is not a non-empty string.
app_spec decode_app(const nlohmann::json& object);
// Two apps are the same job app when they name the same app or the same three commands.
bool same_app(const app_spec& a, const app_spec& b) noexcept;
// What a reduce order's "sources" say: every map's output location, or nothing when all of them are in
// the shared directory (so that orders stay as they were without shared-nothing workers).
std::vector<std::string> sources_for(const task_table& table);
// The order that hands out `a` in a job of n_map maps and n_reduce reduces.
order order_for(const assignment& a, int n_map, int n_reduce);

// Decoders for bodies from the network: every problem is an http::request_error(400) naming the field.
next_request decode_next_request(const nlohmann::json& body);
done_request decode_done_request(const nlohmann::json& body);
failed_request decode_failed_request(const nlohmann::json& body);
fetch_failed_request decode_fetch_failed_request(const nlohmann::json& body);
order decode_order(const nlohmann::json& body);

std::string_view to_string(action a) noexcept;

}  // namespace mrkv::mr::protocol
