#include "mrkv/cli/options.hpp"

#include "mrkv/common/cores.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/http/endpoint.hpp"

#include <boost/program_options/parsers.hpp>
#include <boost/program_options/value_semantic.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

namespace mrkv::cli {

namespace po = boost::program_options;

namespace {

// Turns {"listen": "0.0.0.0:7800", "threads": 2, "verbose": true, "input": ["a", "b"]} into
// --listen=0.0.0.0:7800 --threads=2 --verbose --input=a --input=b, so the file and the command line
// go through one parser with one set of checks.
std::vector<std::string> config_file_args(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw usage_error("cannot read config file " + path + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  const std::string contents = text.str();
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(contents, nullptr, true, true);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte counts from 1 and points just past the byte that broke the parse.
    const std::size_t at = std::min<std::size_t>(e.byte > 0 ? e.byte - 1 : 0, contents.size());
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < at; ++i) {
      if (contents[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    // nlohmann's text reads "[json.exception.parse_error.101] parse error at line L, column C: why".
    std::string why = e.what();
    const auto colon = why.find(": ", why.find("column"));
    why = colon == std::string::npos ? std::string() : ": " + why.substr(colon + 2);
    throw usage_error("config file " + path + " is not valid JSON: line " + std::to_string(line) + ", column " +
                      std::to_string(column) + why);
  } catch (const nlohmann::json::out_of_range& e) {
    // A number beyond a double's range ("1e999") is well-formed JSON that nlohmann cannot hold; it
    // reports no position, only "[json.exception.out_of_range.406] number overflow parsing '1e999'".
    std::string why = e.what();
    const auto bracket = why.find("] ");
    if (bracket != std::string::npos) why = why.substr(bracket + 2);
    throw usage_error("config file " + path + " cannot be read: " + why);
  }
  if (!doc.is_object()) throw usage_error("config file " + path + " must hold one JSON object");
  std::vector<std::string> args;
  auto scalar = [&](const std::string& key, const nlohmann::json& value) {
    if (value.is_string()) return "--" + key + "=" + value.get<std::string>();
    if (value.is_number()) return "--" + key + "=" + value.dump();
    throw usage_error("config file " + path + ": '" + key + "' must be a string, a number, true or a list");
  };
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key().rfind("//", 0) == 0 || it.key() == "comment") continue;  // documentation members
    if (it.key() == "config") throw usage_error("config file " + path + " may not name another config file");
    if (it->is_boolean()) {
      if (it->get<bool>()) args.push_back("--" + it.key());
    } else if (it->is_array()) {
      for (const auto& item : *it) args.push_back(scalar(it.key(), item));
    } else {
      args.push_back(scalar(it.key(), *it));
    }
  }
  return args;
}

// The flags behind positional arguments (--input, --url, ...) are plumbing: the synopsis shows the
// arguments, so --help leaves those flags out.
void print_usage(const mode_info& mode, const po::options_description& flags,
                 const po::positional_options_description* positional) {
  std::vector<std::string> hidden;
  if (positional) {
    const unsigned count = positional->max_total_count();
    for (unsigned i = 0; i < count && i < 8; ++i) hidden.push_back(positional->name_for_position(i));
  }
  po::options_description shown(mode.name + " options");
  for (const auto& option : flags.options())
    if (std::find(hidden.begin(), hidden.end(), option->long_name()) == hidden.end()) shown.add(option);
  std::cout << "usage: " << mode.synopsis << "\n\n" << mode.summary << "\n\n" << shown << std::flush;
}

}  // namespace

std::optional<po::variables_map> parse_mode_options(const mode_info& mode, const std::vector<std::string>& args,
                                                    po::options_description& flags,
                                                    const po::positional_options_description* positional) {
  std::string log_level = "info";
  flags.add_options()
      ("config", po::value<std::string>()->value_name("FILE"), "read settings from a JSON file (flags win)")
      ("log-level", po::value<std::string>(&log_level)->default_value("info")->value_name("LEVEL"),
       "debug, info, warn, error or off")
      ("help,h", "print this help");
  po::variables_map values;
  try {
    po::command_line_parser parser(args);
    parser.options(flags);
    // A mode without positional arguments refuses a stray word instead of ignoring it.
    const po::positional_options_description none;
    parser.positional(positional ? *positional : none);
    po::store(parser.run(), values);
    if (values.count("help")) {
      print_usage(mode, flags, positional);
      return std::nullopt;
    }
  } catch (const po::error& e) {
    throw usage_error(mode.name + ": " + e.what() + " (see mrkv " + mode.name + " --help)");
  }
  if (values.count("config")) {
    const auto path = values["config"].as<std::string>();
    try {
      auto file_args = config_file_args(path);
      po::command_line_parser file_parser(file_args);
      file_parser.options(flags);
      po::store(file_parser.run(), values);  // store() keeps what the command line already set
    } catch (const po::error& e) {
      // The option a message names is the file's member of that name.
      throw usage_error(mode.name + ": config file " + path + ": " + e.what());
    } catch (const usage_error& e) {
      throw usage_error(mode.name + ": " + e.what());
    }
  }
  try {
    po::notify(values);
  } catch (const po::error& e) {
    throw usage_error(mode.name + ": " + e.what() + " (see mrkv " + mode.name + " --help)");
  }
  try {
    log::set_threshold(log::parse_level(log_level));
  } catch (const std::invalid_argument& e) {
    throw usage_error(mode.name + ": " + e.what());
  }
  return values;
}

void add_server_flags(po::options_description& flags, server_flags& v) {
  flags.add_options()
      ("listen", po::value<std::string>(&v.listen)->default_value(v.listen)->value_name("HOST:PORT"),
       "address to listen on; port 0 picks a free port")
      // Read signed so that -1 is refused as negative rather than wrapping to 4294967295.
      ("threads", po::value<long long>()->default_value(v.threads)->value_name("N")->notifier([&v](long long n) {
         if (n < 0) throw usage_error("--threads must not be negative");
         if (n > 256) throw usage_error("--threads must be at most 256");
         v.threads = static_cast<unsigned>(n);
       }),
       "I/O threads (0: one per usable core: the CPU affinity mask and cgroup quota count)")
      ("max-connections", po::value<std::size_t>(&v.max_connections)->default_value(v.max_connections)->value_name("N"),
       "connections beyond this are answered 503 and closed")
      ("max-body", po::value<std::size_t>(&v.max_body)->default_value(v.max_body)->value_name("BYTES"),
       "largest request body; larger ones get 413")
      ("idle-timeout", po::value<double>(&v.idle_timeout)->default_value(v.idle_timeout)->value_name("SECONDS"),
       "close a keep-alive connection idle this long")
      ("read-timeout", po::value<double>(&v.read_timeout)->default_value(v.read_timeout)->value_name("SECONDS"),
       "a request must arrive whole within this time of its first byte")
      ("write-timeout", po::value<double>(&v.write_timeout)->default_value(v.write_timeout)->value_name("SECONDS"),
       "a response must be sent within this time")
      ("drain-timeout", po::value<double>(&v.drain_timeout)->default_value(v.drain_timeout)->value_name("SECONDS"),
       "on SIGINT/SIGTERM, in-flight requests get this long to finish")
      ("auth-token-file", po::value<std::string>(&v.auth_token_file)->value_name("FILE"),
       "require 'Authorization: Bearer <token>' with the token in FILE (/healthz stays open)")
      ("tls-cert", po::value<std::string>(&v.tls_cert_file)->value_name("FILE"),
       "serve HTTPS with this PEM certificate chain (needs --tls-key)")
      ("tls-key", po::value<std::string>(&v.tls_key_file)->value_name("FILE"), "PEM private key for --tls-cert");
}

void add_client_flags(po::options_description& flags, client_flags& v) {
  flags.add_options()
      ("auth-token-file", po::value<std::string>(&v.auth_token_file)->value_name("FILE"),
       "send 'Authorization: Bearer <token>' with the token in FILE")
      ("tls-ca", po::value<std::string>(&v.tls_ca_file)->value_name("FILE"),
       "for https:// URLs, trust this PEM CA certificate as well as the system's");
}

http::client_options make_client_options(const client_flags& v) {
  http::client_options options;
  if (!v.auth_token_file.empty()) options.auth_token = read_token_file(v.auth_token_file);
  if (!v.tls_ca_file.empty()) {
    if (!std::ifstream(v.tls_ca_file)) throw usage_error("cannot read CA file " + v.tls_ca_file);
    options.tls_ca_file = v.tls_ca_file;
  }
  return options;
}

std::chrono::milliseconds seconds_flag(double seconds, std::string_view name) {
  if (!(seconds > 0) || seconds > 86400.0 * 365)
    throw usage_error("--" + std::string(name) + " must be a positive number of seconds");
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0 + 0.5));
}

