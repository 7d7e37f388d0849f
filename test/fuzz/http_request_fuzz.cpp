// http_request_fuzz: raw bytes off a socket through the server's request handling.
//
// What it drives, exactly as a connection of http::server does (src/http/server.cpp, serve()): a
// beast request_parser<string_body> with the server's limits (body 1 MiB, header 16 KiB) is fed the
// input; every request that parses goes through http::handle_request (router, auth, the route's JSON
// decoding and handler, metrics) run to completion on an io_context. The input may hold several
// pipelined requests (at most 16); like the server, the replay stops at the first parse error or at a
// response that closes the connection. The same bytes go to each route table, each on fresh state:
//   - the MapReduce coordinator's (2 map inputs in a temp dir, 1 reduce task, long polls capped at
//     0 ms so they answer at once), without an auth token, so a pipeline can run a whole job;
//   - the key/value server's (kv::make_routes over an empty kv::store), behind the bearer token
//     "fuzz-token", so that the auth check is fuzzed too (the seeds and the dictionary carry the header);
//   - each plus GET /healthz and GET /metrics, added as http::server adds them.
// For the kvserver the replay also keeps a model of the store (a map, and per client the latest seq, its
// kind and its reply) and checks every answer against it: a get returns the model's value; a put or an
// append with a new seq executes, a repeat of the latest seq replays the first reply without executing,
// a lower seq or the other kind is 409 and changes nothing; GET /v1/stats agrees on keys, bytes, clients.
//
// Invariants checked on every response (abort() if one fails, so libFuzzer reports it as a crash):
//   - handle_request completes without throwing (one left waiting would hang: -timeout reports it);
//   - the status is a known HTTP status code;
//   - no 5xx: with these route tables nothing is ever the server's fault, whatever the bytes;
//   - the body is one JSON object (GET /metrics excepted: Prometheus text), and a 4xx body carries
//     {"error": string}; Content-Length matches the body, and a HEAD response has no body.
//
// Run: scripts/fuzz.sh (all targets, bounded), or by hand after building build/fuzz (MRKV_FUZZ_TRACE=1
// prints each request and response when running single inputs):
//   build/fuzz/test/fuzz/http_request_fuzz -dict=test/fuzz/http_request.dict CORPUS_COPY test/fuzz/corpus/http_request_fuzz
#include "mrkv/common/log.hpp"
#include "mrkv/http/metrics.hpp"
#include "mrkv/http/reply.hpp"
#include "mrkv/http/router.hpp"
#include "mrkv/http/request_handling.hpp"
#include "mrkv/http/server.hpp"
#include "mrkv/kv/server.hpp"
#include "mrkv/kv/store.hpp"
#include "mrkv/mr/coordinator.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace fs = std::filesystem;
using namespace mrkv;

constexpr std::size_t max_requests = 16;
// MRKV_FUZZ_TRACE=1 prints every request and its response (to look at what an input does).
const bool trace = std::getenv("MRKV_FUZZ_TRACE") != nullptr;
constexpr std::size_t body_limit = 1 << 20;    // http::server_config's defaults
constexpr std::uint32_t header_limit = 16 << 10;

[[noreturn]] void invariant_failed(std::string_view service, const http::request& req, const http::response& res,
                                   std::string_view what) {
  std::fprintf(stderr, "\n*** http_request_fuzz: %.*s: %.*s\n    request: %s %.*s\n    response: %u %.*s\n",
               static_cast<int>(service.size()), service.data(), static_cast<int>(what.size()), what.data(),
               std::string(req.method_string()).c_str(), static_cast<int>(req.target().size()), req.target().data(),
               res.result_int(), static_cast<int>(std::min<std::size_t>(res.body().size(), 512)), res.body().data());
  std::abort();
}

// Process-wide: the io_context every request runs on, and the map inputs the coordinator is given.
struct process_state {
  asio::io_context context{1};
  fs::path dir;
  std::vector<std::string> inputs;

  process_state() {
    log::set_threshold(log::level::off);  // handlers log each worker; millions of lines help nobody
    dir = fs::temp_directory_path() / ("mrkv-http-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    for (const char* name : {"pg-a.txt", "pg-b.txt"}) {
      std::ofstream(dir / name) << "the quick brown fox\njumps over the lazy dog\n";
      inputs.push_back((dir / name).string());
    }
  }
  ~process_state() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
};

process_state& state() {
  static process_state s;
  return s;
}

// One route table with everything it refers to, fresh for each input so that a crash replays alone.
struct service {
  std::string name;
  http::server_config config;
  http::router routes;
  std::optional<http::metrics> counters;
  // Checks what this service answered against what it should have (beyond the generic invariants).
  std::function<void(const http::request&, const http::response&)> check_semantics;

