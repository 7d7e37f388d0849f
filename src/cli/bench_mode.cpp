#include "mrkv/bench/kv_load.hpp"
#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"

#include <boost/program_options/value_semantic.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

namespace mrkv::cli {

namespace po = boost::program_options;

namespace {

double ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

}  // namespace

int run_bench(const args& words) {
  mode_info mode{"bench", "mrkv bench kv [--server URL] [--clients N] [--duration S] [options]",
                 "Load generator for the key/value server, as redis-benchmark is to Redis: N keep-alive\n"
                 "connections issue get/put/append in the given mix over K keys as fast as replies come back.\n"
                 "Every reply is checked; errors are counted apart and never as operations. Prints ops/s and\n"
                 "latency percentiles (p50, p90, p99, p99.9, max), or one JSON object with --json."};
  std::string target, server = "http://127.0.0.1:7800", mix = "1:1:0";
  client_flags client_settings;
  bench::kv_load_config config;
  double duration = 10, warmup = 1, timeout = 5;
  bool as_json = false;
  po::options_description flags("bench options");
  flags.add_options()
      ("target", po::value<std::string>(&target)->required(), "what to load: kv")
      ("server", po::value<std::string>(&server)->default_value(server)->value_name("URL"), "key/value server")
      ("clients", po::value<unsigned>(&config.clients)->default_value(config.clients)->value_name("N"),
       "concurrent keep-alive connections")
      ("threads", po::value<unsigned>(&config.threads)->default_value(config.threads)->value_name("N"),
       "load-generator threads")
      ("duration", po::value<double>(&duration)->default_value(duration)->value_name("SECONDS"), "measured time")
      ("warmup", po::value<double>(&warmup)->default_value(warmup)->value_name("SECONDS"),
       "unmeasured time before it (0 for none)")
      ("keys", po::value<std::uint64_t>(&config.keys)->default_value(config.keys)->value_name("K"), "distinct keys")
      ("value-size", po::value<std::size_t>(&config.value_size)->default_value(config.value_size)->value_name("BYTES"),
       "bytes per put/append value")
      ("mix", po::value<std::string>(&mix)->default_value(mix)->value_name("G:P:A"), "weights of get:put:append")
      ("preload", po::bool_switch(&config.preload), "put every key once before measuring")
      ("timeout", po::value<double>(&timeout)->default_value(timeout)->value_name("SECONDS"), "per-request timeout")
      ("json", po::bool_switch(&as_json), "print one JSON object");
  add_client_flags(flags, client_settings);
  po::positional_options_description positional;
  positional.add("target", 1);
  if (!parse_mode_options(mode, words, flags, &positional)) return 0;
  if (target != "kv") throw usage_error("bench: unknown target '" + target + "' (only 'kv')");
  try {
    config.server = http::parse_url(server);
    bench::parse_mix(mix, config);
  } catch (const std::invalid_argument& e) {
    throw usage_error(std::string("bench: ") + e.what());
  }
  if (config.clients == 0 || config.keys == 0) throw usage_error("bench: --clients and --keys must be positive");
  config.duration = seconds_flag(duration, "duration");
  config.warmup = warmup == 0 ? std::chrono::milliseconds(0) : seconds_flag(warmup, "warmup");
  config.request_timeout = seconds_flag(timeout, "timeout");
  config.client = make_client_options(client_settings);

  auto report = bench::run_kv_load(config);
  const auto& h = report.latency;
  if (as_json) {
    nlohmann::json out{{"clients", config.clients},      {"seconds", report.seconds},
                       {"keys", config.keys},            {"value_size", config.value_size},
                       {"mix", mix},                     {"operations", report.operations},
                       {"errors", report.errors},        {"ops_per_second", report.ops_per_second()},
                       {"gets", report.gets},            {"puts", report.puts},
                       {"appends", report.appends}};
    // Percentiles of no operations are not zero: they do not exist (null in JSON, n/a in text).
    const bool measured = report.operations > 0;
    auto figure = [measured](double value) { return measured ? nlohmann::json(value) : nlohmann::json(nullptr); };
    out["p50_ms"] = figure(ms(h.percentile(0.5)));
    out["p90_ms"] = figure(ms(h.percentile(0.9)));
    out["p99_ms"] = figure(ms(h.percentile(0.99)));
    out["p999_ms"] = figure(ms(h.percentile(0.999)));
    out["max_ms"] = figure(ms(h.max()));
    out["mean_ms"] = figure(ms(h.mean()));
    if (!report.first_error.empty()) out["first_error"] = report.first_error;
    std::cout << out.dump() << std::endl;
  } else {
    std::printf("mrkv bench kv: %s, %u clients, %.1f s, %llu keys, %zu-byte values, get:put:append %s\n",
                server.c_str(), config.clients, report.seconds, static_cast<unsigned long long>(config.keys),
                config.value_size, mix.c_str());
    std::printf("  ops/s    %.0f  (%llu operations: %llu get, %llu put, %llu append)\n", report.ops_per_second(),
                static_cast<unsigned long long>(report.operations), static_cast<unsigned long long>(report.gets),
                static_cast<unsigned long long>(report.puts), static_cast<unsigned long long>(report.appends));
    std::printf("  errors   %llu%s%s\n", static_cast<unsigned long long>(report.errors),
                report.first_error.empty() ? "" : "  first: ", report.first_error.c_str());
    if (report.operations == 0)
      std::printf("  latency  n/a (no operation succeeded)\n");
    else
      std::printf("  latency  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms\n",
                  ms(h.percentile(0.5)), ms(h.percentile(0.9)), ms(h.percentile(0.99)), ms(h.percentile(0.999)),
                  ms(h.max()));
    std::fflush(stdout);
  }
  return report.operations > 0 ? 0 : 1;
}

}  // namespace mrkv::cli
