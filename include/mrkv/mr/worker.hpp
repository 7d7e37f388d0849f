// This file contains the MapReduce worker loop: ask the coordinator for a task (a long poll), run it,
// report it done, repeat, until the coordinator says "exit" or stops answering.
//
// Tasks run one at a time on a thread of their own while the worker's I/O thread awaits them, so the
// HTTP client's deadlines keep working and a task that never returns leaves the worker stuck exactly
// like the lab's hung workers (the coordinator hands the task to someone else after its timeout).
//
// Failure rules:
//  - No answer from the coordinator (refused, reset, timeout): retried with backoff; once nothing has
//    answered for `give_up_after` (counted from the start of the first unanswered call), the coordinator
//    is taken to be gone (the job is over) and the worker ends, at most one call's timeout later. A
//    worker started with no coordinator therefore ends by itself, as never_reached (exit status 1):
//    nothing says a job was done.
//  - A task that throws (say, an unreadable input, or a streaming command that exits non-zero) is
//    logged and reported failed with its error (POST /v1/tasks/failed): the coordinator hands it out
//    again, and fails the job after a few such reports. An app_error (the application broke its
//    contract) is reported too and then ends the worker, since every task would fail the same way.
//  - A streaming command still running at the task timeout the coordinator sends is killed.
//  - A report the coordinator refuses (4xx) is logged and forgotten: the task was not ours to report.
//
// Shared-nothing mode (config.serve): the worker also runs a small HTTP server for its files, says
// where it is in its reports, and fetches what it cannot read: a reduce's partitions from the workers
// named in its order, a map's input from the coordinator (or from the input's own http:// URL). A
// partition it cannot fetch is reported (POST /v1/tasks/fetch-failed) instead of the task failing.
//
// A job service (job_service.hpp) says so in its orders. Its workers stay up between jobs (it never
// says "exit") and, once they have heard from it, keep retrying while it is away (a restart) for
// `service_give_up_after`, forever by default. A worker with no fixed app (run_worker() without one)
// loads each job's app as its tasks come (app_cache.hpp); for it an app that can't be loaded fails
// that task only, since the next job's app may load. A worker with a fixed app says it in its requests
// for work (protocol.hpp); a coordinator from before job services refuses that member with a 400, and
// the worker then asks without it, as it always did.
#pragma once

#include "mrkv/http/endpoint.hpp"
#include "mrkv/mr/application.hpp"
#include "mrkv/mr/protocol.hpp"
#include "mrkv/mr/task_executor.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace mrkv::mr {

// The task attempt a worker is running, kept for a thread that hands it back when the worker is
// stopped (the worker mode's signal thread): the report that gives it back, or nothing between tasks.
// Once stop() has been called, set() and clear() return false: the loop must then neither start a task
// nor report one (the attempt its killed command failed is the one being handed back), and waits for
// the stopping thread to end the process.
class running_task {
 public:
  bool set(protocol::failed_request hand_back) {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    hand_back_ = std::move(hand_back);
    return true;
  }
  bool clear() {
    std::lock_guard lock(mutex_);
    hand_back_.reset();
    return !stopping_;
  }
  // The attempt running now, if any; from now on the loop stands still.
  std::optional<protocol::failed_request> stop() {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    return hand_back_;
  }

 private:
  std::mutex mutex_;
  bool stopping_ = false;
  std::optional<protocol::failed_request> hand_back_;
};

struct worker_config {
  http::url coordinator;
  std::string auth_token;
  std::string tls_ca_file;  // for an https:// coordinator with a private CA
  std::string id;    // empty: a random one ("w-" and 12 hex digits)
  std::string host;  // empty: gethostname()
  // Where the task files go. Map inputs are opened as the coordinator names them, relative to the
  // current directory, so the worker mode chdir()s here and passes ".".
  std::filesystem::path workdir = ".";
  std::chrono::milliseconds poll_wait{5'000};       // how long one request for work may wait
  std::chrono::milliseconds call_timeout{5'000};    // a report; a request for work gets poll_wait on top
  std::chrono::milliseconds give_up_after{10'000};  // no answer for this long: the coordinator is gone
  // The same for a job service's workers; nullopt: never give up.
  std::optional<std::chrono::milliseconds> service_give_up_after;
  // The fixed app as it is sent to a job service, which then hands this worker only that app's tasks.
  // nullopt with a fixed executor: sent as nothing (any job), as the lab's in-process tests do.
  std::optional<app_spec> app;
  std::size_t sort_buffer = stream_commands{}.sort_buffer;  // for the apps a worker without one loads
  // Shared-nothing mode (`--serve`): the worker serves its map outputs and reduce outputs from its work
  // directory on this address (port 0: any free port; shuffle_store.hpp) and reports `advertise` as
  // where they are (empty: http://HOST:PORT of the bound address, with this machine's host name for
  // an address of all interfaces).
  std::optional<http::host_port> serve;
  std::string advertise;
  // With serve: HTTPS with this PEM certificate chain and key (both or neither). Reducers and the
  // coordinator trust it through their --tls-ca.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Called once the server listens, with its bound URL (the worker mode prints it).
  std::function<void(const std::string& url)> on_serving;
  // When set, the loop records here the attempt it is running (see running_task).
  std::shared_ptr<running_task> running;
};

struct worker_summary {
  enum class ending {
    told_exit,         // the coordinator said the job is done
    coordinator_gone,  // nothing answered for give_up_after, after the coordinator had answered before
    never_reached,     // nothing ever answered, for give_up_after from the start: exit status 1
    refused,           // the coordinator refused our requests (e.g. a wrong token): exit status 1
    app_failed,        // the application broke its contract: exit status 1
  };
  ending why = ending::told_exit;
  int tasks_run = 0;     // finished and reported (whatever the coordinator answered)
  int tasks_failed = 0;  // threw, reported failed
  std::string worker_id;
};

// Runs the worker to its end on its own io_context and task thread; blocks until then.
worker_summary run_worker(worker_config config, task_executor& app);
worker_summary run_worker(worker_config config, application& app);
// A worker with no app of its own: it runs any job of a job service with that job's app. Against a
// one-job coordinator (whose orders name no app) it ends with app_failed.
worker_summary run_worker(worker_config config);

// "w-" and 12 random hex digits.
std::string random_worker_id();

// Sends `hand_back` (a failed report with given_back set) to config's coordinator on an io_context of
// its own, waiting at most `timeout`: what a worker being stopped does with its task, so that the task
// is handed out again at once rather than after the task timeout. Returns the coordinator's answer,
// or why there was none.
std::string give_task_back(const worker_config& config, const protocol::failed_request& hand_back,
                           std::chrono::milliseconds timeout);

}  // namespace mrkv::mr