http::server_config make_server_config(const server_flags& v) {
  http::server_config config;
  try {
    auto address = http::parse_host_port(v.listen);
    config.host = address.host;
    config.port = address.port;
    boost::system::error_code ec;
    boost::asio::ip::make_address(config.host, ec);
    if (ec) throw std::invalid_argument("--listen wants a numeric address, not '" + config.host + "'");
  } catch (const std::invalid_argument& e) {
    throw usage_error(e.what());
  }
  if (v.threads > 256) throw usage_error("--threads must be at most 256");
  if (v.max_connections == 0) throw usage_error("--max-connections must be at least 1");
  if (v.max_body == 0) throw usage_error("--max-body must be at least 1");
  config.threads = v.threads == 0 ? usable_cores() : v.threads;
  config.max_connections = v.max_connections;
  config.max_body = v.max_body;
  config.idle_timeout = seconds_flag(v.idle_timeout, "idle-timeout");
  config.read_timeout = seconds_flag(v.read_timeout, "read-timeout");
  config.write_timeout = seconds_flag(v.write_timeout, "write-timeout");
  config.drain_timeout = seconds_flag(v.drain_timeout, "drain-timeout");
  if (!v.auth_token_file.empty()) config.auth_token = read_token_file(v.auth_token_file);
  if (v.tls_cert_file.empty() != v.tls_key_file.empty()) throw usage_error("--tls-cert and --tls-key go together");
  for (const auto* file : {&v.tls_cert_file, &v.tls_key_file})
    if (!file->empty() && !std::ifstream(*file)) throw usage_error("cannot read " + *file);
  config.tls_cert_file = v.tls_cert_file;
  config.tls_key_file = v.tls_key_file;
  return config;
}

std::string read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw usage_error("cannot read token file " + path);
  std::string token;
  std::getline(in, token);
  auto first = token.find_first_not_of(" \t\r\n");
  auto last = token.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) throw usage_error("token file " + path + " is empty");
  return token.substr(first, last - first + 1);
}

void announce_listening(std::string_view mode, const boost::asio::ip::tcp::endpoint& endpoint,
                        const http::server_config& config) {
  http::host_port address{endpoint.address().to_string(), endpoint.port()};
  const std::string url = (config.tls_cert_file.empty() ? "http://" : "https://") + http::to_string(address);
  std::cout << "mrkv " << mode << " listening on " << url << std::endl;
  log::info(mode, "listening on " + url + " with " + std::to_string(config.threads) +
                      (config.threads == 1 ? " thread" : " threads"));
}

void warn_if_exposed(std::string_view mode, const http::server_config& config) {
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(config.host, ec);
  if (!ec && !address.is_loopback() && config.auth_token.empty())
    log::warn(mode, "listening on " + config.host + " beyond loopback without --auth-token-file: anyone who can "
                    "reach this port can use it");
}

}  // namespace mrkv::cli
