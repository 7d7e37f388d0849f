#include "mrkv/mr/shuffle_store.hpp"

#include "mrkv/mr/map_output.hpp"
#include "mrkv/mr/protocol.hpp"
#include "mrkv/mr/task_files.hpp"

#include <charconv>
#include <vector>

namespace mrkv::mr {
namespace {

// "12" -> 12; nullopt for anything but a plain non-negative decimal.
std::optional<int> index_in(std::string_view text) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < 0 || text.empty()) return std::nullopt;
  return value;
}

std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

http::reply bytes_reply(std::string bytes) {
  http::reply r;
  r.body = std::move(bytes);
  r.content_type = http::octet_stream;
  return r;
}

}  // namespace

shuffle_store::shuffle_store(std::filesystem::path workdir) : workdir_(std::move(workdir)) {}

void shuffle_store::add_job(const std::string& job, const std::string& dir) {
  std::lock_guard lock(mutex_);
  dirs_[job] = dir;
}

std::optional<std::filesystem::path> shuffle_store::dir_of(const std::string& job) const {
  if (job == "-") return workdir_;
  std::lock_guard lock(mutex_);
  auto it = dirs_.find(job);
  if (it == dirs_.end()) return std::nullopt;
  return workdir_ / it->second;
}

http::router shuffle_store::routes() {
  http::router r;
  r.add(http::verb::get, std::string(protocol::shuffle_prefix) + "*",
        [this](const http::request& req) { return serve(req); });
  return r;
}

http::reply shuffle_store::serve(const http::request& req) const {
  std::string_view path = req.target();
  path = path.substr(0, path.find('?'));
  path.remove_prefix(std::string_view(protocol::shuffle_prefix).size());
  const auto parts = segments(path);
  const bool partition = parts.size() == 4 && parts[1] == "map";
  const bool output = parts.size() == 3 && parts[1] == "out";
  if (!partition && !output)
    throw http::request_error(404, "no such resource: expected /v1/shuffle/JOB/map/M/R or /v1/shuffle/JOB/out/R");
  const std::string job(parts[0]);
  const auto dir = dir_of(job);
  if (!dir) throw http::request_error(404, "this worker has no files of job " + job.substr(0, 64));
  const auto first = index_in(parts[2]);
  const auto second = partition ? index_in(parts[3]) : std::optional<int>(0);
  if (!first || !second) throw http::request_error(404, "task numbers must be non-negative integers");
  try {
    if (output) return bytes_reply(read_whole_file(*dir / output_file_name(*first)));
    const map_output_reader reader(*dir / map_output_file_name(*first));
    if (*second >= reader.partitions())
      throw http::request_error(404, "map " + std::to_string(*first) + " has no partition " + std::to_string(*second));
    return bytes_reply(reader.read(*second));
  } catch (const task_file_error& e) {
    if (e.why() == task_file_error::kind::missing)
      throw http::request_error(404, std::string(output ? "no output " : "no map output ") +
                                         std::to_string(*first) + " of job " + job.substr(0, 64) + " here");
    return http::error_reply(500, e.what());
  }
}

}  // namespace mrkv::mr
