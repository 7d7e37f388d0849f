#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"
#include "mrkv/common/log.hpp"
#include "mrkv/common/malloc_policy.hpp"
#include "mrkv/kv/durable.hpp"
#include "mrkv/kv/server.hpp"

#include <boost/program_options/value_semantic.hpp>

#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>

namespace mrkv::cli {

namespace po = boost::program_options;

int run_kvserver(const args& words) {
  mode_info mode{"kvserver", "mrkv kvserver [options]",
                 "Serves a linearizable key/value map over HTTP/JSON (in memory; durable with --data-dir): POST /v1/get {\"key\"},\n"
                 "/v1/put and /v1/append {\"key\", \"value\", \"client\", \"seq\"}, GET /v1/stats. A write\n"
                 "repeating its client's latest seq is answered from the duplicate table without running again.\n"
                 "Versions: every key has one (0 while missing, +1 per put or append); get answers\n"
                 "{\"value\", \"version\"}, and a write with \"version\": N runs only if the key is at N (else 412\n"
                 "naming the current version). POST /v1/delete {\"key\"} makes a key missing (version 0).\n"
                 "Leases: a put with \"lease_ms\": L deletes the key L ms later unless it is written again.\n"
                 "POST /v1/list {\"prefix\", \"after\", \"limit\"} pages through keys in byte order (at most\n"
                 "10,000 a page), from an ordered index: a page costs its own size, not the store's.\n"
                 "Stops on SIGINT or SIGTERM after in-flight requests finish."};
  server_flags server;
  server.listen = "127.0.0.1:7800";
  server.threads = 0;
  server.max_body = std::size_t{32} << 20;
  std::uint64_t client_ttl = 3600;
  std::string data_dir;
  std::string fsync = "always";
  std::uint64_t snapshot_after = std::uint64_t{64} << 20;
  po::options_description flags("kvserver options");
  add_server_flags(flags, server);
  flags.add_options()
      ("client-ttl", po::value<std::uint64_t>(&client_ttl)->default_value(client_ttl)->value_name("SECONDS"),
       "forget a client's duplicate-table entry after it made no write for this long; a retry arriving "
       "later would run again, so keep it far above how long a clerk retries")
      ("data-dir", po::value<std::string>(&data_dir)->value_name("DIR"),
       "keep keys and the duplicate table durable in DIR (a write-ahead log and snapshots, recovered at "
       "start; one server per DIR); without it everything is in memory and lost when the server stops")
      ("fsync", po::value<std::string>(&fsync)->default_value(fsync)->value_name("always|everysec|never"),
       "with --data-dir: always = a write is answered once its log record is on stable storage (concurrent "
       "writes share one fdatasync); everysec = answered at once, synced every second (a machine crash may "
       "lose the last second, a process crash nothing); never = syncing left to the OS")
      ("snapshot-after", po::value<std::uint64_t>(&snapshot_after)->default_value(snapshot_after)->value_name("BYTES"),
       "with --data-dir: write a snapshot in the background once the log has grown by this many bytes, "
       "then remove the log it covers");
  if (!parse_mode_options(mode, words, flags)) return 0;
  if (client_ttl == 0 || client_ttl > 10ull * 365 * 86400)
    throw usage_error("kvserver: --client-ttl must be a whole number of seconds from 1 to ten years");

  kv::fsync_policy policy;
  try {
    policy = kv::parse_fsync_policy(fsync);
  } catch (const std::invalid_argument& e) {
    throw usage_error(std::string("kvserver: --fsync: ") + e.what());
  }
  if (snapshot_after < 4096) throw usage_error("kvserver: --snapshot-after must be at least 4096 bytes");

  kv::server_options options;
  options.http = make_server_config(server);
  options.store.client_ttl = std::chrono::seconds(client_ttl);
  if (!data_dir.empty()) {
    kv::wal_options wal;
    wal.dir = data_dir;
    wal.fsync = policy;
    wal.snapshot_after = snapshot_after;
    // The log exists once the server has made its write path; /metrics asks it from then on.
    auto log = std::make_shared<std::atomic<kv::write_ahead_log*>>(nullptr);
    options.make_write_path = [wal, log](kv::store& data) {
      auto path = std::make_unique<kv::durable_write_path>(data, wal);
      log->store(&path->wal());
      return std::unique_ptr<kv::write_path>(std::move(path));
    };
    options.http.extra_metrics = [log](const std::string& mode) {
      auto* wal = log->load();
      return wal ? wal->render_metrics(mode) : std::string();
    };
  } else {
    log::info("kvserver", "memory only (no --data-dir): keys and the duplicate table are lost when the server stops");
  }
  return_big_blocks_to_the_os();
  warn_if_exposed("kvserver", options.http);

  const auto config = options.http;
  std::optional<kv::server> started;
  try {
    started.emplace(std::move(options));
  } catch (const std::runtime_error& e) {
    // Recovery refused (a damaged log, a locked data dir): say why on one line and exit non-zero.
    std::fprintf(stderr, "mrkv kvserver: --data-dir: %s\n", e.what());
    return 1;
  }
  kv::server& kvserver = *started;
  kvserver.stop_on_signals();
  auto endpoint = kvserver.start();
  announce_listening("kvserver", endpoint, config);
  kvserver.wait();
  log::info("kvserver", "stopped");
  return 0;
}

}  // namespace mrkv::cli
