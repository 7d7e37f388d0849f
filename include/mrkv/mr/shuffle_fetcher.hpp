// This file contains the fetching side of the shuffle over HTTP: a reducer getting partition R of
// every map's output from the workers that hold them (shuffle_store.hpp), a worker getting an input it
// cannot read from the coordinator, and the coordinator getting a reduce's output from its worker.
//
// Fetches use kept-alive connections, pooled per server and reused across tasks, several at once per
// reducer. A fetch that gets no answer, a 5xx, or a partition whose checksum does not match is tried
// again (`tries` times in all, with a short pause), then reported as a failure naming the map and the
// last cause; a 4xx (the file is not there) is not retried. One fetcher is used from one thread (the
// worker's or the coordinator's I/O thread); it never blocks it.
#pragma once

#include "mrkv/http/client.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mrkv::mr {

struct fetch_options {
  http::client_options client;
  std::chrono::milliseconds timeout{10'000};  // one request
  int tries = 3;
  int parallel = 4;  // fetches at once per reducer
  std::chrono::milliseconds pause{200};  // before the second try; doubled for each one after
  // Keep connections open between calls. Off for a fetcher that may outlive its executor's io_context
  // (a coordinator is destroyed after its server): a socket must not outlive its context.
  bool keep_alive = true;
};

struct fetched_bytes {
  std::optional<std::string> bytes;  // nullopt: failed, see error
  std::string error;
  // The failure was an answer (the server has no such file, or sent bytes that fail their check), not
  // silence: retrying later will not help.
  bool answered = false;
};

struct fetched_partitions {
  std::vector<std::string> images;  // by map; empty where the source was "" (the shared directory)
  std::uint64_t bytes = 0;
  // Set when a partition could not be fetched: which map's, and why.
  std::optional<int> failed_map;
  std::string error;
  bool answered = false;  // as in fetched_bytes
};

class shuffle_fetcher {
 public:
  shuffle_fetcher(boost::asio::any_io_executor executor, fetch_options options);
  ~shuffle_fetcher();
  shuffle_fetcher(const shuffle_fetcher&) = delete;
  shuffle_fetcher& operator=(const shuffle_fetcher&) = delete;

  // GET source + target, retried as the file comment says. `check` (optional) tells a good body.
  boost::asio::awaitable<fetched_bytes> get(std::string source, std::string target,
                                            bool (*check)(std::string_view) = nullptr);
  // Reduce `reduce`'s mr-out-R from the worker at `location`, published atomically as `target`.
  // Returns "" when done, else why not.
  boost::asio::awaitable<std::string> fetch_output(std::string location, std::string job, int reduce,
                                                   std::filesystem::path target);
  // Partition `reduce` of job `job` from every non-empty source (one per map).
  boost::asio::awaitable<fetched_partitions> partitions(std::string job, int reduce, std::vector<std::string> sources);

 private:
  std::unique_ptr<http::client> take(const std::string& source);
  void give_back(const std::string& source, std::unique_ptr<http::client> client);

  boost::asio::any_io_executor executor_;
  fetch_options options_;
  std::map<std::string, std::vector<std::unique_ptr<http::client>>> idle_;
};

}  // namespace mrkv::mr
