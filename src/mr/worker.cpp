#include "mrkv/mr/worker.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/http/client.hpp"
#include "mrkv/mr/app_cache.hpp"
#include "mrkv/mr/protocol.hpp"
#include "mrkv/mr/task_executor.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <unistd.h>

#include <cstdio>
#include <random>

namespace mrkv::mr {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr milliseconds first_backoff{100};
constexpr milliseconds max_backoff{1'000};

std::string host_name() {
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0 || buffer[0] == '\0') return "unknown";
  std::string name(buffer);
  // The coordinator accepts printable ASCII without spaces only.
  for (char& c : name)
    if (c < 0x21 || c > 0x7e) c = '_';
  return name.substr(0, protocol::max_name_length);
}

std::string fixed(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3f", value);
  return buffer;
}

// Runs on the task thread. Arguments by value: the caller's frame is suspended meanwhile, but only
// values are safe to rely on across a coroutine boundary (CP.53).
// `executor` null: the order's app, from `cache`.
asio::awaitable<counters> run_task(task_executor* executor, app_cache* cache, protocol::order order,
                                   std::filesystem::path workdir, std::chrono::steady_clock::time_point deadline) {
  if (!executor) executor = &cache->get(*order.app);
  if (!order.dir.empty()) workdir /= order.dir;
  task_context context;
  context.attempt = order.attempt;
  context.deadline = deadline;
  if (order.what == protocol::action::map)
    co_return executor->map(order.task, order.input, order.n_reduce, workdir, context);
  co_return executor->reduce(order.task, order.n_map, workdir, context);
}

class worker_loop {
 public:
  // `app` null: any job's app, loaded into a cache of this loop's.
  worker_loop(worker_config config, task_executor* app, asio::thread_pool& pool)
      : config_(std::move(config)), app_(app), cache_(config_.sort_buffer), pool_(pool) {}

  asio::awaitable<worker_summary> run() {
    http::client_options options;
    options.auth_token = config_.auth_token;
    options.tls_ca_file = config_.tls_ca_file;
    client_.emplace(co_await asio::this_coro::executor, config_.coordinator, options);
    summary_.worker_id = config_.id;
    log::info("worker", "worker " + config_.id + " on " + config_.host + " running " +
                            (app_ ? app_->name() : std::string("each job's app")) + " for " +
                            config_.coordinator.scheme + "://" + http::to_string(config_.coordinator.address) +
                            config_.coordinator.base_path);
    const protocol::next_request ask{config_.id, config_.host, config_.poll_wait, config_.app};
    for (;;) {
      auto body = protocol::encode(ask);
      if (!send_app_) body.erase("app");
      auto answer = co_await call(protocol::next_path, std::move(body), config_.poll_wait + config_.call_timeout);
      if (!answer) co_return summary_;
      protocol::order order;
      bool readable = true;
      try {
        order = protocol::decode_order(answer->body);
      } catch (const std::exception& e) {
        log::warn("worker", std::string("coordinator sent an order we cannot read: ") + e.what());
        readable = false;
      }
      if (!readable) {
        co_await pause(first_backoff);
        continue;
      }
      if (order.service && !service_) {
        service_ = true;
        log::info("worker", "the coordinator is a job service: staying up between jobs" +
                                std::string(config_.service_give_up_after ? "" : " and while it is away"));
      }
      switch (order.what) {
        case protocol::action::wait: continue;  // the request itself waited; ask again at once
        case protocol::action::exit:
          log::info("worker", "job done: exiting after " + std::to_string(summary_.tasks_run) + " tasks");
          summary_.why = worker_summary::ending::told_exit;
          co_return summary_;
        default: break;
      }
      const auto kind = order.what == protocol::action::map ? task_kind::map : task_kind::reduce;
      if (!app_ && !order.app) {
        log::error("worker", "the coordinator names no app for its tasks (a one-job coordinator): start this "
                             "worker with --app or --mapper/--reducer");
        summary_.why = worker_summary::ending::app_failed;
        co_return summary_;
      }
      auto outcome = co_await execute(order);
      if (!outcome.ok) {
        // The coordinator hands the task out again at once, and fails the job after a few of these.
        protocol::failed_request failure{config_.id, kind, order.task, order.attempt, outcome.error, order.job};
        auto reply = co_await call(protocol::failed_path, protocol::encode(failure), config_.call_timeout);
        if (!reply) co_return summary_;
        if (summary_.why == worker_summary::ending::app_failed) co_return summary_;
        continue;
      }
      protocol::done_request report{config_.id, kind, order.task, order.attempt, std::move(outcome.counts),
                                    order.job};
      auto reply = co_await call(protocol::done_path, protocol::encode(report), config_.call_timeout);
      if (!reply) co_return summary_;
      ++summary_.tasks_run;
    }
  }

 private:
  static std::string task_name(const protocol::order& o) {
    return std::string(protocol::to_string(o.what)) + " task " + std::to_string(o.task) + " (attempt " +
           std::to_string(o.attempt) + (o.backup ? ", backup" : "") + ")";
  }

  asio::awaitable<void> pause(milliseconds how_long) {
    asio::steady_timer timer(co_await asio::this_coro::executor, how_long);
    co_await timer.async_wait(use_tuple);
  }

  struct task_outcome {
    bool ok = false;
    counters counts;    // when ok
    std::string error;  // when not
  };

