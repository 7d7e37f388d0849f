#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"
#include "mrkv/http/client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/program_options/value_semantic.hpp>

#include <unistd.h>

#include <iostream>
#include <thread>

namespace mrkv::cli {

namespace po = boost::program_options;
namespace asio = boost::asio;

namespace {

// One call, run to its end on a context of the caller's.
http::call_result call(asio::io_context& context, http::client& client, http::verb method, const std::string& target,
                       std::string body, std::chrono::milliseconds timeout) {
  auto pending = asio::co_spawn(context, client.call(method, target, std::move(body), timeout), asio::use_future);
  context.restart();
  context.run();
  return pending.get();
}

int count(const nlohmann::json& phase, const char* field) {
  auto it = phase.find(field);
  return it != phase.end() && it->is_number_integer() ? it->get<int>() : 0;
}

// "map 3/8 reduce 0/10": what changes as a job runs.
std::string progress(const nlohmann::json& job) {
  const auto map = job.value("map", nlohmann::json::object());
  const auto reduce = job.value("reduce", nlohmann::json::object());
  return "map " + std::to_string(count(map, "done")) + "/" + std::to_string(count(map, "total")) + " reduce " +
         std::to_string(count(reduce, "done")) + "/" + std::to_string(count(reduce, "total"));
}

// "[##########..........]" over every task of the job.
std::string bar(const nlohmann::json& job) {
  constexpr int width = 30;
  const auto map = job.value("map", nlohmann::json::object());
  const auto reduce = job.value("reduce", nlohmann::json::object());
  const int total = std::max(count(map, "total") + count(reduce, "total"), 1);
  const int full = (count(map, "done") + count(reduce, "done")) * width / total;
  return "[" + std::string(full, '#') + std::string(width - full, '.') + "]";
}

}  // namespace

int run_submit(const args& words) {
  mode_info mode{
      "submit",
      "mrkv submit --coordinator URL (--app APP | --mapper CMD --reducer CMD [--combiner CMD]) [--reduce N] "
      "[--name TEXT] [--wait] INPUT...",
      "Submits a MapReduce job to a coordinator run as a job service (mrkv coordinator with no INPUT) and\n"
      "prints its id. INPUT paths are as the coordinator sees them: relative ones are relative to its work\n"
      "directory. APP is what the workers' --app takes (a plugin path as the workers see it).\n"
      "With --wait it shows the job's progress on standard error (a bar on a terminal, a line per change\n"
      "otherwise) until the job ends, then prints its output files on standard output, one per line, and\n"
      "exits 0 when the job is done, 1 when it failed or was cancelled. Exits 2 when the coordinator\n"
      "refuses the job (the message names the field), 1 when it can't be reached."};
  std::string coordinator;
  std::string app, mapper, reducer, combiner, name;
  int n_reduce = 0;
  double task_timeout = 0;
  int max_attempts = 0;
  bool wait = false;
  double timeout = 5;
  double give_up = 30;
  std::vector<std::string> inputs;
  client_flags client_settings;
  po::options_description flags("submit options");
  flags.add_options()
      ("coordinator", po::value<std::string>(&coordinator)->required()->value_name("URL"), "the coordinator")
      ("app", po::value<std::string>(&app)->value_name("APP"), "wc, indexer, or a plugin path")
      ("mapper", po::value<std::string>(&mapper)->value_name("CMD"), "a streaming app's mapper")
      ("reducer", po::value<std::string>(&reducer)->value_name("CMD"), "a streaming app's reducer")
      ("combiner", po::value<std::string>(&combiner)->value_name("CMD"), "a streaming app's combiner (optional)")
      ("reduce", po::value<int>(&n_reduce)->value_name("N"), "reduce tasks (default: the coordinator's --reduce)")
      ("name", po::value<std::string>(&name)->value_name("TEXT"), "a name for people")
      ("task-timeout", po::value<double>(&task_timeout)->value_name("SECONDS"),
       "the job's task timeout (default: the coordinator's)")
      ("max-attempts", po::value<int>(&max_attempts)->value_name("N"),
       "failed or lost attempts of one task that fail the job (default 4)")
      ("wait", po::bool_switch(&wait), "wait for the job to end, showing its progress")
      ("timeout", po::value<double>(&timeout)->default_value(timeout)->value_name("SECONDS"), "limit of one call")
      ("give-up-after", po::value<double>(&give_up)->default_value(give_up)->value_name("SECONDS"),
       "while waiting, give up once the coordinator has not answered for this long")
      ("input", po::value<std::vector<std::string>>(&inputs), "input files (positional)");
  add_client_flags(flags, client_settings);
  po::positional_options_description positional;
  positional.add("input", -1);
  auto values = parse_mode_options(mode, words, flags, &positional);
  if (!values) return 0;
  if (inputs.empty()) throw usage_error("submit: no input files (see mrkv submit --help)");
  http::url url;
  try {
    url = http::parse_url(coordinator);
  } catch (const std::invalid_argument& e) {
    throw usage_error(std::string("submit: --coordinator: ") + e.what());
  }
  const auto call_timeout = seconds_flag(timeout, "timeout");
  const auto give_up_after = seconds_flag(give_up, "give-up-after");

  // The coordinator checks everything (and names the field); here only what the flags themselves say.
  nlohmann::json job{{"inputs", inputs}};
  if (!app.empty()) job["app"] = app;
  if (!mapper.empty()) job["mapper"] = mapper;
  if (!reducer.empty()) job["reducer"] = reducer;
  if (!combiner.empty()) job["combiner"] = combiner;
  if (app.empty() && mapper.empty() && reducer.empty() && combiner.empty())
    throw usage_error("submit: no app: give --app APP, or --mapper CMD --reducer CMD");
  if (values->count("reduce")) job["reduce"] = n_reduce;
  if (values->count("name")) job["name"] = name;
  if (values->count("task-timeout")) job["task_timeout"] = task_timeout;
  if (values->count("max-attempts")) job["max_attempts"] = max_attempts;

  asio::io_context context;
  http::client client(context.get_executor(), url, make_client_options(client_settings));
  auto made = call(context, client, http::verb::post, "/v1/jobs", job.dump(), call_timeout);
  if (!made.ok()) {
    if (made.error->what == http::call_error::kind::rejected && made.error->status == 400)
      throw usage_error("submit: the coordinator refused the job: " + made.error->message);
    std::cerr << "mrkv submit: " << coordinator << ": " << made.error->describe() << "\n";
    return 1;
  }
  const std::string id = made.body.value("id", "");
  std::cout << id << std::endl;
  if (!wait) return 0;

  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  std::string shown;
  std::optional<std::chrono::steady_clock::time_point> silent_since;
  // A poll (the API has no change to wait on): soon after a change, then less and less often, so a
  // short job is seen done soon after it is and a long one costs a request per 200 ms.
  auto pause = std::chrono::milliseconds(5);
  for (;;) {
    auto answer = call(context, client, http::verb::get, "/v1/jobs/" + id, {}, call_timeout);
    if (!answer.ok()) {
      const bool gone = answer.error->what != http::call_error::kind::rejected || answer.error->status >= 500;
      const auto now = std::chrono::steady_clock::now();
      if (!gone || (silent_since && now - *silent_since >= give_up_after)) {
        if (terminal && !shown.empty()) std::cerr << "\n";
        std::cerr << "mrkv submit: " << coordinator << ": " << answer.error->describe() << "\n";
        return 1;
      }
      if (!silent_since) silent_since = now;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    silent_since.reset();
    const auto& status = answer.body;
    const std::string state = status.value("state", "?");
    const std::string line = "job " + id + " " + state + " " + progress(status);
    if (line != shown) {
      pause = std::chrono::milliseconds(5);
      if (terminal)
        std::cerr << "\r" << bar(status) << " " << line << "   " << std::flush;
      else
        std::cerr << line << std::endl;
      shown = line;
    }
    if (state == "done" || state == "failed" || state == "cancelled") {
      if (terminal) std::cerr << "\n";
      if (state != "done") {
        std::cerr << "mrkv submit: job " << id << " " << state << ": " << status.value("error", state) << "\n";
        return 1;
      }
      for (const auto& output : status.value("outputs", nlohmann::json::array()))
        if (output.is_string()) std::cout << output.get<std::string>() << "\n";
      std::cout << std::flush;
      return 0;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(200));
  }
}

}  // namespace mrkv::cli