  // As http::server's constructor: the built-in routes, then one metrics slot per route.
  void finish_routes() {
    std::string mode = name;
    routes.add_public(http::verb::get, "/healthz", [mode](const http::request&) {
      return http::json_reply({{"status", "ok"}, {"mode", mode}});
    });
    routes.add(http::verb::get, "/metrics", [this](const http::request&) {
      return http::reply{200, counters->render(name), "text/plain; version=0.0.4"};
    });
    std::vector<std::string> names;
    for (const auto& r : routes.routes()) names.push_back(r.path);
    counters.emplace(std::move(names));
  }
};

struct coordinator_service : service {
  mr::coordinator coordinator;

  static mr::coordinator_config job() {
    mr::coordinator_config c;
    c.table.inputs = state().inputs;
    c.table.n_reduce = 1;
    c.max_poll_wait = std::chrono::milliseconds(0);
    return c;
  }

  coordinator_service() : coordinator(job()) {
    name = "coordinator";
    routes = coordinator.routes();
    finish_routes();
  }
};

// What the kvserver's store should hold, kept the simple way (see the file comment).
class kv_model {
 public:
  void check(const http::request& req, const http::response& res) {
    const unsigned status = res.result_int();
    const std::string_view path = req.target().substr(0, req.target().find('?'));
    if (status == 400 || status == 401 || status == 404 || status == 405 || req.method() == http::verb::head) return;
    const auto fail = [&](const std::string& what) { invariant_failed("kvserver", req, res, "model: " + what); };
    const auto answer = nlohmann::json::parse(res.body(), nullptr, false);
    if (path == "/v1/stats") {
      std::size_t bytes = 0;
      for (const auto& [k, v] : values_) bytes += k.size() + v.size();
      if (answer.value("keys", std::size_t{0}) != values_.size() || answer.value("bytes", std::size_t{0}) != bytes ||
          answer.value("clients", std::size_t{0}) != clients_.size())
        fail("stats differ: expected keys " + std::to_string(values_.size()) + ", bytes " + std::to_string(bytes) +
             ", clients " + std::to_string(clients_.size()));
      return;
    }
    if (path != "/v1/get" && path != "/v1/put" && path != "/v1/append" && path != "/v1/delete") return;
    const auto body = nlohmann::json::parse(req.body(), nullptr, false);
    const std::string key = body.at("key").get<std::string>();
    if (path == "/v1/get") {
      if (status != 200) fail("a get answered " + std::to_string(status));
      if (answer.at("value") != lookup(key)) fail("get returned another value than was written");
      if (answer.at("version") != version_of(key)) fail("get returned another version than the model's");
      return;
    }
    const int kind = path == "/v1/put" ? 0 : path == "/v1/append" ? 1 : 2;
    const bool append = kind == 1;
    const std::string value = kind == 2 ? std::string() : body.at("value").get<std::string>();
    std::optional<std::string> client;
    std::uint64_t seq = 0;
    if (body.contains("client") && !body["client"].is_null()) {
      client = body["client"].get<std::string>();
      seq = body.at("seq").get<std::uint64_t>();
    }
    std::optional<std::uint64_t> expected;
    if (body.contains("version") && !body["version"].is_null()) expected = body["version"].get<std::uint64_t>();
    // What the store must do with this write.
    auto entry = client ? clients_.find(*client) : clients_.end();
    if (entry != clients_.end() && (seq < entry->second.seq || (seq == entry->second.seq && entry->second.kind != kind))) {
      if (status != 409) fail("a stale or conflicting write answered " + std::to_string(status) + ", not 409");
      return;
    }
    client_entry reply;
    if (entry != clients_.end() && seq == entry->second.seq) {
      reply = entry->second;  // a retry: not executed again
    } else {
      reply = client_entry{seq, kind, append ? lookup(key) : "", 0, false};
      const std::uint64_t current = version_of(key);
      if (expected && *expected != current) {
        reply.mismatch = true;
        reply.version = current;
      } else if (kind == 2) {
        values_.erase(key);
        versions_.erase(key);
      } else {
        if (append) values_[key] += value;
        else values_[key] = value;
        reply.version = ++versions_[key];
      }
      if (client) clients_[*client] = reply;
    }
    if (reply.mismatch) {
      if (status != 412 || answer.at("version") != reply.version) fail("a failed condition did not answer 412");
      return;
    }
    if (status != 200) fail("a write answered " + std::to_string(status));
    if (answer.at("version") != reply.version) fail("a write answered another version than the model's");
    if (append && answer.at("value") != reply.reply) fail("append returned another old value than the model's");
    if (!append && answer.size() != 1) fail("a put or delete answered something else than {\"version\": N}");
  }

 private:
  struct client_entry {
    std::uint64_t seq = 0;
    int kind = 0;  // put, append, delete
    std::string reply;
    std::uint64_t version = 0;
    bool mismatch = false;
  };
  std::uint64_t version_of(const std::string& key) const {
    auto it = versions_.find(key);
    return it == versions_.end() ? 0 : it->second;
  }
  std::map<std::string, std::uint64_t> versions_;
  std::string lookup(const std::string& key) const {
    auto it = values_.find(key);
    return it == values_.end() ? std::string() : it->second;
  }
  std::map<std::string, std::string> values_;
  std::map<std::string, client_entry> clients_;
};

