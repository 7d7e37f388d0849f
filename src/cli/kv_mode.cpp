#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"
#include "mrkv/common/log.hpp"
#include "mrkv/kv/clerk.hpp"
#include "mrkv/kv/lock.hpp"
#include "mrkv/kv/protocol.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/program_options/value_semantic.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <optional>
#include <vector>

namespace mrkv::cli {

namespace po = boost::program_options;
namespace asio = boost::asio;

namespace {

// Exit statuses besides 0 (done) and 1 (no answer, refused): a failed version condition, and a
// versioned write whose outcome is unknown.
constexpr int exit_version_mismatch = 3;
constexpr int exit_maybe_applied = 4;

struct command {
  std::string op;  // get, put, append, delete, list or lock
  std::string key;  // the lock's name; list's prefix
  std::string value;
  std::vector<std::string> program;  // lock: the command to run
};

struct settings {
  bool print_version = false;
  std::optional<std::uint64_t> if_version;
  std::optional<std::chrono::milliseconds> lease;
};

command parse_command(const std::vector<std::string>& words) {
  if (words.empty())
    throw usage_error("kv: name an operation: get KEY, put KEY VALUE, append KEY VALUE, delete KEY, list [PREFIX] "
                      "or lock NAME -- COMMAND");
  command c{words[0], {}, {}, {}};
  if (c.op == "lock") {
    if (words.size() < 3) throw usage_error("kv: lock takes NAME -- COMMAND [ARGS...] (see mrkv kv --help)");
    c.key = words[1];
    c.program.assign(words.begin() + 2, words.end());
  } else if (c.op == "list") {
    if (words.size() > 2) throw usage_error("kv: list takes at most a PREFIX (see mrkv kv --help)");
    if (words.size() == 2) c.key = words[1];
  } else {
    std::size_t want = c.op == "get" || c.op == "delete" ? 2 : (c.op == "put" || c.op == "append") ? 3 : 0;
    if (want == 0)
      throw usage_error("kv: unknown operation '" + c.op + "' (get, put, append, delete, list or lock)");
    if (words.size() != want)
      throw usage_error("kv: " + c.op + (want == 2 ? " takes KEY" : " takes KEY VALUE") + " (see mrkv kv --help)");
    c.key = words[1];
    if (want == 3) {
      c.value = words[2];
      if (c.value == "-") {
        c.value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
      }
    }
  }
  if (!kv::valid_utf8(c.key)) throw usage_error("kv: the key is not valid UTF-8");
  if (!kv::valid_utf8(c.value)) throw usage_error("kv: the value is not valid UTF-8");
  return c;
}

// What a command prints on stdout and its exit status; `error` is the one line for stderr.
struct outcome {
  std::string text;
  bool newline = true;
  int status = 0;
  std::string error;
};

outcome printed(std::string text) { return {std::move(text), true, 0, {}}; }
outcome silent() { return {"", false, 0, {}}; }

outcome of_write(const std::string& op, const std::string& key, const kv::write_outcome& w, std::string text) {
  if (w.result == kv::write_outcome::status::version_mismatch)
    return {"", false, exit_version_mismatch,
            op + ": version mismatch: '" + key + "' is at version " + std::to_string(w.version)};
  if (w.result == kv::write_outcome::status::maybe_applied)
    return {"", false, exit_maybe_applied, op + ": no answer before the timeout; the write may have been applied"};
  return {std::move(text), !text.empty(), 0, {}};
}

std::string json_line(const kv::listed_key& item) {
  std::string line = "{\"key\":";
  kv::append_json_string(line, item.key);
  line += ",\"value\":";
  kv::append_json_string(line, item.value);
  line += ",\"version\":" + std::to_string(item.version) + "}";
  return line;
}

// Runs `program` while the lock is held; returns its exit status (128 + signal when killed, 127 when
// it could not be started).
asio::awaitable<int> run_locked(kv::lock& held, const std::vector<std::string>& program) {
  co_await held.acquire();
  std::vector<char*> argv;
  for (const auto& a : program) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::cout.flush();
  const pid_t child = fork();
  if (child < 0) {
    co_await held.release();
    throw std::runtime_error(std::string("cannot start the command: ") + std::strerror(errno));
  }
  if (child == 0) {
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "mrkv kv: lock: cannot run '%s': %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  // The renewals run on this context meanwhile, so the child is polled for instead of waited on.
  asio::steady_timer poll(co_await asio::this_coro::executor);
  int wait_status = 0;
  bool warned = false;
  for (;;) {
    const pid_t done = waitpid(child, &wait_status, WNOHANG);
    if (done == child || (done < 0 && errno != EINTR)) break;
    if (!held.holds() && !warned) {
      std::cerr << "mrkv kv: lock: lost lock '" << held.name() << "' while the command runs (its lease ran out)\n";
      warned = true;
    }
    poll.expires_after(std::chrono::milliseconds(20));
    co_await poll.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_await held.release();
  if (WIFEXITED(wait_status)) co_return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) co_return 128 + WTERMSIG(wait_status);
  co_return 1;
}

asio::awaitable<outcome> run_command(kv::clerk& clerk, command c, settings how) {
  if (c.op == "get") {
    if (!how.print_version) co_return printed(co_await clerk.get(std::move(c.key)));
    auto got = co_await clerk.get_versioned(std::move(c.key));
    co_return printed(got.value + "\nversion " + std::to_string(got.version));
  }
  if (c.op == "list") {
    outcome listing = silent();
    std::optional<std::string> after;
    for (;;) {
      auto page = co_await clerk.list(c.key, after, kv::max_list_limit);
      for (const auto& item : page.items) listing.text += json_line(item) + "\n";
      if (!page.more || page.items.empty()) break;
      after = page.items.back().key;
    }
    co_return listing;
  }
  kv::write_options options;
  options.expected_version = how.if_version;
  if (c.op == "delete") {
    auto w = co_await clerk.remove(c.key, how.if_version);
    // An unconditional write without an answer fails as put and append do (exit 1).
    if (w.result == kv::write_outcome::status::maybe_applied && !how.if_version)
      co_return outcome{"", false, 1, "delete: server did not answer before the timeout"};
    co_return of_write("delete", c.key, w, "");
  }
  if (c.op == "append") {
    if (!how.if_version) co_return printed(co_await clerk.append(std::move(c.key), std::move(c.value)));
    auto w = co_await clerk.append(c.key, std::move(c.value), options);
    co_return of_write("append", c.key, w, w.old_value);
  }
  if (!how.if_version && !how.lease) {
    co_await clerk.put(std::move(c.key), std::move(c.value));
    co_return silent();
  }
  options.lease = how.lease;
  auto w = co_await clerk.put(c.key, std::move(c.value), options);
  if (w.result == kv::write_outcome::status::maybe_applied && !how.if_version)
    co_return outcome{"", false, 1, "put: server did not answer before the timeout"};
  co_return of_write("put", c.key, w, "");
}

}  // namespace

int run_kv(const args& words) {
  mode_info mode{"kv",
                 "mrkv kv [--server URL] [--timeout SECONDS] [--attempt-timeout SECONDS]\n"
                 "        [--auth-token-file FILE] [--tls-ca FILE]\n"
                 "        get [--version] KEY | put [--if-version N] [--lease SECONDS] KEY VALUE |\n"
                 "        append [--if-version N] KEY VALUE | delete [--if-version N] KEY | list [PREFIX] |\n"
                 "        lock NAME [--lease SECONDS] -- COMMAND [ARGS...]",
                 "Key/value clerk. get prints the value (--version: and then a line 'version N'), append\n"
                 "prints the value before the append, put and delete print nothing; what is printed ends\n"
                 "with a newline. list prints every key starting with PREFIX, one JSON object\n"
                 "{\"key\",\"value\",\"version\"} a line, in byte order of keys, fetching all pages.\n"
                 "--if-version N: write only if the key's version is N (0: only if it is missing); otherwise\n"
                 "exit 3 with one line naming the current version. --lease: the key disappears that long\n"
                 "after the put unless written again. lock takes the lock NAME (waiting for it), runs\n"
                 "COMMAND while renewing the lock's lease (default 10 s), releases it and exits with\n"
                 "COMMAND's status; a holder that dies loses the lock when its lease runs out. VALUE '-'\n"
                 "reads the value from stdin, all of it. Keys and values are UTF-8 text (they travel as\n"
                 "JSON strings): other bytes are refused with exit 2, so encode binary data first (base64).\n"
                 "Retries until the server answers or --timeout passes (then exits 1, with the last cause,\n"
                 "or 4 for a conditional write that may have been applied); a name that does not resolve\n"
                 "or a TLS failure ends it at once. A write is retried with the same request id, so it is\n"
                 "applied at most once. Put '--' before a VALUE that starts with '-'."};
  std::string server = "http://127.0.0.1:7800";
  double timeout = 30;
  double attempt_timeout = 10;
  double lease = 0;
  std::uint64_t if_version = 0;
  bool print_version = false;
  client_flags client_settings;
  std::vector<std::string> operation;
  po::options_description flags("kv options");
  flags.add_options()
      ("server", po::value<std::string>(&server)->default_value(server)->value_name("URL"), "the kvserver")
      ("timeout", po::value<double>(&timeout)->default_value(timeout)->value_name("SECONDS"),
       "give up when the server has not answered within this time")
      ("attempt-timeout", po::value<double>(&attempt_timeout)->default_value(attempt_timeout)->value_name("SECONDS"),
       "resend a request (same request id) that has no answer after this long")
      ("version", po::bool_switch(&print_version), "get: print the key's version too")
      ("if-version", po::value<std::uint64_t>(&if_version)->value_name("N"),
       "put, append, delete: only if the key's version is N (0: only if missing)")
      ("lease", po::value<double>(&lease)->value_name("SECONDS"),
       "put: the key disappears this long after the write; lock: the lock's lease (default 10)")
      ("operation", po::value<std::vector<std::string>>(&operation)->value_name("OP"),
       "get KEY | put KEY VALUE | append KEY VALUE | delete KEY | list [PREFIX] | lock NAME -- COMMAND "
       "(positional)");
  add_client_flags(flags, client_settings);
  po::positional_options_description positional;
  positional.add("operation", -1);
  auto values = parse_mode_options(mode, words, flags, &positional);
  if (!values) return 0;

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
  settings how;
  how.print_version = print_version;
  if (values->count("if-version")) how.if_version = if_version;
  if (values->count("lease")) how.lease = seconds_flag(lease, "lease");
  if (print_version && c.op != "get") throw usage_error("kv: --version goes with get");
  if (how.if_version && c.op != "put" && c.op != "append" && c.op != "delete")
    throw usage_error("kv: --if-version goes with put, append or delete");
  if (how.lease && c.op != "put" && c.op != "lock") throw usage_error("kv: --lease goes with put or lock");

  asio::io_context context;
  if (c.op == "lock") {
    kv::lock_options lock_settings;
    lock_settings.lease = how.lease.value_or(std::chrono::seconds(10));
    lock_settings.connection = options;
    lock_settings.connection.attempt_timeout =
        std::min(options.attempt_timeout, std::max(lock_settings.lease / 3, std::chrono::milliseconds(1)));
    std::optional<kv::lock> held;
    try {
      held.emplace(context.get_executor(), url, c.key, lock_settings);
    } catch (const std::invalid_argument& e) {
      throw usage_error(std::string("kv: --lease: ") + e.what());
    }
    auto status = asio::co_spawn(context, run_locked(*held, c.program), asio::use_future);
    context.run();
    try {
      return status.get();
    } catch (const std::exception& e) {
      std::cerr << "mrkv kv: lock: " << e.what() << "\n";
      return 1;
    }
  }
  kv::clerk clerk(context.get_executor(), url, options);
  auto answer = asio::co_spawn(context, run_command(clerk, std::move(c), how), asio::use_future);
  context.run();
  try {
    auto result = answer.get();
    if (!result.error.empty()) {
      std::cerr << "mrkv kv: " << result.error << "\n";
      return result.status;
    }
    std::cout.write(result.text.data(), static_cast<std::streamsize>(result.text.size()));
    if (result.newline) std::cout << '\n';
    std::cout.flush();
    return std::cout ? 0 : 1;
  } catch (const kv::clerk_error& e) {
    std::cerr << "mrkv kv: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace mrkv::cli
