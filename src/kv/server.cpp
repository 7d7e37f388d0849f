#include "mrkv/kv/server.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/kv/durable.hpp"
#include "mrkv/kv/protocol.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <exception>

namespace mrkv::kv {

namespace asio = boost::asio;

namespace {

[[noreturn]] void refuse(const write_result& result, std::uint64_t seq, write_kind kind) {
  if (result.outcome == write_result::status::stale)
    throw http::request_error(409, "seq " + std::to_string(seq) + " is older than this client's latest seq " +
                                       std::to_string(result.latest_seq) + "; nothing was changed");
  const char* was = kind == write_kind::put ? "an append" : "a put";
  throw http::request_error(409, "seq " + std::to_string(seq) + " of this client was " + was +
                                     "; a retry must repeat the same operation; nothing was changed");
}

write_result apply(store& data, write_kind kind, const http::request& req) {
  auto w = parse_write_request(req.body());
  std::optional<request_id> id;
  if (w.client) id = request_id{*w.client, w.seq};
  auto result = kind == write_kind::put ? data.put(std::move(w.key), std::move(w.value), id)
                                        : data.append(std::move(w.key), std::move(w.value), id);
  if (!result.answered()) refuse(result, w.seq, kind);
  return result;
}

asio::awaitable<void> expire_periodically(store& data, std::chrono::milliseconds every) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(every);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    if (auto n = data.expire_idle_clients(); n > 0)
      log::info("kvserver", "expired " + std::to_string(n) + " idle clients from the duplicate table");
  }
}

// The same checks as apply(), with the write made durable first.
asio::awaitable<write_result> apply_durably(durable_log& log, write_kind kind, const http::request& req) {
  auto w = parse_write_request(req.body());
  const auto seq = w.seq;
  write_result result;
  try {
    result = co_await log.write(kind, std::move(w.key), std::move(w.value), std::move(w.client), w.seq);
  } catch (const not_durable& e) {
    throw http::request_error(503, std::string(e.what()) + "; nothing was changed");
  }
  if (!result.answered()) refuse(result, seq, kind);
  co_return result;
}

}  // namespace

http::router make_routes(store& data, durable_log* durable) {
  http::router routes;
  routes.add(http::verb::post, "/v1/get", [&data](const http::request& req) {
    auto r = parse_get_request(req.body());
    return http::reply{200, value_reply_body(data.get(r.key))};
  });
  if (durable) {
    routes.add_async(http::verb::post, "/v1/put", [durable](http::request req) -> asio::awaitable<http::reply> {
      co_await apply_durably(*durable, write_kind::put, req);
      co_return http::reply{200, "{}"};
    });
    routes.add_async(http::verb::post, "/v1/append", [durable](http::request req) -> asio::awaitable<http::reply> {
      auto result = co_await apply_durably(*durable, write_kind::append, req);
      co_return http::reply{200, value_reply_body(result.old_value)};
    });
  }
  if (!durable) routes.add(http::verb::post, "/v1/put", [&data](const http::request& req) {
    apply(data, write_kind::put, req);
    return http::reply{200, "{}"};
  });
  if (!durable) routes.add(http::verb::post, "/v1/append", [&data](const http::request& req) {
    auto result = apply(data, write_kind::append, req);
    return http::reply{200, value_reply_body(result.old_value)};
  });
  routes.add(http::verb::get, "/v1/stats", [&data](const http::request&) {
    auto s = data.stats();
    return http::json_reply({{"keys", s.keys}, {"bytes", s.bytes}, {"clients", s.clients}});
  });
  return routes;
}

struct server::impl {
  // The store is declared first so it outlives the HTTP server, whose threads and timer use it.
  kv::store data;
  std::unique_ptr<durable_log> durable;  // recovered before the routes exist
  std::chrono::milliseconds sweep_interval;
  http::server http;

  ~impl() {
    // The log completes its queued writes by posting to the HTTP threads' contexts: stop those threads
    // first, finish the log while the contexts still exist, then let them go.
    http.stop();
    http.wait();
    durable.reset();
  }

  static std::unique_ptr<durable_log> recover(kv::store& data, server_options& options) {
    if (!options.durability) return nullptr;
    auto log = std::make_unique<durable_log>(data, *options.durability);
    options.http.extra_metrics = [wal = &log->wal()](const std::string& mode) { return wal->render_metrics(mode); };
    return log;
  }

  explicit impl(server_options options)
      : data(options.store),
        durable(recover(data, options)),
        sweep_interval(options.sweep_interval),
        http(std::move(options.http), "kvserver", make_routes(data, durable.get())) {
    if (sweep_interval.count() <= 0) {
      auto quarter = std::chrono::duration_cast<std::chrono::milliseconds>(data.options().client_ttl) / 4;
      sweep_interval = std::clamp<std::chrono::milliseconds>(quarter, std::chrono::seconds(1), std::chrono::seconds(60));
    }
  }
};

server::server(server_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

server::~server() {
  stop();
  wait();
}

asio::ip::tcp::endpoint server::start() {
  auto endpoint = impl_->http.start();
  asio::co_spawn(impl_->http.main_context(), expire_periodically(impl_->data, impl_->sweep_interval),
                 [](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     log::error("kvserver", std::string("client expiry stopped: ") + ex.what());
                   }
                 });
  return endpoint;
}

void server::stop_on_signals() { impl_->http.stop_on_signals(); }
void server::stop() { impl_->http.stop(); }
void server::wait() { impl_->http.wait(); }
store& server::data() noexcept { return impl_->data; }
durable_log* server::durable() noexcept { return impl_->durable.get(); }
const http::server& server::http() const noexcept { return impl_->http; }

}  // namespace mrkv::kv
