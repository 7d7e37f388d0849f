// The `mrkv kvserver` and `mrkv kv` commands as users run them: a real kvserver process (its
// announcement, its config file, its exit on signals) and the clerk CLI against it, including a value
// from stdin, a server that never answers, and bad usage.
#include "kv/harness.hpp"
#include "mrkv/http/client.hpp"
#include "support/async.hpp"
#include "support/tls_files.hpp"

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

namespace mrkv::kv_test {
namespace {

using namespace std::chrono_literals;

std::string server_flag(const server_process& server) { return "--server=http://127.0.0.1:" + std::to_string(server.port()); }

TEST_SUITE("kv") {

TEST_CASE("kvserver process: announces its address, serves the protocol, exits 0 on SIGTERM and SIGINT") {
  {
    server_process server;
    CHECK(server.announcement() == "mrkv kvserver listening on http://127.0.0.1:" + std::to_string(server.port()));
    boost::asio::io_context context;
    http::client client(context.get_executor(), server.url());
    auto put = test::run_until_done(context, client.post("/v1/put", {{"key", "a"}, {"value", "b"}}, 5s));
    CHECK(put.ok());
    auto get = test::run_until_done(context, client.post("/v1/get", {{"key", "a"}}, 5s));
    CHECK(get.body == nlohmann::json{{"value", "b"}, {"version", 1}});
    auto health = test::run_until_done(context, client.get("/healthz", 5s));
    CHECK(health.body.at("mode") == "kvserver");
    CHECK(server.stop(SIGTERM) == 0);
  }
  server_process server;
  CHECK(server.stop(SIGINT) == 0);
}

TEST_CASE("kvserver process: runs from the shipped config file, flags win over it") {
  server_process server({"--config", MRKV_SAMPLE_DATA_DIR "/../../../conf/kvserver.json", "--client-ttl", "10"});
  auto r = run_mrkv({"kv", server_flag(server), "put", "k", "v"});
  CHECK(r.status == 0);
  CHECK(server.stop() == 0);
}

TEST_CASE("kvserver process: bad flags exit 2") {
  auto r = run_mrkv({"kvserver", "--listen", "127.0.0.1:0", "--client-ttl", "0"});
  CHECK(r.status == 2);
  CHECK(r.err.find("client-ttl") != std::string::npos);
  CHECK(run_mrkv({"kvserver", "--no-such-flag"}).status == 2);
}

TEST_CASE("kvserver process: --help names versions, delete, leases and list") {
  auto help = run_mrkv({"kvserver", "--help"});
  CHECK(help.status == 0);
  for (const char* word : {"\"version\": N", "412", "/v1/delete", "\"lease_ms\"", "/v1/list", "byte order"}) {
    CAPTURE(word);
    CHECK(help.out.find(word) != std::string::npos);
  }
}

TEST_CASE("kv CLI: put, get, append and a value from stdin") {
  server_process server;
  auto flag = server_flag(server);
  auto put = run_mrkv({"kv", flag, "put", "greeting", "hello"});
  CHECK(put.status == 0);
  CHECK(put.out == "");
  auto get = run_mrkv({"kv", flag, "get", "greeting"});
  CHECK(get.status == 0);
  CHECK(get.out == "hello\n");
  auto append = run_mrkv({"kv", flag, "append", "greeting", ", world"});
  CHECK(append.status == 0);
  CHECK(append.out == "hello\n");
  CHECK(run_mrkv({"kv", flag, "get", "greeting"}).out == "hello, world\n");
  CHECK(run_mrkv({"kv", flag, "get", "never-written"}).out == "\n");

  std::string text = "line one\nline \"two\"\t\xc3\xa9\n";
  CHECK(run_mrkv({"kv", flag, "put", "from-stdin", "-"}, text).status == 0);
  CHECK(run_mrkv({"kv", flag, "get", "from-stdin"}).out == text + "\n");
  CHECK(run_mrkv({"kv", flag, "append", "from-stdin", "-"}, "more").out == text + "\n");
  // A value that looks like a flag goes after '--'.
  CHECK(run_mrkv({"kv", flag, "put", "--", "dash", "-5"}).status == 0);
  CHECK(run_mrkv({"kv", flag, "get", "dash"}).out == "-5\n");
}

TEST_CASE("kv CLI: a server that never answers is given up on after --timeout, exit 1") {
  silent_listener silent;
  auto url = "http://127.0.0.1:" + std::to_string(silent.port());
  auto started = std::chrono::steady_clock::now();
  auto r = run_mrkv({"kv", "--server", url, "--timeout", "1", "put", "k", "v"});
  auto took = std::chrono::steady_clock::now() - started;
  CHECK(r.status == 1);
  CHECK(r.err.starts_with("mrkv kv: server " + url + " did not answer within 1 s (last: timed out after "));
  CHECK(r.err.ends_with(")\n"));
  CHECK(took >= 1s);
  CHECK(took < 20s);
}

TEST_CASE("kv CLI: --attempt-timeout resends a request that has no answer within it") {
  silent_listener silent;
  auto url = "http://127.0.0.1:" + std::to_string(silent.port());
  auto count_attempts = [](const std::string& log) {
    std::size_t n = 0;
    for (auto at = log.find(" failed: "); at != std::string::npos; at = log.find(" failed: ", at + 1)) ++n;
    return n;
  };
  auto patient = run_mrkv({"kv", "--server", url, "--timeout", "1.5", "--log-level", "debug", "get", "k"});
  CHECK(patient.status == 1);
  CHECK(count_attempts(patient.err) == 1);  // the default attempt timeout (10 s) is cut to --timeout
  auto eager = run_mrkv(
      {"kv", "--server", url, "--timeout", "1.5", "--attempt-timeout", "0.2", "--log-level", "debug", "get", "k"});
  CHECK(eager.status == 1);
  CHECK(count_attempts(eager.err) >= 3);
  CHECK(run_mrkv({"kv", "--attempt-timeout", "0", "get", "k"}).status == 2);
}

TEST_CASE("kv CLI: nothing listening is the same: exit 1 after the timeout, naming the refusal") {
  int port;
  {
    silent_listener closed_soon;  // a port that was free a moment ago, and is closed again
    port = closed_soon.port();
  }
  auto url = "http://127.0.0.1:" + std::to_string(port);
  auto r = run_mrkv({"kv", "--server", url, "--timeout", "0.5", "get", "k"});
  CHECK(r.status == 1);
  CHECK(r.err == "mrkv kv: server " + url + " did not answer within 0.5 s (last: connecting to 127.0.0.1:" +
                     std::to_string(port) + ": Connection refused)\n");
}

TEST_CASE("kv CLI: bad usage exits 2") {
  CHECK(run_mrkv({"kv"}).status == 2);
  CHECK(run_mrkv({"kv", "get"}).status == 2);
  CHECK(run_mrkv({"kv", "get", "a", "b"}).status == 2);
  CHECK(run_mrkv({"kv", "put", "a"}).status == 2);
  CHECK(run_mrkv({"kv", "remove", "a"}).status == 2);
  CHECK(run_mrkv({"kv", "--server", "ftp://x", "get", "a"}).status == 2);
  CHECK(run_mrkv({"kv", "--timeout", "-1", "get", "a"}).status == 2);
  CHECK(run_mrkv({"kv", "put", "k", "-"}, "\xff\xfe").status == 2);  // not UTF-8
}

TEST_CASE("kv CLI: a refusal from the server exits 1 with its reason; the right token passes") {
  auto token_file = std::string("/tmp/mrkv-kv-cli-token-") + std::to_string(getpid());
  std::ofstream(token_file) << "sesame\n";
  auto wrong_file = token_file + "-wrong";
  std::ofstream(wrong_file) << "open up\n";
  {
    server_process server({"--auth-token-file", token_file});
    auto refused = run_mrkv({"kv", server_flag(server), "put", "k", "v"});
    CHECK(refused.status == 1);
    CHECK(refused.err.find("401") != std::string::npos);
    CHECK(run_mrkv({"kv", server_flag(server), "--auth-token-file", wrong_file, "get", "k"}).status == 1);
    CHECK(run_mrkv({"kv", server_flag(server), "--auth-token-file", token_file, "put", "k", "v"}).status == 0);
    CHECK(run_mrkv({"kv", server_flag(server), "--auth-token-file", token_file, "get", "k"}).out == "v\n");
  }
  std::remove(token_file.c_str());
  std::remove(wrong_file.c_str());
}

TEST_CASE("kv CLI over TLS: the server announces https and the clerk trusts it only with --tls-ca") {
  test::tls_files tls;
  server_process server({"--tls-cert", tls.cert, "--tls-key", tls.key});
  const std::string url = "https://127.0.0.1:" + std::to_string(server.port());
  CHECK(server.announcement() == "mrkv kvserver listening on " + url);
  auto untrusted = run_mrkv({"kv", "--server", url, "--timeout", "2", "get", "k"});
  CHECK(untrusted.status == 1);
  CHECK(run_mrkv({"kv", "--server", url, "--tls-ca", tls.cert, "put", "k", "sealed"}).status == 0);
  CHECK(run_mrkv({"kv", "--server", url, "--tls-ca", tls.cert, "get", "k"}).out == "sealed\n");
}

}  // TEST_SUITE

}  // namespace
}  // namespace mrkv::kv_test
