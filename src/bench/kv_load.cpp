#include "mrkv/bench/kv_load.hpp"

#include "mrkv/http/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace mrkv::bench {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

void parse_mix(const std::string& mix, kv_load_config& config) {
  std::vector<unsigned> weights;
  std::stringstream in(mix);
  std::string part;
  while (std::getline(in, part, ':')) {
    std::size_t used = 0;
    unsigned long w = 0;
    try {
      w = std::stoul(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != part.size() || part.empty() || w > 1000)
      throw std::invalid_argument("bad --mix '" + mix + "': want get:put[:append] weights, e.g. 1:1:0");
    weights.push_back(static_cast<unsigned>(w));
  }
  if (weights.size() < 2 || weights.size() > 3)
    throw std::invalid_argument("bad --mix '" + mix + "': want get:put[:append] weights, e.g. 1:1:0");
  weights.resize(3, 0);
  if (weights[0] + weights[1] + weights[2] == 0) throw std::invalid_argument("--mix weights are all zero");
  config.get_weight = weights[0];
  config.put_weight = weights[1];
  config.append_weight = weights[2];
}

namespace {

struct shared_state {
  const kv_load_config& config;
  clock::time_point record_from;
  clock::time_point stop_at;
  std::mutex merge_mutex;
  kv_load_report total;
};

std::string key_name(std::uint64_t index) { return "key:" + std::to_string(index); }

// The shape check: a benchmark that counts wrong answers as work measures nothing. Done on the bytes
// (the server writes `{"version":N}` and `{"value":"...","version":N}`, or without the version,
// followed by a newline) rather
// than by building a JSON tree per reply, which cost the load generator a quarter of its time: the
// string must end at the last quote and hold no unescaped quote or control byte.
// Cuts `"version":N}` off the end of `body`; false when it does not end so.
bool cut_version(std::string_view& whole) {
  constexpr std::string_view member = R"("version":)";
  std::string_view body = whole;  // left as it was unless the member is there
  if (body.empty() || body.back() != '}') return false;
  body.remove_suffix(1);
  std::size_t digits = 0;
  while (digits < body.size() && body[body.size() - 1 - digits] >= '0' && body[body.size() - 1 - digits] <= '9')
    ++digits;
  if (digits == 0) return false;
  body.remove_suffix(digits);
  if (body.size() < member.size() || body.substr(body.size() - member.size()) != member) return false;
  body.remove_suffix(member.size());
  whole = body;
  return true;
}

bool reply_ok(int op, const http::raw_result& r) {
  if (!r.answered() || r.status != 200) return false;
  std::string_view body = r.body;
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
  // Issue 13's servers add the key's version; issue 4's (and other benchmarked servers) do not.
  const bool versioned = cut_version(body);
  if (op == 1) return body == (versioned ? "{" : "{}");
  constexpr std::string_view head = R"({"value":")";
  const std::string_view tail = versioned ? R"(",)" : R"("})";
  if (body.size() < head.size() + tail.size() || body.substr(0, head.size()) != head ||
      body.substr(body.size() - tail.size()) != tail)
    return false;
  const std::string_view text = body.substr(head.size(), body.size() - head.size() - tail.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c < 0x20) return false;
    if (c == '\\' && ++i >= text.size()) return false;  // an escape needs its next byte
  }
  return true;
}

std::string describe_failure(const http::raw_result& r) {
  if (!r.answered()) return r.error->describe();
  return "unexpected reply (HTTP " + std::to_string(r.status) + "): " + r.body.substr(0, 200);
}

