#include "mrkv/cli/app_flags.hpp"
#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"
#include "mrkv/common/log.hpp"
#include "mrkv/common/malloc_policy.hpp"
#include "mrkv/mr/application.hpp"
#include "mrkv/mr/child_process.hpp"
#include "mrkv/mr/worker.hpp"

#include <boost/program_options/value_semantic.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <csignal>
#include <cstring>
#include <fstream>
#include <memory>
#include <thread>

namespace mrkv::cli {

namespace po = boost::program_options;

namespace {

// Ends the worker on SIGTERM or SIGINT, first handing its running task back to the coordinator
// (mr::give_task_back), so that the task goes out again at once instead of after the task timeout.
// The signals are blocked in every thread and taken here with sigwait, where a network call is
// allowed, unlike in a handler. As PID 1 in a container a signal with no handler is ignored, so
// `docker stop` / `podman stop` would wait its whole timeout and then send SIGKILL: this ends the
// worker at once (the hand-back waits at most 2 s), with the default action's status 128+N. A
// streaming command's process group goes too: it would otherwise run on for a task nobody waits for.
// Construct it before any other thread starts, so that they all inherit the blocked signals.
class stop_on_signals {
 public:
  stop_on_signals(mr::worker_config config, std::shared_ptr<mr::running_task> running)
      : config_(std::move(config)), running_(std::move(running)) {
    // A handler too, though the signals stay blocked: as PID 1 a signal whose action is the default
    // would not even be queued, were it ever unblocked.
    std::signal(SIGTERM, exit_at_once);
    std::signal(SIGINT, exit_at_once);
    sigset_t set = signals();
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([this] { wait_and_stop(); });
  }
  stop_on_signals(const stop_on_signals&) = delete;
  stop_on_signals& operator=(const stop_on_signals&) = delete;
  ~stop_on_signals() {
    // SIGUSR2 only wakes the thread for the worker's normal end.
    ::pthread_kill(thread_.native_handle(), SIGUSR2);
    thread_.join();
  }

 private:
  static void exit_at_once(int signo) {
    mr::kill_running_commands();
    ::_exit(128 + signo);
  }
  static sigset_t signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR2);
    return set;
  }

  void wait_and_stop() {
    const sigset_t set = signals();
    int signo = 0;
    while (::sigwait(&set, &signo) != 0) {
    }
    if (signo == SIGUSR2) return;
    // Stop the loop first: its command, killed next, must not be reported as the task's failure.
    auto task = running_->stop();
    mr::kill_running_commands();
    const std::string name = signo == SIGTERM ? "SIGTERM" : "SIGINT";
    if (task) {
      const std::string what = std::string(mr::to_string(task->kind)) + " task " + std::to_string(task->task) +
                               " (attempt " + std::to_string(task->attempt) + ")";
      task->error = "the worker was stopped by " + name;
      log::info("worker", "stopped by " + name + ": handing " + what + " back to the coordinator");
      log::info("worker", "coordinator answered: " +
                              log::peer_text(mr::give_task_back(config_, *task, std::chrono::seconds(2))));
    } else {
      log::info("worker", "stopped by " + name + " between tasks");
    }
    ::_exit(128 + signo);
  }

  mr::worker_config config_;
  std::shared_ptr<mr::running_task> running_;
  std::thread thread_;
};

}  // namespace

