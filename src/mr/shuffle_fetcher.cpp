#include "mrkv/mr/shuffle_fetcher.hpp"

#include "mrkv/http/endpoint.hpp"
#include "mrkv/http/router.hpp"
#include "mrkv/mr/protocol.hpp"
#include "mrkv/mr/task_files.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <exception>

namespace mrkv::mr {

namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool intact_partition(std::string_view image) { return intermediate_intact(image); }

}  // namespace

shuffle_fetcher::shuffle_fetcher(asio::any_io_executor executor, fetch_options options)
    : executor_(std::move(executor)), options_(std::move(options)) {}

shuffle_fetcher::~shuffle_fetcher() = default;

std::unique_ptr<http::client> shuffle_fetcher::take(const std::string& source) {
  auto& pool = idle_[source];
  if (!pool.empty()) {
    auto client = std::move(pool.back());
    pool.pop_back();
    return client;
  }
  return std::make_unique<http::client>(executor_, http::parse_url(source), options_.client);
}

void shuffle_fetcher::give_back(const std::string& source, std::unique_ptr<http::client> client) {
  if (options_.keep_alive) idle_[source].push_back(std::move(client));
}

asio::awaitable<fetched_bytes> shuffle_fetcher::get(std::string source, std::string target,
                                                    bool (*check)(std::string_view)) {
  fetched_bytes out;
  std::unique_ptr<http::client> client;
  try {
    client = take(source);
  } catch (const std::exception& e) {
    out.error = source + ": " + e.what();
    co_return out;
  }
  auto pause = options_.pause;
  for (int attempt = 1; attempt <= options_.tries; ++attempt) {
    if (attempt > 1) {
      asio::steady_timer timer(executor_, pause);
      co_await timer.async_wait(use_tuple);
      pause *= 2;
    }
    auto reply = co_await client->call_raw(http::verb::get, target, "", options_.timeout);
    if (!reply.answered()) {
      out.answered = false;
      out.error = reply.error->describe();
      client->close();
      continue;
    }
    if (reply.status == 200 && (!check || check(reply.body))) {
      out.bytes = std::move(reply.body);
      give_back(source, std::move(client));
      co_return out;
    }
    out.answered = true;
    if (reply.status == 200) {
      out.error = "the " + std::to_string(reply.body.size()) + " bytes fetched fail their checksum";
      continue;
    }
    // The server's {"error": ...} when it sent one.
    std::string why = reply.body.substr(0, 300);
    try {
      why = nlohmann::json::parse(reply.body).value("error", why);
    } catch (const std::exception&) {
    }
    out.error = "HTTP " + std::to_string(reply.status) + ": " + why;
    if (reply.status < 500) break;
  }
  give_back(source, std::move(client));
  out.error = "GET " + source + target + " failed after retrying: " + out.error;
  co_return out;
}

asio::awaitable<std::string> shuffle_fetcher::fetch_output(std::string location, std::string job, int reduce,
                                                           std::filesystem::path target) {
  auto got = co_await get(std::move(location), protocol::output_target(job, reduce));
  if (!got.bytes) co_return got.error;
  try {
    write_file_atomically(target, *got.bytes);
  } catch (const task_file_error& e) {
    co_return e.what();
  }
  co_return std::string();
}

asio::awaitable<fetched_partitions> shuffle_fetcher::partitions(std::string job, int reduce,
                                                                std::vector<std::string> sources) {
  struct shared {
    explicit shared(asio::any_io_executor ex) : done(std::move(ex), asio::steady_timer::time_point::max()) {}
    fetched_partitions result;
    std::size_t next = 0;
    int running = 0;
    asio::steady_timer done;
  };
  auto state = std::make_shared<shared>(executor_);
  state->result.images.resize(sources.size());
  auto lane = [this, state, &job, reduce, &sources]() -> asio::awaitable<void> {
    while (!state->result.failed_map && state->next < sources.size()) {
      const std::size_t m = state->next++;
      if (sources[m].empty()) continue;
      auto got = co_await get(sources[m], protocol::partition_target(job, static_cast<int>(m), reduce),
                              &intact_partition);
      if (!got.bytes) {
        if (!state->result.failed_map) {
          state->result.failed_map = static_cast<int>(m);
          state->result.error = std::move(got.error);
          state->result.answered = got.answered;
        }
        co_return;
      }
      state->result.bytes += got.bytes->size();
      state->result.images[m] = std::move(*got.bytes);
    }
  };
  const int lanes = std::max(1, options_.parallel);
  for (int i = 0; i < lanes; ++i) {
    ++state->running;
    asio::co_spawn(executor_, lane(), [state](std::exception_ptr e) {
      if (e && !state->result.failed_map) {
        state->result.failed_map = -1;
        state->result.error = "a fetch failed unexpectedly";
      }
      if (--state->running == 0) state->done.cancel();
    });
  }
  // `job` and `sources` live in this frame, which waits here until every lane has ended.
  if (state->running > 0) co_await state->done.async_wait(use_tuple);
  co_return std::move(state->result);
}

}  // namespace mrkv::mr
