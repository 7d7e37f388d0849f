// Command-line plumbing shared by every mode: Boost.Program_options parsing with --help and
// --config FILE (a JSON object whose members are flags; the command line wins over the file), the
// flags every server mode has, and the exit-code convention (usage errors exit 2, failures exit 1).
#pragma once

#include "mrkv/http/client.hpp"
#include "mrkv/http/server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/program_options/options_description.hpp>
#include <boost/program_options/positional_options.hpp>
#include <boost/program_options/variables_map.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mrkv::cli {

// A mistake in how the program was called: printed as one line, exit status 2.
class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct mode_info {
  std::string name;      // "kvserver"
  std::string synopsis;  // "mrkv kvserver [options]"
  std::string summary;   // one paragraph for --help
};

// Adds --help, --config and --log-level to `flags`, parses `args` (the words after the mode), then the
// config file if one was named, and applies --log-level. Returns nullopt when --help was asked for
// (usage has then been printed to stdout). Throws usage_error for unknown flags, bad values, a missing
// or malformed config file.
std::optional<boost::program_options::variables_map> parse_mode_options(
    const mode_info& mode, const std::vector<std::string>& args, boost::program_options::options_description& flags,
    const boost::program_options::positional_options_description* positional = nullptr);

// Flags every server mode takes, as the user wrote them; make_server_config() checks them.
struct server_flags {
  std::string listen;
  unsigned threads = 1;
  std::size_t max_connections = 10'000;
  std::size_t max_body = 1 << 20;
  double idle_timeout = 60;
  double read_timeout = 10;
  double write_timeout = 10;
  double drain_timeout = 1;
  std::string auth_token_file;
  std::string tls_cert_file;
  std::string tls_key_file;
};

void add_server_flags(boost::program_options::options_description& flags, server_flags& values);
http::server_config make_server_config(const server_flags& values);

// Flags every client mode (worker, kv, status, bench, probe) takes to reach a server.
struct client_flags {
  std::string auth_token_file;  // --auth-token-file
  std::string tls_ca_file;      // --tls-ca
};

void add_client_flags(boost::program_options::options_description& flags, client_flags& values);
http::client_options make_client_options(const client_flags& values);

// The first line of the file, without surrounding whitespace; throws usage_error when unreadable or empty.
std::string read_token_file(const std::string& path);

// A positive number of seconds from flag `name`, as milliseconds; throws usage_error otherwise.
std::chrono::milliseconds seconds_flag(double seconds, std::string_view name);

// Prints exactly "mrkv MODE listening on http://HOST:PORT" (https:// with TLS) to stdout and flushes it.
void announce_listening(std::string_view mode, const boost::asio::ip::tcp::endpoint& endpoint,
                        const http::server_config& config);

// Warns (once, at start) when a server listens beyond loopback with no token.
void warn_if_exposed(std::string_view mode, const http::server_config& config);

}  // namespace mrkv::cli
