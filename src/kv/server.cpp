#include "mrkv/kv/server.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/kv/protocol.hpp"
#include "mrkv/kv/write_path.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
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
  const char* op = kind == write_kind::put ? "a put" : kind == write_kind::append ? "an append" : "a delete";
  throw http::request_error(409, "seq " + std::to_string(seq) + " of this client was not " + op +
                                     "; a retry must repeat the same operation; nothing was changed");
}

write_command command_of(write_kind kind, write_request w) {
  write_command command;
  command.kind = kind;
  command.key = std::move(w.key);
  command.value = std::move(w.value);
  if (w.client) command.client = std::move(*w.client);
  command.seq = w.seq;
  command.expected_version = w.version;
  command.lease_ms = w.lease_ms;
  return command;
}

// Put, append and delete: parse, execute through the write path, answer.
asio::awaitable<http::reply> handle_write(write_path& writes, write_kind kind, http::request req) {
  auto w = kind == write_kind::remove ? parse_delete_request(req.body()) : parse_write_request(req.body());
  if (w.lease_ms && kind != write_kind::put)
    throw http::request_error(400, "field 'lease_ms' is allowed on a put only");
  const std::uint64_t seq = w.seq;
  req.body().clear();
  req.body().shrink_to_fit();  // the command holds the only copy needed from here on
  auto result = co_await writes.execute(command_of(kind, std::move(w)));
  if (result.outcome == write_result::status::version_mismatch)
    co_return http::reply{412, version_mismatch_body(result.version)};
  if (!result.answered()) refuse(result, seq, kind);
  if (kind == write_kind::append) co_return http::reply{200, versioned_value_reply_body(result.old_value, result.version)};
  co_return http::reply{200, version_reply_body(result.version)};
}

http::reply list_reply(const store& data, const list_request& r) {
  auto page = data.list(r.prefix, r.after ? std::optional<std::string_view>(*r.after) : std::nullopt, r.limit);
  std::size_t size = 32;
  for (const auto& item : page.items) size += item.key.size() + item.value.size() + 48;
  std::string body;
  body.reserve(size);
  body += "{\"items\":[";
  bool first = true;
  for (const auto& item : page.items) {
    if (!first) body += ',';
    first = false;
    body += "{\"key\":";
    append_json_string(body, item.key);
    body += ",\"value\":";
    append_json_string(body, item.value);
    body += ",\"version\":";
    body += std::to_string(item.version);
    body += '}';
  }
  body += page.more ? "],\"more\":true}" : "],\"more\":false}";
  return http::reply{200, std::move(body)};
}

// The page is read and encoded on the listing thread (a page of 10,000 keys is milliseconds of work),
// and the session resumes on its own I/O thread to send it. `data` outlives the pool (see impl).
asio::awaitable<http::reply> list_elsewhere(const store& data, list_request r) { co_return list_reply(data, r); }

asio::awaitable<http::reply> handle_list(const store& data, asio::thread_pool& pool, http::request req) {
  auto r = parse_list_request(req.body());  // a bad request is a 400 from here, on the I/O thread
  co_return co_await asio::co_spawn(pool, list_elsewhere(data, std::move(r)), asio::use_awaitable);
}

void log_failure(const char* what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error("kvserver", std::string(what) + " stopped: " + ex.what());
  }
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

// Lease expiry: the due expiries go through the write path one after another, like client writes, so
// they are ordered (and logged) with them. A renewal that wins the race makes its expiry a no-op.
asio::awaitable<void> expire_leases(store& data, write_path& writes, std::chrono::milliseconds every) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(every);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    for (auto& expiry : data.due_leases(store::clock::now())) {
      try {
        co_await writes.execute(std::move(expiry));
      } catch (const std::exception& e) {
        // Not applied (e.g. the log could not take it): the next round tries again.
        log::warn("kvserver", std::string("a lease expiry was not applied: ") + e.what());
      }
    }
  }
}

// `writes` is a write_path* or a std::shared_ptr of one: each write route holds a copy. Without a
// `listing` pool, list pages are read on the I/O thread.
template <class WritesHandle>
http::router build_routes(store& data, WritesHandle writes, asio::thread_pool* listing) {
  http::router routes;
  routes.add(http::verb::post, "/v1/get", [&data](const http::request& req) {
    auto r = parse_get_request(req.body());
    auto found = data.read(r.key);
    return http::reply{200, versioned_value_reply_body(found.value, found.version)};
  });
  routes.add_async(http::verb::post, "/v1/put", [writes](http::request req) {
    return handle_write(*writes, write_kind::put, std::move(req));
  });
  routes.add_async(http::verb::post, "/v1/append", [writes](http::request req) {
    return handle_write(*writes, write_kind::append, std::move(req));
  });
  routes.add_async(http::verb::post, "/v1/delete", [writes](http::request req) {
    return handle_write(*writes, write_kind::remove, std::move(req));
  });
  if (listing != nullptr)
    routes.add_async(http::verb::post, "/v1/list",
                     [&data, listing](http::request req) { return handle_list(data, *listing, std::move(req)); });
  else
    routes.add(http::verb::post, "/v1/list",
               [&data](const http::request& req) { return list_reply(data, parse_list_request(req.body())); });
  routes.add(http::verb::get, "/v1/stats", [&data](const http::request&) {
    auto s = data.stats();
    return http::json_reply({{"keys", s.keys}, {"bytes", s.bytes}, {"clients", s.clients}});
  });
  return routes;
}

}  // namespace

http::router make_routes(store& data, write_path& writes, asio::thread_pool* listing) {
  return build_routes(data, &writes, listing);
}

http::router make_routes(store& data) {
  return build_routes(data, std::shared_ptr<write_path>(std::make_shared<memory_write_path>(data)), nullptr);
}

struct server::impl {
  // The store is declared first so it outlives the HTTP server, whose threads and timer use it.
  kv::store data;
  std::unique_ptr<write_path> writes;  // before the HTTP server, whose routes use it
  // The listing thread: one, so listings take at most one core from the I/O threads and queue behind
  // each other rather than occupy them.
  asio::thread_pool listing{1};
  std::chrono::milliseconds sweep_interval;
  std::chrono::milliseconds lease_interval;
  http::server http;

  ~impl() {
    // A durable write path completes its queued writes by posting to the HTTP threads' contexts: stop
    // those threads first, finish the write path while the contexts still exist, then let them go.
    http.stop();
    http.wait();
    // A listing under way posts its page to its session's context when done: let it finish while the
    // contexts (and the store) still exist.
    listing.join();
    writes.reset();
  }

  explicit impl(server_options options)
      : data(options.store),
        writes(options.make_write_path ? options.make_write_path(data) : std::make_unique<memory_write_path>(data)),
        sweep_interval(options.sweep_interval),
        lease_interval(options.lease_interval),
        http(std::move(options.http), "kvserver", make_routes(data, *writes, &listing)) {
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
                 [](std::exception_ptr e) { log_failure("client expiry", e); });
  asio::co_spawn(impl_->http.main_context(), expire_leases(impl_->data, *impl_->writes, impl_->lease_interval),
                 [](std::exception_ptr e) { log_failure("lease expiry", e); });
  return endpoint;
}

void server::stop_on_signals() { impl_->http.stop_on_signals(); }
void server::stop() { impl_->http.stop(); }
void server::wait() { impl_->http.wait(); }
store& server::data() noexcept { return impl_->data; }
write_path& server::writes() noexcept { return *impl_->writes; }
const http::server& server::http() const noexcept { return impl_->http; }

}  // namespace mrkv::kv
