#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"
#include "mrkv/common/log.hpp"
#include "mrkv/common/malloc_policy.hpp"
#include "mrkv/kv/server.hpp"

#include <boost/program_options/value_semantic.hpp>

namespace mrkv::cli {

namespace po = boost::program_options;

int run_kvserver(const args& words) {
  mode_info mode{"kvserver", "mrkv kvserver [options]",
                 "Serves a linearizable in-memory key/value map over HTTP/JSON: POST /v1/get {\"key\"},\n"
                 "/v1/put and /v1/append {\"key\", \"value\", \"client\", \"seq\"}, GET /v1/stats. A write\n"
                 "repeating its client's latest seq is answered from the duplicate table without running again.\n"
                 "Stops on SIGINT or SIGTERM after in-flight requests finish."};
  server_flags server;
  server.listen = "127.0.0.1:7800";
  server.threads = 0;
  server.max_body = std::size_t{32} << 20;
  std::uint64_t client_ttl = 3600;
  po::options_description flags("kvserver options");
  add_server_flags(flags, server);
  flags.add_options()
      ("client-ttl", po::value<std::uint64_t>(&client_ttl)->default_value(client_ttl)->value_name("SECONDS"),
       "forget a client's duplicate-table entry after it made no write for this long; a retry arriving "
       "later would run again, so keep it far above how long a clerk retries");
  if (!parse_mode_options(mode, words, flags)) return 0;
  if (client_ttl == 0 || client_ttl > 10ull * 365 * 86400)
    throw usage_error("kvserver: --client-ttl must be a whole number of seconds from 1 to ten years");

  kv::server_options options;
  options.http = make_server_config(server);
  options.store.client_ttl = std::chrono::seconds(client_ttl);
  return_big_blocks_to_the_os();
  warn_if_exposed("kvserver", options.http);

  const auto config = options.http;
  kv::server kvserver(std::move(options));
  kvserver.stop_on_signals();
  auto endpoint = kvserver.start();
  announce_listening("kvserver", endpoint, config);
  kvserver.wait();
  log::info("kvserver", "stopped");
  return 0;
}

}  // namespace mrkv::cli