int run_worker(const args& words) {
  const std::string help_summary =
      std::string("Asks the coordinator at URL for MapReduce tasks, runs them with APP (a built-in name, 'wc' or\n"
                  "'indexer', or the path of a plugin .so) or with streaming commands in the shared work\n"
                  "directory, and reports each done, or failed with its error (the coordinator retries it\n"
                  "elsewhere and fails the job after 4 reported failures of one task).\n"
                  "Exits 0 when the coordinator says the job is over, or when it has not answered for the\n"
                  "give-up time (it is gone); 1 when no coordinator ever answered in the give-up time (a wrong\n"
                  "URL, or none came up). Exits 2 when APP can't be loaded. Stopped by SIGTERM or SIGINT, it\n"
                  "hands its running task back to the coordinator (which hands it out again at once) and exits\n"
                  "128+N.\n"
                  "A coordinator run as a job service (no INPUT) never says the job is over: its workers stay\n"
                  "up between jobs and, once they have heard from it, keep retrying while it is away (a restart)\n"
                  "unless --give-up-after is given. Without --app (and --mapper) the worker serves any job of a\n"
                  "job service and loads each job's app itself, once, keeping it for the next task (a relative\n"
                  "plugin path is relative to the work directory); with one it serves only that app's jobs.\n"
                  "Shared-nothing mode (--serve): the work directory is this worker's own; it serves its map\n"
                  "outputs to reducers over HTTP, fetches the partitions it reduces from the workers that hold\n"
                  "them and an input it cannot read from the coordinator (or from its http:// URL), and the\n"
                  "coordinator fetches its reduce outputs. A map output that can no longer be fetched (its\n"
                  "worker died) is run again elsewhere. Built-in and plugin apps only.\n") +
      streaming_help;
  mode_info mode{"worker",
                 "mrkv worker --coordinator URL [--app APP | --mapper CMD --reducer CMD [--combiner CMD]] "
                 "[--workdir DIR] [--serve HOST:PORT [--advertise URL] [--tls-cert FILE --tls-key FILE]]",
                 help_summary};
  std::string coordinator;
  app_flags app_settings;
  std::string workdir = ".";
  client_flags client_settings;
  std::string id;
  double give_up = 10;
  double poll_wait = 5;
  double call_timeout = 5;
  std::string serve;
  std::string advertise;
  std::string tls_cert;
  std::string tls_key;
  po::options_description flags("worker options");
  flags.add_options()
      ("coordinator", po::value<std::string>(&coordinator)->required()->value_name("URL"),
       "the coordinator, e.g. http://127.0.0.1:7700")
      ("workdir", po::value<std::string>(&workdir)->default_value(workdir)->value_name("DIR"),
       "the job's shared work directory; the worker runs in it")
      ("give-up-after", po::value<double>(&give_up)->default_value(give_up)->value_name("SECONDS"),
       "exit 0 once the coordinator has not answered for this long")
      ("poll-wait", po::value<double>(&poll_wait)->default_value(poll_wait)->value_name("SECONDS"),
       "how long one request for work may wait at the coordinator")
      ("call-timeout", po::value<double>(&call_timeout)->default_value(call_timeout)->value_name("SECONDS"),
       "how long to wait for any other answer from the coordinator")
      ("id", po::value<std::string>(&id)->value_name("ID"), "this worker's id (default: a random one)")
      ("serve", po::value<std::string>(&serve)->value_name("HOST:PORT"),
       "shared-nothing mode: keep map outputs in this worker's own --workdir and serve them to reducers "
       "on HOST:PORT (port 0: any free port); prints 'mrkv worker serving on http://HOST:PORT'")
      ("advertise", po::value<std::string>(&advertise)->value_name("URL"),
       "with --serve: the URL other workers and the coordinator reach this worker at (default: the --serve "
       "address, with this host's name for 0.0.0.0)")
      ("tls-cert", po::value<std::string>(&tls_cert)->value_name("FILE"),
       "with --serve: serve HTTPS with this PEM certificate chain (needs --tls-key); the coordinator and the "
       "other workers trust it with their --tls-ca")
      ("tls-key", po::value<std::string>(&tls_key)->value_name("FILE"), "PEM private key for --tls-cert");
  add_app_flags(flags, app_settings);
  add_client_flags(flags, client_settings);
  auto values = parse_mode_options(mode, words, flags);
  if (!values) return 0;

  mr::worker_config config;
  try {
    config.coordinator = http::parse_url(coordinator);
  } catch (const std::invalid_argument& e) {
    throw usage_error(std::string("worker: --coordinator: ") + e.what());
  }
  auto connection = make_client_options(client_settings);
  config.auth_token = connection.auth_token;
  config.tls_ca_file = connection.tls_ca_file;
  config.give_up_after = seconds_flag(give_up, "give-up-after");
  config.poll_wait = seconds_flag(poll_wait, "poll-wait");
  config.call_timeout = seconds_flag(call_timeout, "call-timeout");
  config.id = id;
  if (!serve.empty()) {
    try {
      config.serve = http::parse_host_port(serve);
    } catch (const std::invalid_argument& e) {
      throw usage_error(std::string("worker: --serve: ") + e.what());
    }
    config.on_serving = [](const std::string& url) {
      std::printf("mrkv worker serving on %s\n", url.c_str());
      std::fflush(stdout);
    };
  }
  if (!advertise.empty()) {
    if (serve.empty()) throw usage_error("worker: --advertise needs --serve");
    if (!advertise.starts_with("http://") && !advertise.starts_with("https://"))
      throw usage_error("worker: --advertise: must be an http:// or https:// URL");
    while (advertise.ends_with('/')) advertise.pop_back();
    config.advertise = advertise;
  }
  if (!tls_cert.empty() || !tls_key.empty()) {
    if (serve.empty()) throw usage_error("worker: --tls-cert and --tls-key need --serve");
    if (tls_cert.empty() || tls_key.empty()) throw usage_error("worker: --tls-cert and --tls-key go together");
    for (const auto* file : {&tls_cert, &tls_key})
      if (!std::ifstream(*file)) throw usage_error("worker: cannot read " + *file);
    config.tls_cert_file = tls_cert;
    config.tls_key_file = tls_key;
  }
  if (!(*values)["give-up-after"].defaulted()) config.service_give_up_after = config.give_up_after;
  const bool any_app = app_settings.app.empty() && app_settings.mapper.empty() && app_settings.reducer.empty() &&
                       app_settings.combiner.empty();
  std::unique_ptr<mr::task_executor> app;
  keep_freed_memory_for_reuse();
  if (!any_app) {
    const auto spec = make_app_spec(app_settings, "worker");
    // The app first, so that a relative plugin path means what the user typed; then into the work
    // directory, where the tasks' files live and where the lab's probe plugins look.
    try {
      app = mr::make_executor(spec);
    } catch (const mr::app_error& e) {
      throw usage_error(std::string("worker: ") + e.what());
    }
    config.app = spec;
  } else {
    if (!std::isfinite(app_settings.sort_buffer_mib) || app_settings.sort_buffer_mib < 1 ||
        app_settings.sort_buffer_mib > 65536)
      throw usage_error("worker: --sort-buffer: must be between 1 and 65536 MiB");
    config.sort_buffer = static_cast<std::size_t>(app_settings.sort_buffer_mib * 1024 * 1024);
  }
  if (::chdir(workdir.c_str()) != 0)
    throw usage_error("worker: cannot enter work directory " + workdir + ": " + std::strerror(errno));
  config.workdir = ".";

  config.running = std::make_shared<mr::running_task>();
  const stop_on_signals stopper(config, config.running);
  auto summary = app ? mr::run_worker(std::move(config), *app) : mr::run_worker(std::move(config));
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  log::info("worker", "peak resident memory " + std::to_string(usage.ru_maxrss / 1024) + " MiB");
  switch (summary.why) {
    case mr::worker_summary::ending::told_exit:
    case mr::worker_summary::ending::coordinator_gone: return 0;
    default: return 1;
  }
}

}  // namespace mrkv::cli
