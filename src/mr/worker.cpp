#include "mrkv/mr/worker.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/http/client.hpp"
#include "mrkv/http/server.hpp"
#include "mrkv/mr/app_cache.hpp"
#include "mrkv/mr/map_output.hpp"
#include "mrkv/mr/protocol.hpp"
#include "mrkv/mr/shuffle_fetcher.hpp"
#include "mrkv/mr/shuffle_store.hpp"
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

#include <algorithm>
#include <cstdio>
#include <map>
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
                                   std::filesystem::path workdir, task_context context) {
  if (!executor) executor = &cache->get(*order.app);
  if (!order.dir.empty()) workdir /= order.dir;
  if (order.what == protocol::action::map)
    co_return executor->map(order.task, order.input, order.n_reduce, workdir, context);
  co_return executor->reduce(order.task, order.n_map, workdir, context);
}

class worker_loop {
 public:
  // `app` null: any job's app, loaded into a cache of this loop's.
  // `store` null: the worker serves nothing (a shared work directory).
  worker_loop(worker_config config, task_executor* app, asio::thread_pool& pool, shuffle_store* store)
      : config_(std::move(config)), app_(app), cache_(config_.sort_buffer), pool_(pool), store_(store) {}

  asio::awaitable<worker_summary> run() {
    http::client_options options;
    options.auth_token = config_.auth_token;
    options.tls_ca_file = config_.tls_ca_file;
    client_.emplace(co_await asio::this_coro::executor, config_.coordinator, options);
    fetch_options fetching;
    fetching.client = options;
    fetching.client.max_reply_body = std::size_t{4} << 30;  // a partition or an input is bounded by the disk only
    fetching.timeout = config_.call_timeout * 2;
    fetcher_.emplace(co_await asio::this_coro::executor, fetching);
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
      if (store_ && order.live_jobs) drop_map_outputs_except(*order.live_jobs);
      if (order.service && !service_) {
        service_ = true;
        log::info("worker", "the coordinator is a job service: staying up between jobs" +
                                std::string(config_.service_give_up_after ? "" : " and while it is away"));
      }
      switch (order.what) {
        case protocol::action::wait: continue;  // the request itself waited; ask again at once
        case protocol::action::exit:
          if (store_) drop_map_outputs_except({});
          log::info("worker", "job done: exiting after " + std::to_string(summary_.tasks_run) + " tasks");
          summary_.why = worker_summary::ending::told_exit;
          co_return summary_;
        default: break;
      }
      const auto kind = order.what == protocol::action::map ? task_kind::map : task_kind::reduce;
      if (store_ && !order.job.empty()) {
        // The work directory is this worker's own: the job's directory exists only if it makes it.
        std::error_code ec;
        std::filesystem::create_directories(config_.workdir / order.dir, ec);
        store_->add_job(order.job, order.dir);
      }
      if (!app_ && !order.app) {
        log::error("worker", "the coordinator names no app for its tasks (a one-job coordinator): start this "
                             "worker with --app or --mapper/--reducer");
        summary_.why = worker_summary::ending::app_failed;
        co_return summary_;
      }
      if (config_.running &&
          !config_.running->set({config_.id, kind, order.task, order.attempt, "the worker was stopped", order.job, true}))
        co_await stand_still();
      auto outcome = co_await execute(order);
      if (config_.running && !config_.running->clear()) co_await stand_still();
      if (outcome.lost_map) {
        // Not this task's fault: the coordinator hands it out again, and runs the map again if its
        // output is taken for lost.
        protocol::fetch_failed_request lost{config_.id, order.task, order.attempt, *outcome.lost_map, outcome.error,
                                            outcome.gone, order.job};
        auto reply = co_await call(protocol::fetch_failed_path, protocol::encode(lost), config_.call_timeout);
        if (!reply) co_return summary_;
        continue;
      }
      if (!outcome.ok) {
        // The coordinator hands the task out again at once, and fails the job after a few of these.
        protocol::failed_request failure{config_.id, kind, order.task, order.attempt, outcome.error, order.job};
        auto reply = co_await call(protocol::failed_path, protocol::encode(failure), config_.call_timeout);
        if (!reply) co_return summary_;
        if (summary_.why == worker_summary::ending::app_failed) co_return summary_;
        continue;
      }
      if (store_ && kind == task_kind::map) {
        std::filesystem::path dir = config_.workdir;
        if (!order.dir.empty()) dir /= order.dir;
        map_outputs_written_[order.job].push_back(dir / map_output_file_name(order.task));
      }
      protocol::done_request report{config_.id, kind, order.task, order.attempt, std::move(outcome.counts),
                                    order.job, store_ ? config_.advertise : std::string()};
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

  // Deletes the map outputs this worker wrote for jobs not in `live` (a one-job coordinator's job has
  // the id ""): once a job is over no reducer fetches them, and a worker pool that stays up would
  // otherwise keep every job's intermediate data. Reduce outputs stay: its directory may be the
  // coordinator's own, where they are the results.
  void drop_map_outputs_except(const std::vector<std::string>& live) {
    for (auto it = map_outputs_written_.begin(); it != map_outputs_written_.end();) {
      if (std::find(live.begin(), live.end(), it->first) != live.end()) {
        ++it;
        continue;
      }
      std::uintmax_t bytes = 0;
      std::size_t files = 0;
      for (const auto& path : it->second) {
        std::error_code ec;
        const auto size = std::filesystem::file_size(path, ec);
        if (!ec && std::filesystem::remove(path, ec)) {
          bytes += size;
          ++files;
        }
      }
      log::info("worker", "removed " + std::to_string(files) + " map output files (" + std::to_string(bytes) +
                              " bytes) of " + (it->first.empty() ? std::string("the job") : "job " + it->first) +
                              ": it is over");
      it = map_outputs_written_.erase(it);
    }
  }

  // The worker is being stopped (running_task): the stopping thread hands the task back and ends the
  // process; nothing more may be started or reported meanwhile.
  asio::awaitable<void> stand_still() {
    for (;;) co_await pause(std::chrono::hours(1));
  }

  asio::awaitable<void> pause(milliseconds how_long) {
    asio::steady_timer timer(co_await asio::this_coro::executor, how_long);
    co_await timer.async_wait(use_tuple);
  }

  struct task_outcome {
    bool ok = false;
    counters counts;    // when ok
    std::string error;  // when not
    std::optional<int> lost_map;  // a reduce could not fetch this map's output (error says why)
    bool gone = false;            // ... and its holder said it does not have it
  };

  std::string coordinator_url() const {
    return config_.coordinator.scheme + "://" + http::to_string(config_.coordinator.address) +
           config_.coordinator.base_path;
  }

  // A map's input this worker cannot read where the coordinator said: its http(s) URL, or the
  // coordinator's copy. Written beside the task's files; the caller removes it.
  asio::awaitable<std::filesystem::path> fetch_input(const protocol::order& order) {
    const bool url = order.input.starts_with("http://") || order.input.starts_with("https://");
    // Two statements, not a conditional expression: GCC 12 mishandles co_await in the arms of ?:.
    fetched_bytes got;
    if (url)
      got = co_await fetcher_->get(order.input, "");
    else
      got = co_await fetcher_->get(coordinator_url(), protocol::input_target(order.job, order.task));
    if (!got.bytes)
      throw task_file_error(task_file_error::kind::missing, "map task " + std::to_string(order.task) + ": cannot " +
                                                                (url ? "fetch " : "open ") + order.input +
                                                                (url ? "" : " here, nor fetch it") + ": " + got.error);
    std::filesystem::path copy = config_.workdir;
    if (!order.dir.empty()) copy /= order.dir;
    copy /= ".input-" + std::to_string(order.task) + "-" + std::to_string(order.attempt);
    write_file_atomically(copy, *got.bytes);
    log::info("worker", "fetched " + std::to_string(got.bytes->size()) + " bytes of " + order.input +
                            (url ? "" : " from the coordinator"));
    co_return copy;
  }

  static bool readable(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

  // Runs one task on the task thread.
  asio::awaitable<task_outcome> execute(protocol::order order) {
    const auto started = std::chrono::steady_clock::now();
    // A streaming command is killed when the coordinator would give its task to someone else anyway.
    const auto deadline = order.timeout ? started + *order.timeout : std::chrono::steady_clock::time_point::max();
    log::info("worker", "running " + task_name(order) + (order.what == protocol::action::map ? " on " + order.input : ""));
    task_outcome outcome;
    task_context context;
    context.attempt = order.attempt;
    context.deadline = deadline;
    fetched_partitions fetched;
    partition_fetcher from_sources;
    struct remover {
      std::filesystem::path path;
      ~remover() {
        std::error_code ignored;
        if (!path.empty()) std::filesystem::remove(path, ignored);
      }
    } input_copy;
    try {
      // A worker on a shared directory that cannot read its input is misplaced (started in the wrong
      // directory): its failures say so. A shared-nothing one fetches what it does not have.
      const bool url = order.input.starts_with("http://") || order.input.starts_with("https://");
      if (order.what == protocol::action::map && (url || (store_ && !readable(order.input)))) {
        input_copy.path = co_await fetch_input(order);
        context.input_copy = input_copy.path;
      }
      // This worker's own map outputs are read from its disk, as a shared directory's are: a request to
      // itself would cost two HTTP ends and a copy for nothing (with 2 workers, half of every reduce).
      std::size_t own_maps = 0;
      if (store_)
        for (auto& source : order.sources)
          if (source == config_.advertise) {
            source.clear();
            ++own_maps;
          }
      const bool remote = std::any_of(order.sources.begin(), order.sources.end(),
                                      [](const std::string& s) { return !s.empty(); });
      if (order.what == protocol::action::reduce && remote) {
        fetched = co_await fetcher_->partitions(order.job, order.task, order.sources);
        if (fetched.failed_map) {
          outcome.error = fetched.error;
          if (*fetched.failed_map >= 0) outcome.lost_map = fetched.failed_map;
          outcome.gone = fetched.answered;
          log::warn("worker", task_name(order) + ": could not fetch the output of map " +
                                  std::to_string(*fetched.failed_map) + ": " + fetched.error);
          if (outcome.lost_map) co_return outcome;
          throw std::runtime_error(fetched.error);
        }
        log::info("worker", task_name(order) + ": fetched " + std::to_string(fetched.bytes) + " bytes of " +
                                std::to_string(order.sources.size() - own_maps) + " maps' outputs" +
                                (own_maps ? "; " + std::to_string(own_maps) + " read from this worker's disk" : ""));
        std::filesystem::path dir = config_.workdir;
        if (!order.dir.empty()) dir /= order.dir;
        from_sources = [&fetched, &order, dir](int m) {
          auto& image = fetched.images[static_cast<std::size_t>(m)];
          if (order.sources[static_cast<std::size_t>(m)].empty())
            return map_output_reader(dir / map_output_file_name(m)).read(order.task);
          return std::move(image);
        };
        context.fetch = &from_sources;
      }
      outcome.counts = co_await asio::co_spawn(pool_, run_task(app_, &cache_, order, config_.workdir, context),
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
      if (result.ok()) {
        ever_answered_ = true;
        co_return result;
      }
      const auto& error = *result.error;
      const bool transient = http::worth_retrying(error, http::patience::daemon);
      if (!transient) ever_answered_ = true;
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
        const auto seconds = fixed(std::chrono::duration<double>(silent).count());
        if (ever_answered_) {
          log::info("worker", "coordinator has not answered for " + seconds + " s: taking the job as finished, exiting");
          summary_.why = worker_summary::ending::coordinator_gone;
        } else {
          // Not a finished job: a wrong address or a coordinator that never came up.
          log::error("worker", "no coordinator answered at " + config_.coordinator.scheme + "://" +
                                   http::to_string(config_.coordinator.address) + " in " + seconds +
                                   " s (last: " + error.describe() + "): exiting with status 1");
          summary_.why = worker_summary::ending::never_reached;
        }
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
  shuffle_store* store_;
  std::optional<shuffle_fetcher> fetcher_;  // made on the loop's executor when run() starts
  // --serve: the map output files this worker wrote and reported done, by job id ("" for a one-job
  // coordinator's), until the job is over (drop_map_outputs_except()).
  std::map<std::string, std::vector<std::filesystem::path>> map_outputs_written_;
  bool service_ = false;   // the coordinator said it is a job service
  bool send_app_ = true;   // false once a coordinator refused the "app" member
  bool ever_answered_ = false;  // any answer at all, a refusal included: the coordinator exists
  worker_summary summary_;
  std::optional<http::client> client_;  // made on the loop's executor when run() starts
};

worker_summary run_loop(worker_config config, task_executor* app) {
  if (config.id.empty()) config.id = random_worker_id();
  if (config.host.empty()) config.host = host_name();
  // The file server first: the loop reports its address from the first task on.
  std::optional<shuffle_store> store;
  std::optional<http::server> server;
  if (config.serve) {
    store.emplace(config.workdir);
    http::server_config served;
    served.host = config.serve->host;
    served.port = config.serve->port;
    served.threads = 1;
    served.auth_token = config.auth_token;
    served.tls_cert_file = config.tls_cert_file;
    served.tls_key_file = config.tls_key_file;
    served.max_body = 64 << 10;  // it takes no uploads
    server.emplace(served, "worker", store->routes());
    const auto bound = server->start();
    const std::string scheme = config.tls_cert_file.empty() ? "http://" : "https://";
    const std::string url = scheme + http::to_string(http::host_port{config.serve->host, bound.port()});
    if (config.advertise.empty()) {
      const bool everywhere = config.serve->host.empty() || config.serve->host == "0.0.0.0" || config.serve->host == "::";
      config.advertise = everywhere ? scheme + http::to_string(http::host_port{config.host, bound.port()}) : url;
    }
    log::info("worker", "serving map outputs on " + url + ", advertised as " + config.advertise);
    if (config.on_serving) config.on_serving(url);
  }
  asio::io_context context(1);
  asio::thread_pool pool(1);
  worker_loop loop(std::move(config), app, pool, store ? &*store : nullptr);
  auto done = asio::co_spawn(context, loop.run(), asio::use_future);
  context.run();
  pool.join();
  if (server) {
    server->stop();
    server->wait();
  }
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

std::string give_task_back(const worker_config& config, const protocol::failed_request& hand_back,
                           std::chrono::milliseconds timeout) {
  http::client_options options;
  options.auth_token = config.auth_token;
  options.tls_ca_file = config.tls_ca_file;
  asio::io_context context(1);
  http::client client(context.get_executor(), config.coordinator, options);
  const auto body = protocol::encode(hand_back);  // outlives the call, which holds a reference to it
  auto answer = asio::co_spawn(context, client.post(protocol::failed_path, body, timeout), asio::use_future);
  context.run();
  const auto result = answer.get();
  if (!result.ok()) return result.error->describe();
  return result.body.dump();
}

worker_summary run_worker(worker_config config, application& app) {
  const auto executor = make_executor(app);
  return run_worker(std::move(config), *executor);
}

worker_summary run_worker(worker_config config, task_executor& app) { return run_loop(std::move(config), &app); }

worker_summary run_worker(worker_config config) { return run_loop(std::move(config), nullptr); }

}  // namespace mrkv::mr
