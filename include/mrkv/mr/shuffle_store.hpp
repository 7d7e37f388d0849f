// This file contains what a shared-nothing worker (`mrkv worker --serve`) serves from its private work
// directory, so that the maps' outputs need no shared filesystem (the MapReduce paper, section 3.1):
//   GET /v1/shuffle/JOB/map/M/R  partition R of map M's output (mr-M.map, map_output.hpp), as the
//                                intermediate image it is, checked against the file's index first
//   GET /v1/shuffle/JOB/out/R    mr-out-R, which the coordinator fetches into its own directory
// Both answer application/octet-stream; 404 {"error"} for a job or file this worker does not have,
// 500 for a file that fails its check (the reducer retries, then reports the map's output lost).
// JOB "-" is a one-job coordinator's (files in the work directory itself); any other is a job service
// job, whose directory its orders name: the worker tells the store with add_job() as orders come.
// Handlers run on the worker's server thread while tasks run on the task thread: the job table is
// locked, and the files are published atomically, so a reader sees a whole file or none.
#pragma once

#include "mrkv/http/router.hpp"

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace mrkv::mr {

class shuffle_store {
 public:
  explicit shuffle_store(std::filesystem::path workdir);

  // Job `job`'s files are in workdir/dir. Thread-safe.
  void add_job(const std::string& job, const std::string& dir);
  // The routes above; they refer to this object, which must outlive the server.
  http::router routes();

 private:
  http::reply serve(const http::request& req) const;
  std::optional<std::filesystem::path> dir_of(const std::string& job) const;

  std::filesystem::path workdir_;
  mutable std::mutex mutex_;
  std::map<std::string, std::string> dirs_;
};

}  // namespace mrkv::mr
