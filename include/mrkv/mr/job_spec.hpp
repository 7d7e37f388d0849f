// This file contains a job as it is submitted to the job service (POST /v1/jobs): its app, its inputs
// and its settings, the validating decoder that makes one from a request body (every problem is a 400
// that names the field, so a bad request makes no job), its encoder, and the check that an input is a
// readable file, shared with the one-job command line.
#pragma once

#include "mrkv/mr/task_executor.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mrkv::mr {

struct job_spec {
  app_spec app;
  std::vector<std::string> inputs;  // as submitted; relative ones are relative to the work directory
  int n_reduce = 10;
  std::string name;  // free text for people; may be empty
  std::chrono::milliseconds task_timeout{10'000};
  int max_attempts = 4;  // failed or timed-out attempts of one task that fail the job
};

// What a submission that leaves a setting out gets: the coordinator's flags.
struct job_defaults {
  int n_reduce = 10;
  std::chrono::milliseconds task_timeout{10'000};
};

// Limits of a submission.
inline constexpr std::size_t max_job_inputs = 100'000;
inline constexpr int max_job_reduce = 1'000'000;
inline constexpr std::size_t max_job_name = 256;
inline constexpr int max_job_attempts = 100;

// Reads {"app" | "mapper"+"reducer"[+"combiner"], "inputs", "reduce", "name", "task_timeout" (seconds),
// "max_attempts"}. Throws http::request_error(400) naming the field for a missing or malformed member,
// an unknown member, an empty input list, or (when check_inputs) an input that is not a readable regular
// file under `workdir`.
job_spec decode_job_spec(const nlohmann::json& body, const job_defaults& defaults,
                         const std::filesystem::path& workdir, bool check_inputs = true);

// The members decode_job_spec() reads, every one present.
nlohmann::json encode(const job_spec& spec);

// An http:// or https:// input, which the worker that maps it fetches.
bool is_input_url(std::string_view input) noexcept;

// Why `input` (relative to `workdir` unless absolute) can't be a map task's input: "cannot read input
// X: No such file or directory", "input X is not a regular file"; nullopt when it can (a URL always can:
// only the worker finds out).
std::optional<std::string> input_problem(const std::filesystem::path& workdir, const std::string& input);

}  // namespace mrkv::mr