  // Runs one task on the task thread.
  asio::awaitable<task_outcome> execute(protocol::order order) {
    const auto started = std::chrono::steady_clock::now();
    // A streaming command is killed when the coordinator would give its task to someone else anyway.
    const auto deadline = order.timeout ? started + *order.timeout : std::chrono::steady_clock::time_point::max();
    log::info("worker", "running " + task_name(order) + (order.what == protocol::action::map ? " on " + order.input : ""));
    task_outcome outcome;
    try {
      outcome.counts = co_await asio::co_spawn(pool_, run_task(app_, &cache_, order, config_.workdir, deadline),
                                               asio::use_awaitable);
    } catch (const app_error& e) {
      ++summary_.tasks_failed;
      outcome.error = e.what();
      if (!app_) {
        // Another job's app may well load: only this task fails.
        log::error("worker", task_name(order) + " failed: its app can't run here: " + e.what());
        co_return outcome;
      }
      log::error("worker", task_name(order) + " failed, and the application can't run here: " + e.what());
      summary_.why = worker_summary::ending::app_failed;
      co_return outcome;
    } catch (const std::exception& e) {
      log::error("worker", task_name(order) + " failed, reporting it: " + e.what());
      ++summary_.tasks_failed;
      outcome.error = e.what();
      co_return outcome;
    }
    log::info("worker", task_name(order) + " finished in " +
                            fixed(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()) +
                            " s");
    outcome.ok = true;
    co_return outcome;
  }

  // One call to the coordinator, retried while nothing answers. nullopt: the worker must end
  // (summary_.why says why). A refused report is logged and counts as an answer.
  asio::awaitable<std::optional<http::call_result>> call(const char* path, nlohmann::json body,
                                                         milliseconds timeout) {
    std::optional<std::chrono::steady_clock::time_point> silent_since;
    auto backoff = first_backoff;
    for (;;) {
      const auto attempt_started = std::chrono::steady_clock::now();
      auto result = co_await client_->post(path, body, timeout);
      if (result.ok()) co_return result;
      const auto& error = *result.error;
      const bool transient = http::worth_retrying(error, http::patience::daemon);
      if (!transient && std::string_view(path) == protocol::next_path && error.status == 400 && body.contains("app") &&
          error.message.find("'app'") != std::string::npos) {
        // A coordinator from before job services refuses members it doesn't know; it runs one job,
        // whose app is ours by construction, so the app need not be said.
        log::info("worker", "the coordinator does not take the worker's app in requests (an older mrkv): "
                            "asking without it");
        send_app_ = false;
        body.erase("app");
        continue;
      }
      if (!transient) {
        const bool report = std::string_view(path) == protocol::done_path || std::string_view(path) == protocol::failed_path;
        if (report && (error.status == 404 || error.status == 409)) {
          log::warn("worker", "coordinator refused our report: " + log::peer_text(error.describe()));
          co_return result;
        }
        log::error("worker", "coordinator refused us: " + log::peer_text(error.describe()));
        summary_.why = worker_summary::ending::refused;
        co_return std::nullopt;
      }
      const auto now = std::chrono::steady_clock::now();
      if (!silent_since) {
        // Silence starts when the first unanswered call was sent, so the worker ends at most one call
        // timeout after the give-up time (the last attempt may begin just before it).
        silent_since = attempt_started;
        if (service_ && !config_.service_give_up_after)
          log::warn("worker", "coordinator did not answer (" + error.describe() + "); retrying until it is back");
        else
          log::warn("worker", "coordinator did not answer (" + error.describe() + "); retrying for up to " +
                                  fixed(std::chrono::duration<double>(service_ ? *config_.service_give_up_after
                                                                               : config_.give_up_after)
                                            .count()) +
                                  " s");
      }
      const auto silent = std::chrono::duration_cast<milliseconds>(now - *silent_since);
      const auto limit = service_ ? config_.service_give_up_after : std::optional<milliseconds>(config_.give_up_after);
      if (!limit) {
        co_await pause(backoff);
        backoff = std::min(backoff * 2, max_backoff);
        continue;
      }
      if (silent >= *limit) {
        log::info("worker", "coordinator has not answered for " + fixed(std::chrono::duration<double>(silent).count()) +
                                " s: taking the job as finished, exiting");
        summary_.why = worker_summary::ending::coordinator_gone;
        co_return std::nullopt;
      }
      co_await pause(std::min(backoff, *limit - silent));
      backoff = std::min(backoff * 2, max_backoff);
    }
  }

  worker_config config_;
  task_executor* app_;
  app_cache cache_;  // used on the task thread only
  asio::thread_pool& pool_;
  bool service_ = false;   // the coordinator said it is a job service
  bool send_app_ = true;   // false once a coordinator refused the "app" member
  worker_summary summary_;
  std::optional<http::client> client_;  // made on the loop's executor when run() starts
};

worker_summary run_loop(worker_config config, task_executor* app) {
  if (config.id.empty()) config.id = random_worker_id();
  if (config.host.empty()) config.host = host_name();
  asio::io_context context(1);
  asio::thread_pool pool(1);
  worker_loop loop(std::move(config), app, pool);
  auto done = asio::co_spawn(context, loop.run(), asio::use_future);
  context.run();
  pool.join();
  return done.get();
}

}  // namespace

std::string random_worker_id() {
  std::random_device device;
  std::uniform_int_distribution<unsigned> nibble(0, 15);
  std::string id = "w-";
  for (int i = 0; i < 12; ++i) id.push_back("0123456789abcdef"[nibble(device)]);
  return id;
}

worker_summary run_worker(worker_config config, application& app) {
  const auto executor = make_executor(app);
  return run_worker(std::move(config), *executor);
}

worker_summary run_worker(worker_config config, task_executor& app) { return run_loop(std::move(config), &app); }

worker_summary run_worker(worker_config config) { return run_loop(std::move(config), nullptr); }

}  // namespace mrkv::mr