struct kv_service : service {
  kv::store data;
  kv_model model;

  kv_service() {
    name = "kvserver";
    config.auth_token = "fuzz-token";
    routes = kv::make_routes(data);
    finish_routes();
    check_semantics = [this](const http::request& req, const http::response& res) { model.check(req, res); };
  }
};

http::response run_handler(service& svc, http::request req) {
  auto& ctx = state().context;
  std::optional<http::response> out;
  std::exception_ptr failure;
  asio::co_spawn(ctx, http::handle_request(svc.routes, svc.config, *svc.counters, std::move(req)),
                 [&](std::exception_ptr e, http::response res) {
                   failure = e;
                   if (!e) out = std::move(res);
                 });
  ctx.restart();
  ctx.run();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "\n*** http_request_fuzz: %s: handle_request threw: %s\n", svc.name.c_str(), e.what());
    } catch (...) {
      std::fprintf(stderr, "\n*** http_request_fuzz: %s: handle_request threw a non-exception\n", svc.name.c_str());
    }
    std::abort();
  }
  if (!out) {
    std::fprintf(stderr, "\n*** http_request_fuzz: %s: handle_request did not complete\n", svc.name.c_str());
    std::abort();
  }
  return std::move(*out);
}

void check_response(const service& svc, const http::request& req, const http::response& res) {
  const unsigned status = res.result_int();
  if (bhttp::int_to_status(status) == bhttp::status::unknown || status < 200)
    invariant_failed(svc.name, req, res, "not a known final status code");
  if (status >= 500) invariant_failed(svc.name, req, res, "5xx for a request from the network");

  const bool head = req.method() == http::verb::head;
  std::string_view path = req.target().substr(0, req.target().find('?'));
  if (head) {
    if (!res.body().empty()) invariant_failed(svc.name, req, res, "HEAD response with a body");
    if (res.find(bhttp::field::content_length) == res.end())
      invariant_failed(svc.name, req, res, "HEAD response without Content-Length");
    return;
  }
  if (res.find(bhttp::field::content_length) == res.end() ||
      res[bhttp::field::content_length] != std::to_string(res.body().size()))
    invariant_failed(svc.name, req, res, "Content-Length does not match the body");
  if (path == "/metrics" && status == 200) return;

  if (res[bhttp::field::content_type] != "application/json")
    invariant_failed(svc.name, req, res, "JSON route answered another content type");
  auto body = nlohmann::json::parse(res.body(), nullptr, false);
  if (body.is_discarded()) invariant_failed(svc.name, req, res, "body is not valid JSON");
  if (!body.is_object()) invariant_failed(svc.name, req, res, "body is not a JSON object");
  if (status >= 400) {
    auto error = body.find("error");
    if (error == body.end() || !error->is_string()) invariant_failed(svc.name, req, res, "4xx without {\"error\": string}");
  }
}

// Feeds `rest` to a fresh parser as the server's read loop would; nullopt when no whole request parses
// (the server answers that itself, 400/413/431, without reaching handle_request). Consumes what it parsed.
std::optional<http::request> parse_one(std::string_view& rest) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.body_limit(body_limit);
  parser.header_limit(header_limit);
  boost::system::error_code ec;
  while (!parser.is_done()) {
    const std::size_t used = parser.put(asio::buffer(rest.data(), rest.size()), ec);
    rest.remove_prefix(used);
    if (ec == bhttp::error::need_more || (!ec && used == 0)) {
      if (used == 0 || rest.empty()) {
        // Everything there was has been offered: this is where the peer's stream ends.
        parser.put_eof(ec);
        if (ec) return std::nullopt;
        break;
      }
      ec = {};
      continue;
    }
    if (ec) return std::nullopt;
  }
  if (!parser.is_done()) return std::nullopt;
  return parser.release();
}

void replay(service& svc, std::string_view input) {
  for (std::size_t i = 0; i < max_requests && !input.empty(); ++i) {
    auto req = parse_one(input);
    if (!req) return;
    http::request copy = *req;  // handle_request consumes its request; the checks want to see it
    auto res = run_handler(svc, std::move(*req));
    if (trace)
      std::fprintf(stderr, "%s: %s %s -> %u %s", svc.name.c_str(), std::string(copy.method_string()).c_str(),
                   std::string(copy.target()).c_str(), res.result_int(), res.body().c_str());
    check_response(svc, copy, res);
    if (svc.check_semantics) svc.check_semantics(copy, res);
    if (!res.keep_alive()) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  {
    coordinator_service coordinator;
    replay(coordinator, input);
  }
  {
    kv_service kv;
    replay(kv, input);
  }
  return 0;
}
