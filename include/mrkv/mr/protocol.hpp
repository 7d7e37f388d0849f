// This file contains the JSON messages between MapReduce workers and the coordinator, with their
// encoders and validating decoders. Both sides use these, so the wire format lives in one place.
//
//   POST /v1/tasks/next  {"worker": ID, "host": NAME, "wait_ms": N}        (wait_ms optional)
//     -> 200 {"action": "map", "task": M, "attempt": A, "input": PATH, "n_reduce": R, "backup": bool,
//             "timeout_ms": T}
//        200 {"action": "reduce", "task": R, "attempt": A, "n_map": M, "backup": bool, "timeout_ms": T}
//     timeout_ms (optional) is the task timeout: a streaming command still running after it is killed.
//        200 {"action": "wait"}   nothing to do yet: ask again at once (the request already waited)
//        200 {"action": "exit"}   the job is done
//     A long poll: the coordinator answers as soon as a task is free, or after min(wait_ms, its own
//     limit) with "wait".
//   POST /v1/tasks/done  {"worker": ID, "kind": "map"|"reduce", "task": N, "attempt": A,
//                         "counters": {GROUP: {NAME: N, ...}, ...}}       (counters optional)
//     -> 200 {"result": "completed"}      this report finished the task
//        200 {"result": "already_done"}   another attempt finished it first; nothing changed
//        404 unknown task, 409 an attempt that was never handed out, 400 a malformed body
//   POST /v1/tasks/failed  {"worker": ID, "kind": ..., "task": N, "attempt": A, "error": TEXT}
//     -> 200 {"result": "recorded"}       the task goes back to idle and will be handed out again
//        200 {"result": "job_failed"}     this was the last attempt allowed: the job has failed
//        200 {"result": "already_done"}   the task (or the job) is over; nothing changed
//        404, 409, 400 as for done
//   GET /v1/job -> the job's status (see coordinator.hpp)
#pragma once

#include "mrkv/mr/counters.hpp"
#include "mrkv/mr/task_table.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace mrkv::mr::protocol {

inline constexpr const char* next_path = "/v1/tasks/next";
inline constexpr const char* done_path = "/v1/tasks/done";
inline constexpr const char* failed_path = "/v1/tasks/failed";
inline constexpr const char* job_path = "/v1/job";

// Worker ids and host names are short printable tokens; longer or stranger ones are refused (400).
inline constexpr std::size_t max_name_length = 128;

struct next_request {
  std::string worker;
  std::string host;
  std::optional<std::chrono::milliseconds> wait;
};

struct done_request {
  std::string worker;
  task_kind kind = task_kind::map;
  int task = 0;
  int attempt = 1;
  counters counts;
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
  std::optional<std::chrono::milliseconds> timeout;  // map and reduce
};

nlohmann::json encode(const next_request& r);
nlohmann::json encode(const done_request& r);
nlohmann::json encode(const failed_request& r);
nlohmann::json encode(const counters& c);
nlohmann::json encode(const order& o);
// The order that hands out `a` in a job of n_map maps and n_reduce reduces.
order order_for(const assignment& a, int n_map, int n_reduce);

// Decoders for bodies from the network: every problem is an http::request_error(400) naming the field.
next_request decode_next_request(const nlohmann::json& body);
done_request decode_done_request(const nlohmann::json& body);
failed_request decode_failed_request(const nlohmann::json& body);
order decode_order(const nlohmann::json& body);

std::string_view to_string(action a) noexcept;

}  // namespace mrkv::mr::protocol
