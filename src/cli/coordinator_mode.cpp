#include "mrkv/cli/coordinator_flags.hpp"
#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"
#include "mrkv/common/log.hpp"
#include "mrkv/http/server.hpp"
#include "mrkv/mr/coordinator.hpp"
#include "mrkv/mr/job_files.hpp"
#include "mrkv/mr/job_service.hpp"


#include <filesystem>
#include <fstream>

namespace mrkv::cli {

namespace po = boost::program_options;

namespace {

// Opens every input the way a worker will (relative to the shared work directory) so that a typo is
// one line and exit 2 now, not a task that fails on every worker until someone notices.
void check_inputs(const std::filesystem::path& workdir, const std::vector<std::string>& inputs) {
  std::error_code ec;
  if (!std::filesystem::is_directory(workdir, ec))
    throw usage_error("coordinator: work directory " + workdir.string() + " does not exist");
  for (const auto& input : inputs)
    if (auto problem = mr::input_problem(workdir, input)) throw usage_error("coordinator: " + *problem);
}

// Removes what an earlier job left in the work directory (job_files.hpp), after refusing an input that
// is such a file there: chaining `mrkv coordinator mr-out-*` in one directory would delete the inputs,
// or have this job's outputs overwrite them while they are read.
void clear_earlier_job(const std::filesystem::path& workdir, const std::vector<std::string>& inputs) {
  std::error_code ec;
  const auto dir = std::filesystem::weakly_canonical(workdir, ec);
  for (const auto& input : inputs) {
    if (mr::is_input_url(input)) continue;
    const auto path = std::filesystem::weakly_canonical(workdir / input, ec);
    const auto name = path.filename().string();
    if (!ec && path.parent_path() == dir && (mr::is_output_file_name(name) || mr::is_intermediate_file_name(name)))
      throw usage_error("coordinator: input " + input + " is a job file in the work directory, which a job clears "
                        "and writes: move it, or use another --workdir");
  }
  try {
    const auto removed = mr::remove_job_files(workdir, mr::job_file_kinds::outputs_and_intermediate);
    if (removed.files > 0)
      log::info("coordinator", "removed " + std::to_string(removed.files) + " files an earlier job left in " +
                                   workdir.string() + " (" + removed.first_name + (removed.files > 1 ? ", ..." : "") +
                                   ")");
  } catch (const std::exception& e) {
    throw usage_error(std::string("coordinator: cannot clear the files of an earlier job: ") + e.what());
  }
}

// With no INPUT: the job service (job_service.hpp) until SIGINT/SIGTERM.
int run_service(http::server_config config, mr::service_config service_config) {
  std::error_code ec;
  if (!std::filesystem::is_directory(service_config.workdir, ec))
    throw usage_error("coordinator: work directory " + service_config.workdir.string() + " does not exist");
  mr::job_service service(std::move(service_config));  // outlives the server
  config.extra_metrics = [&service](const std::string& mode) { return service.metrics(mode); };
  http::server http_server(config, "coordinator", service.routes());
  service.attach(http_server.main_context().get_executor());
  http_server.stop_on_signals();
  auto endpoint = http_server.start();
  warn_if_exposed("coordinator", config);
  log::info("coordinator", "running as a job service: submit jobs with POST /v1/jobs or mrkv submit");
  announce_listening("coordinator", endpoint, config);
  http_server.wait();
  log::info("coordinator", "job service stopped");
  return 0;
}

}  // namespace

int run_coordinator(const args& words) {
  mode_info mode{
      "coordinator",
      "mrkv coordinator [--listen HOST:PORT] [--reduce N] [--task-timeout SECONDS] [--workdir DIR] [INPUT...]",
      "Runs one MapReduce job: one map task per INPUT and N reduce tasks, handed out over HTTP to\n"
      "'mrkv worker' processes that share the work directory. INPUT paths are passed to the workers as\n"
      "given; relative ones are relative to the work directory. A task not reported done within the task\n"
      "timeout goes to another worker; near the end of a phase, a task running far longer than its\n"
      "finished siblings gets a backup copy on an idle worker. A task whose worker reports it failed goes\n"
      "out again at once; after 4 attempts of one task reported failed (attempts lost to a dead or silent\n"
      "worker never count) the job fails with that task's last error, and the coordinator exits 1 once\n"
      "the workers have been told. Exits 0 once every reduce task is done and the workers have been told\n"
      "to exit (or the exit grace period passed).\n"
      "With no INPUT it runs as a job service and stays up: jobs are submitted with POST /v1/jobs (or\n"
      "'mrkv submit'), run one after another in the order they came, and are listed by GET /v1/jobs and\n"
      "the web page at GET /; --reduce and --task-timeout are then the defaults of a job that does not\n"
      "set them. A job's outputs go to DIR/jobs/ID/mr-out-R, its record to DIR/jobs/ID/job.json; attempts\n"
      "lost to a dead or silent worker count as failed ones there, so a job fails after its max_attempts\n"
      "(default 4) and the service goes on with the next.\n"
      "Files of an earlier job in the work directory (mr-out-R, mr-M.map, a streaming app's mr-M-index and\n"
      "mr-M-aA-sK, the lab's mr-M-R, unfinished .tmp-mr-*) are removed at start, so its outputs never mix\n"
      "with this job's; an INPUT of that shape there is refused. The intermediate files go when the job is\n"
      "done, unless --keep-intermediate (a failed job keeps them for a look)."};
  coordinator_flags f;
  auto& [server, n_reduce, task_timeout, poll_wait, exit_grace, backup_after, no_backup, keep_intermediate, workdir,
         inputs, tls_ca, flags] = f;
  po::positional_options_description positional;
  positional.add("input", -1);
  auto values = parse_mode_options(mode, words, flags, &positional);
  if (!values) return 0;

  if (n_reduce < 1 || n_reduce > 1'000'000) throw usage_error("coordinator: --reduce must be in [1, 1000000]");
  auto config = make_server_config(server);
  if (config.threads != 1) log::info("coordinator", "--threads ignored: the coordinator keeps its tables on one thread");
  config.threads = 1;
  http::client_options worker_calls;
  worker_calls.auth_token = config.auth_token;
  if (!tls_ca.empty()) {
    if (!std::ifstream(tls_ca)) throw usage_error("coordinator: cannot read CA file " + tls_ca);
    worker_calls.tls_ca_file = tls_ca;
  }

  if (inputs.empty()) {
    mr::service_config service;
    service.workdir = workdir;
    service.defaults.n_reduce = n_reduce;
    service.defaults.task_timeout = seconds_flag(task_timeout, "task-timeout");
    service.backup.enabled = !no_backup;
    if (values->count("backup-after")) service.backup_min_age = seconds_flag(backup_after, "backup-after");
    service.max_poll_wait = seconds_flag(poll_wait, "poll-wait");
    service.worker_calls = worker_calls;
    return run_service(config, service);
  }

  mr::coordinator_config job;
  job.table.inputs = inputs;
  job.table.n_reduce = n_reduce;
  job.table.task_timeout = seconds_flag(task_timeout, "task-timeout");
  job.table.backup.enabled = !no_backup;
  if (values->count("backup-after"))
    job.table.backup.min_age = std::chrono::milliseconds(seconds_flag(backup_after, "backup-after"));
  job.max_poll_wait = seconds_flag(poll_wait, "poll-wait");
  job.exit_grace = seconds_flag(exit_grace, "exit-grace");
  job.workdir = workdir;
  job.worker_calls = worker_calls;
  check_inputs(workdir, inputs);
  clear_earlier_job(workdir, inputs);

  mr::coordinator coordinator(job);  // outlives the server (see coordinator.hpp)
  http::server http_server(config, "coordinator", coordinator.routes());
  coordinator.attach(http_server.main_context().get_executor(), [&http_server] { http_server.stop(); });
  http_server.stop_on_signals();
  auto endpoint = http_server.start();
  warn_if_exposed("coordinator", config);
  log::info("coordinator", std::to_string(inputs.size()) + " map tasks, " + std::to_string(n_reduce) +
                               " reduce tasks, task timeout " + log::duration(job.table.task_timeout) + ", backup tasks " +
                               (no_backup ? "off" : "on"));
  announce_listening("coordinator", endpoint, config);
  http_server.wait();
  if (coordinator.job_failed()) {
    log::error("coordinator", "exiting: job failed: " + log::peer_text(coordinator.failure(), 1000));
    return 1;
  }
  if (!coordinator.job_done()) {
    log::warn("coordinator", "stopped before the job was done");
    return 1;
  }
  if (!keep_intermediate) {
    try {
      const auto removed = mr::remove_job_files(workdir, mr::job_file_kinds::intermediate);
      if (removed.files > 0)
        log::info("coordinator", "removed the job's " + std::to_string(removed.files) + " intermediate files (" +
                                     std::to_string(removed.bytes) + " bytes)");
    } catch (const std::exception& e) {
      log::warn("coordinator", std::string("cannot remove the job's intermediate files: ") + e.what());
    }
  }
  log::info("coordinator", "exiting: job done");
  return 0;
}

}  // namespace mrkv::cli
