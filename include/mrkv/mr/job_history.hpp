// This file contains the job service's history on disk: one JSON file per job,
// WORKDIR/jobs/ID/job.json beside the job's outputs, rewritten atomically whenever the job changes
// state, so the list of jobs survives a coordinator restart. The record is whatever the
// service hands it; this file only stores and finds records.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace mrkv::mr {

class job_history {
 public:
  // `workdir` is the coordinator's work directory; jobs/ is made under it when missing (throws
  // std::filesystem::filesystem_error when it can't be).
  explicit job_history(std::filesystem::path workdir);

  // "jobs/ID", relative to the work directory: the job's own directory, where its task files and
  // outputs go (workers are told this path).
  static std::string relative_dir(const std::string& id);
  // The same, absolute.
  std::filesystem::path dir(const std::string& id) const;

  // Makes the job's directory and (re)writes its record; with `durable`, fsync'ed so that it survives
  // the machine crashing too. Throws task_file_error (kind io).
  void save(const std::string& id, const nlohmann::json& record, bool durable) const;

  // Every record found, in no particular order. A file that can't be read or parsed is logged and
  // skipped: one damaged record must not stop the service from starting.
  std::vector<nlohmann::json> load_all() const;

 private:
  std::filesystem::path jobs_;
};

}  // namespace mrkv::mr