asio::awaitable<void> one_connection(shared_state& shared, unsigned seed, kv_load_report& mine) {
  const auto& config = shared.config;
  http::client client(co_await asio::this_coro::executor, config.server, config.client);
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<std::uint64_t> pick_key(0, config.keys - 1);
  unsigned total_weight = config.get_weight + config.put_weight + config.append_weight;
  std::uniform_int_distribution<unsigned> pick_op(0, total_weight - 1);
  std::string value(config.value_size, 'x');
  for (auto& c : value) c = static_cast<char>('a' + random() % 26);
  std::string body;
  // A server that is down refuses at once: without a pause each connection would retry tens of
  // thousands of times a second. The pause doubles per unanswered call and resets on an answer.
  constexpr auto first_pause = std::chrono::milliseconds(1), longest_pause = std::chrono::milliseconds(200);
  auto pause = first_pause;
  asio::steady_timer pause_timer(co_await asio::this_coro::executor);
  for (;;) {
    auto now = clock::now();
    if (now >= shared.stop_at) break;
    unsigned draw = pick_op(random);
    int op = draw < config.get_weight ? 0 : draw < config.get_weight + config.put_weight ? 1 : 2;
    auto key = key_name(pick_key(random));
    body.clear();
    body.append(R"({"key":")").append(key).push_back('"');
    if (op != 0) body.append(R"(,"value":")").append(value).push_back('"');
    body.push_back('}');
    static constexpr const char* targets[] = {"/v1/get", "/v1/put", "/v1/append"};
    auto started = clock::now();
    auto r = co_await client.call_raw(boost::beast::http::verb::post, targets[op], body, config.request_timeout);
    auto finished = clock::now();
    if (!r.answered()) {
      pause_timer.expires_after(std::min<clock::duration>(pause, shared.stop_at - clock::now()));
      co_await pause_timer.async_wait(asio::as_tuple(asio::use_awaitable));
      pause = std::min(pause * 2, longest_pause);
    } else {
      pause = first_pause;
    }
    if (started < shared.record_from) continue;
    if (!reply_ok(op, r)) {
      ++mine.errors;
      if (mine.first_error.empty()) mine.first_error = describe_failure(r);
      continue;
    }
    ++mine.operations;
    (op == 0 ? mine.gets : op == 1 ? mine.puts : mine.appends)++;
    mine.latency.record(finished - started);
  }
}

asio::awaitable<void> preload_range(const kv_load_config& config, std::uint64_t first, std::uint64_t last,
                                    std::atomic<std::uint64_t>& failures) {
  http::client client(co_await asio::this_coro::executor, config.server, config.client);
  std::string value(config.value_size, 'p');
  for (std::uint64_t k = first; k < last; ++k) {
    std::string body = R"({"key":")" + key_name(k) + R"(","value":")" + value + R"("})";
    auto r = co_await client.call(boost::beast::http::verb::post, "/v1/put", body, config.request_timeout);
    if (!r.ok()) ++failures;
  }
}

void spawn_checked(asio::io_context& context, asio::awaitable<void> work, std::exception_ptr& failure) {
  asio::co_spawn(context, std::move(work), [&failure](std::exception_ptr e) {
    if (e && !failure) failure = e;
  });
}

}  // namespace

kv_load_report run_kv_load(const kv_load_config& config) {
  if (config.clients == 0 || config.keys == 0) throw std::invalid_argument("--clients and --keys must be positive");
  unsigned threads = std::max(1u, std::min(config.threads, config.clients));
  std::exception_ptr failure;
  if (config.preload) {
    asio::io_context context;
    std::atomic<std::uint64_t> failures{0};
    unsigned loaders = std::min<std::uint64_t>(config.clients, config.keys);
    for (unsigned i = 0; i < loaders; ++i)
      spawn_checked(context, preload_range(config, config.keys * i / loaders, config.keys * (i + 1) / loaders, failures),
                    failure);
    context.run();
    if (failure) std::rethrow_exception(failure);
    if (failures.load() > 0)
      throw std::runtime_error("preload: " + std::to_string(failures.load()) + " puts failed; is the server up?");
  }
  auto start = clock::now();
  shared_state shared{config, start + config.warmup, start + config.warmup + config.duration, {}, {}};
  std::vector<std::thread> workers;
  std::vector<std::exception_ptr> failures(threads);
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&shared, &config, &failures, t, threads] {
      asio::io_context context(1);
      std::vector<kv_load_report> reports(config.clients / threads + 1);
      unsigned mine = 0;
      for (unsigned c = t; c < config.clients; c += threads)
        spawn_checked(context, one_connection(shared, 0x9e3779b9u * (c + 1), reports[mine++]), failures[t]);
      context.run();
      std::lock_guard lock(shared.merge_mutex);
      for (unsigned i = 0; i < mine; ++i) {
        auto& r = reports[i];
        shared.total.operations += r.operations;
        shared.total.errors += r.errors;
        shared.total.gets += r.gets;
        shared.total.puts += r.puts;
        shared.total.appends += r.appends;
        shared.total.latency.merge(r.latency);
        if (shared.total.first_error.empty()) shared.total.first_error = r.first_error;
      }
    });
  }
  for (auto& w : workers) w.join();
  for (auto& f : failures)
    if (f) std::rethrow_exception(f);
  shared.total.seconds = std::chrono::duration<double>(config.duration).count();
  return std::move(shared.total);
}

}  // namespace mrkv::bench
