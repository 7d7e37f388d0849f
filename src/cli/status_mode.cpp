#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"
#include "mrkv/http/client.hpp"
#include "mrkv/mr/protocol.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/program_options/value_semantic.hpp>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <thread>

namespace mrkv::cli {

namespace po = boost::program_options;
namespace asio = boost::asio;

namespace {

std::string fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

int count(const nlohmann::json& object, const char* field) {
  auto it = object.find(field);
  return it != object.end() && it->is_number_integer() ? it->get<int>() : 0;
}

std::string text(const nlohmann::json& object, const char* field) {
  auto it = object.find(field);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "?";
}

// "map     [##########..........]   4/8 done, 2 running, 2 idle"
std::string phase_line(const char* name, const nlohmann::json& counts) {
  constexpr int width = 30;
  const int done = count(counts, "done");
  const int running = count(counts, "running");
  const int total = std::max(count(counts, "total"), 1);
  const int full = done * width / total;
  const int busy = std::min(width - full, (running * width + total - 1) / total);
  std::ostringstream out;
  out << name << std::string(8 - std::string(name).size(), ' ') << '[' << std::string(full, '#')
      << std::string(busy, '>') << std::string(width - full - busy, '.') << "] " << done << '/'
      << count(counts, "total") << " done, " << running << " running, " << count(counts, "idle") << " idle";
  return out.str();
}

std::string for_a_person(const nlohmann::json& job) {
  std::ostringstream out;
  const auto elapsed = job.value("elapsed_seconds", 0.0);
  out << "job: " << text(job, "phase") << " (" << fixed(elapsed, 1) << " s elapsed)\n";
  out << phase_line("map", job.value("map", nlohmann::json::object())) << "\n";
  out << phase_line("reduce", job.value("reduce", nlohmann::json::object())) << "\n";
  const auto workers = job.value("workers", nlohmann::json::array());
  out << "workers: " << workers.size() << "\n";
  for (const auto& w : workers) {
    out << "  " << text(w, "id") << "  " << text(w, "host") << "  last contact "
        << fixed(w.value("last_contact_seconds_ago", 0.0), 1) << " s ago (" << text(w, "last_contact") << "), "
        << count(w, "tasks_completed") << " tasks done" << (w.value("told_exit", false) ? ", told to exit" : "")
        << "\n";
  }
  if (job.contains("stats") && job["stats"].is_object()) {
    const auto& s = job["stats"];
    out << "hand-outs: " << count(s, "assignments") << " (" << count(s, "reassignments") << " after timeouts, "
        << count(s, "backups") << " backups; " << count(s, "late_reports") << " late reports)\n";
  }
  if (job.contains("error") && job["error"].is_string()) out << "job failed: " << job["error"].get<std::string>() << "\n";
  if (job.contains("task_errors") && job["task_errors"].is_array() && !job["task_errors"].empty()) {
    out << "failed attempts:\n";
    for (const auto& e : job["task_errors"])
      out << "  " << text(e, "kind") << " task " << count(e, "task") << ": " << count(e, "failed_attempts") << " of "
          << count(e, "attempts") << " attempts failed; last error: " << text(e, "last_error") << "\n";
  }
  if (job.contains("counters") && job["counters"].is_object() && !job["counters"].empty()) {
    out << "counters:\n";
    for (const auto& [group, names] : job["counters"].items())
      if (names.is_object())
        for (const auto& [name, value] : names.items())
          out << "  " << group << "," << name << " = " << (value.is_number_integer() ? value.get<std::int64_t>() : 0)
              << "\n";
  }
  return out.str();
}

// One job of a job service, as GET /v1/jobs/ID describes it.
std::string service_job(const nlohmann::json& job) {
  std::ostringstream out;
  out << "job " << text(job, "id") << (job.value("name", "").empty() ? "" : " (" + text(job, "name") + ")") << ": "
      << text(job, "state") << ", app " << text(job, "app") << "\n";
  out << "submitted " << text(job, "submitted");
  if (job.contains("started") && job["started"].is_string()) out << ", started " << text(job, "started");
  if (job.contains("finished") && job["finished"].is_string()) out << ", finished " << text(job, "finished");
  out << "\n";
  out << phase_line("map", job.value("map", nlohmann::json::object())) << "\n";
  out << phase_line("reduce", job.value("reduce", nlohmann::json::object())) << "\n";
  if (job.contains("error") && job["error"].is_string()) out << "error: " << job["error"].get<std::string>() << "\n";
  if (job.contains("task_errors") && job["task_errors"].is_array() && !job["task_errors"].empty()) {
    out << "failed attempts:\n";
    for (const auto& e : job["task_errors"])
      out << "  " << text(e, "kind") << " task " << count(e, "task") << ": " << count(e, "failed_attempts") << " of "
          << count(e, "attempts") << " attempts failed; last error: " << text(e, "last_error") << "\n";
  }
  if (job.contains("outputs") && job["outputs"].is_array()) {
    out << "outputs:\n";
    for (const auto& o : job["outputs"])
      if (o.is_string()) out << "  " << o.get<std::string>() << "\n";
  }
  return out.str();
}

// GET /v1/jobs: one line per job, newest first.
std::string service_jobs(const nlohmann::json& list) {
  std::ostringstream out;
  const auto jobs = list.value("jobs", nlohmann::json::array());
  out << jobs.size() << (jobs.size() == 1 ? " job" : " jobs") << "\n";
  for (const auto& job : jobs) {
    const auto map = job.value("map", nlohmann::json::object());
    const auto reduce = job.value("reduce", nlohmann::json::object());
    out << "  " << text(job, "id") << "  " << text(job, "state") << "  map " << count(map, "done") << "/"
        << count(map, "total") << "  reduce " << count(reduce, "done") << "/" << count(reduce, "total") << "  "
        << text(job, "app") << (job.value("name", "").empty() ? "" : "  " + text(job, "name")) << "\n";
  }
  return out.str();
}

}  // namespace

int run_status(const args& words) {
  mode_info mode{"status", "mrkv status --coordinator URL [--job ID] [--json] [--watch SECONDS]",
                 "Prints a MapReduce coordinator's job status (GET /v1/job): the phase, a progress bar per\n"
                 "phase, the workers seen, failed task attempts with their last error, and the counters of\n"
                 "streaming apps. --json prints the raw JSON; --watch repeats every SECONDS until the job is\n"
                 "done or failed or the coordinator is gone. Exits 1 when the job has failed.\n"
                 "For a coordinator run as a job service it lists the jobs (GET /v1/jobs), newest first; --job ID\n"
                 "shows one (GET /v1/jobs/ID) and exits 1 when it failed or was cancelled."};
  std::string coordinator;
  std::string job_id;
  bool json = false;
  double watch = 0;
  double timeout = 5;
  client_flags client_settings;
  po::options_description flags("status options");
  flags.add_options()
      ("coordinator", po::value<std::string>(&coordinator)->required()->value_name("URL"), "the coordinator")
      ("job", po::value<std::string>(&job_id)->value_name("ID"), "a job service's job")
      ("json", po::bool_switch(&json), "print the status as JSON")
      ("watch", po::value<double>(&watch)->value_name("SECONDS"), "print again every SECONDS until the job is done")
      ("timeout", po::value<double>(&timeout)->default_value(timeout)->value_name("SECONDS"), "give up after this");
  add_client_flags(flags, client_settings);
  auto values = parse_mode_options(mode, words, flags);
  if (!values) return 0;
  http::url url;
  try {
    url = http::parse_url(coordinator);
  } catch (const std::invalid_argument& e) {
    throw usage_error(std::string("status: --coordinator: ") + e.what());
  }
  auto options = make_client_options(client_settings);
  const auto deadline = seconds_flag(timeout, "timeout");
  const auto interval = values->count("watch") ? seconds_flag(watch, "watch") : std::chrono::milliseconds(0);

  asio::io_context context;
  http::client client(context.get_executor(), url, options);
  auto get = [&](const std::string& target) {
    auto pending = asio::co_spawn(context, client.get(target, deadline), asio::use_future);
    context.restart();
    context.run();
    return pending.get();
  };
  // A one-job coordinator has /v1/job; a job service answers it 404 and has /v1/jobs instead.
  bool service = !job_id.empty();
  for (bool first = true;; first = false) {
    auto answer = get(service ? (job_id.empty() ? "/v1/jobs" : "/v1/jobs/" + job_id) : mr::protocol::job_path);
    if (!service && first && !answer.ok() && answer.error->what == http::call_error::kind::rejected &&
        answer.error->status == 404) {
      service = true;
      answer = get("/v1/jobs");
    }
    if (service && answer.ok()) {
      if (json)
        std::cout << answer.body.dump() << std::endl;
      else
        std::cout << (job_id.empty() ? service_jobs(answer.body) : service_job(answer.body)) << std::flush;
      const auto state = text(answer.body, "state");
      if (!job_id.empty() && (state == "failed" || state == "cancelled")) return 1;
      if (interval.count() == 0 || (!job_id.empty() && state == "done")) return 0;
      std::this_thread::sleep_for(interval);
      if (!json) std::cout << "\n";
      continue;
    }
    if (!answer.ok()) {
      if (first || service || answer.error->what != http::call_error::kind::no_answer) {
        std::cerr << "mrkv status: " << coordinator << ": " << answer.error->describe() << "\n";
        return 1;
      }
      // A one-job coordinator exits as soon as its workers are told the job is over, often between two
      // looks: gone after answering is how a job ends.
      std::cout << "job finished: the coordinator has exited (its outputs are mr-out-* in its work directory)"
                << std::endl;
      return 0;
    }
    if (json)
      std::cout << answer.body.dump() << std::endl;
    else
      std::cout << for_a_person(answer.body) << std::flush;
    if (text(answer.body, "phase") == "failed") return 1;
    if (interval.count() == 0 || text(answer.body, "phase") == "done") return 0;
    std::this_thread::sleep_for(interval);
    if (!json) std::cout << "\n";
  }
}

}  // namespace mrkv::cli
