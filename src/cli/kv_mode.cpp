#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"
#include "mrkv/common/log.hpp"
#include "mrkv/kv/clerk.hpp"
#include "mrkv/kv/protocol.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/program_options/value_semantic.hpp>

#include <iostream>
#include <iterator>

namespace mrkv::cli {

namespace po = boost::program_options;
namespace asio = boost::asio;

namespace {

struct command {
  std::string op;  // get, put or append
  std::string key;
  std::string value;
};

command parse_command(const std::vector<std::string>& words) {
  if (words.empty()) throw usage_error("kv: name an operation: get KEY, put KEY VALUE or append KEY VALUE");
  command c{words[0], {}, {}};
  std::size_t want = c.op == "get" ? 2 : (c.op == "put" || c.op == "append") ? 3 : 0;
  if (want == 0) throw usage_error("kv: unknown operation '" + c.op + "' (get, put or append)");
  if (words.size() != want)
    throw usage_error("kv: " + c.op + (want == 2 ? " takes KEY" : " takes KEY VALUE") + " (see mrkv kv --help)");
  c.key = words[1];
  if (want == 3) {
    c.value = words[2];
    if (c.value == "-") {
      c.value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    }
  }
  if (!kv::valid_utf8(c.key)) throw usage_error("kv: the key is not valid UTF-8");
  if (!kv::valid_utf8(c.value)) throw usage_error("kv: the value is not valid UTF-8");
  return c;
}

asio::awaitable<std::string> run_command(kv::clerk& clerk, command c) {
  if (c.op == "get") co_return co_await clerk.get(std::move(c.key));
  if (c.op == "append") co_return co_await clerk.append(std::move(c.key), std::move(c.value));
  co_await clerk.put(std::move(c.key), std::move(c.value));
  co_return std::string();
}

}  // namespace

int run_kv(const args& words) {
  mode_info mode{"kv",
                 "mrkv kv [--server URL] [--timeout SECONDS] [--attempt-timeout SECONDS]\n"
                 "        [--auth-token-file FILE] [--tls-ca FILE]\n"
                 "        get KEY | put KEY VALUE | append KEY VALUE",
                 "Key/value clerk. get prints the value, append prints the value before the append, put prints\n"
                 "nothing; what is printed ends with a newline. VALUE '-' reads the value from stdin, byte for\n"
                 "byte. Retries until the server answers or --timeout passes (then exits 1); a write is\n"
                 "retried with the same request id, so it is applied at most once. Put '--' before a VALUE\n"
                 "that starts with '-'."};
  std::string server = "http://127.0.0.1:7800";
  double timeout = 30;
  double attempt_timeout = 10;
  client_flags client_settings;
  std::vector<std::string> operation;
  po::options_description flags("kv options");
  flags.add_options()
      ("server", po::value<std::string>(&server)->default_value(server)->value_name("URL"), "the kvserver")
      ("timeout", po::value<double>(&timeout)->default_value(timeout)->value_name("SECONDS"),
       "give up when the server has not answered within this time")
      ("attempt-timeout", po::value<double>(&attempt_timeout)->default_value(attempt_timeout)->value_name("SECONDS"),
       "resend a request (same request id) that has no answer after this long")
      ("operation", po::value<std::vector<std::string>>(&operation)->value_name("OP"),
       "get KEY | put KEY VALUE | append KEY VALUE (positional)");
  add_client_flags(flags, client_settings);
  po::positional_options_description positional;
  positional.add("operation", -1);
  if (!parse_mode_options(mode, words, flags, &positional)) return 0;

  http::url url;
  try {
    url = http::parse_url(server);
  } catch (const std::invalid_argument& e) {
    throw usage_error(std::string("kv: --server: ") + e.what());
  }
  kv::clerk_options options;
  options.deadline = seconds_flag(timeout, "timeout");
  options.attempt_timeout = std::min(seconds_flag(attempt_timeout, "attempt-timeout"), options.deadline);
  auto max_reply = options.connection.max_reply_body;
  options.connection = make_client_options(client_settings);
  options.connection.max_reply_body = max_reply;
  auto c = parse_command(operation);
  const bool prints = c.op != "put";

  asio::io_context context;
  kv::clerk clerk(context.get_executor(), url, options);
  auto answer = asio::co_spawn(context, run_command(clerk, std::move(c)), asio::use_future);
  context.run();
  try {
    auto text = answer.get();
    if (prints) {
      std::cout.write(text.data(), static_cast<std::streamsize>(text.size()));
      std::cout << '\n';
    }
    std::cout.flush();
    return std::cout ? 0 : 1;
  } catch (const kv::clerk_error& e) {
    std::cerr << "mrkv kv: " << e.what() << "\n";
    if (!e.last_failure().empty()) log::debug("kv", "last attempt: " + e.last_failure());
    return 1;
  }
}

}  // namespace mrkv::cli
