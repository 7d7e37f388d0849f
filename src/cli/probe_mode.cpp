#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"
#include "mrkv/http/client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/program_options/value_semantic.hpp>

#include <iostream>

namespace mrkv::cli {

namespace po = boost::program_options;
namespace asio = boost::asio;

int run_probe(const args& words) {
  mode_info mode{"probe", "mrkv probe [--timeout SECONDS] [--auth-token-file FILE] [--tls-ca FILE] URL",
                 "GETs URL (e.g. http://127.0.0.1:7800/healthz) once and exits 0 if it answers 2xx with JSON,\n"
                 "1 otherwise, printing the reason. Meant for container HEALTHCHECKs."};
  std::string target;
  double timeout = 2;
  client_flags client_settings;
  po::options_description flags("probe options");
  flags.add_options()
      ("url", po::value<std::string>(&target)->required(), "the URL to GET")
      ("timeout", po::value<double>(&timeout)->default_value(timeout)->value_name("SECONDS"), "give up after this");
  add_client_flags(flags, client_settings);
  po::positional_options_description positional;
  positional.add("url", 1);
  if (!parse_mode_options(mode, words, flags, &positional)) return 0;
  http::url parsed;
  try {
    parsed = http::parse_url(target);
  } catch (const std::invalid_argument& e) {
    throw usage_error(std::string("probe: ") + e.what());
  }
  auto options = make_client_options(client_settings);
  auto deadline = seconds_flag(timeout, "timeout");
  std::string path = parsed.base_path.empty() ? "/" : parsed.base_path;
  parsed.base_path.clear();
  asio::io_context context;
  http::client client(context.get_executor(), parsed, options);
  auto result = asio::co_spawn(context, client.get(path, deadline), asio::use_future);
  context.run();
  auto answer = result.get();
  if (!answer.ok()) {
    std::cerr << "mrkv probe: " << target << ": " << answer.error->describe() << "\n";
    return 1;
  }
  std::cout << answer.body.dump() << "\n";
  return 0;
}

}  // namespace mrkv::cli
