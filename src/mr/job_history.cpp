#include "mrkv/mr/job_history.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/mr/task_files.hpp"

namespace mrkv::mr {

namespace {

constexpr const char* record_name = "job.json";

}  // namespace

job_history::job_history(std::filesystem::path workdir) : jobs_(std::move(workdir) / "jobs") {
  std::filesystem::create_directories(jobs_);
}

std::string job_history::relative_dir(const std::string& id) { return "jobs/" + id; }

std::filesystem::path job_history::dir(const std::string& id) const { return jobs_ / id; }

void job_history::save(const std::string& id, const nlohmann::json& record, bool durable) const {
  std::error_code ec;
  std::filesystem::create_directories(dir(id), ec);
  if (ec) throw task_file_error(task_file_error::kind::io, "cannot make " + dir(id).string() + ": " + ec.message());
  write_file_atomically(dir(id) / record_name, record.dump(2) + "\n", durable ? sync_mode::fsync : sync_mode::none);
}

std::vector<nlohmann::json> job_history::load_all() const {
  std::vector<nlohmann::json> records;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(jobs_, ec)) {
    const auto path = entry.path() / record_name;
    if (!std::filesystem::exists(path)) continue;
    try {
      auto record = nlohmann::json::parse(read_whole_file(path));
      if (!record.is_object()) throw std::runtime_error("not a JSON object");
      records.push_back(std::move(record));
    } catch (const std::exception& e) {
      log::warn("coordinator", "skipping job record " + path.string() + ": " + e.what());
    }
  }
  if (ec) log::warn("coordinator", "cannot list " + jobs_.string() + ": " + ec.message());
  return records;
}

}  // namespace mrkv::mr
