#include "mrkv/mr/job_spec.hpp"

#include "mrkv/http/json_body.hpp"
#include "mrkv/http/reply.hpp"
#include "mrkv/mr/protocol.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

namespace mrkv::mr {

namespace {

[[noreturn]] void bad(const std::string& message) { throw http::request_error(400, message); }

}  // namespace

bool is_input_url(std::string_view input) noexcept {
  return input.starts_with("http://") || input.starts_with("https://");
}

std::optional<std::string> input_problem(const std::filesystem::path& workdir, const std::string& input) {
  if (is_input_url(input)) return std::nullopt;  // the worker fetches it
  const std::filesystem::path path = workdir / input;  // an absolute input replaces workdir
  // O_NONBLOCK so that checking a FIFO does not wait for its writer; any readable file is an input,
  // /dev/null and other empty or special files included (the worker reads each to its end).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return "cannot read input " + input + ": " + std::strerror(errno);
  struct stat info {};
  char byte;
  const bool directory = ::fstat(fd, &info) == 0 && S_ISDIR(info.st_mode);
  const bool readable = !directory && (!S_ISREG(info.st_mode) || ::read(fd, &byte, 1) >= 0);
  const int saved = errno;
  ::close(fd);
  if (directory) return "cannot read input " + input + ": it is a directory";
  if (!readable) return "cannot read input " + input + ": " + std::strerror(saved);
  return std::nullopt;
}

job_spec decode_job_spec(const nlohmann::json& body, const job_defaults& defaults,
                         const std::filesystem::path& workdir, bool check_inputs) {
  if (!body.is_object()) bad("the body must be a JSON object");
  http::reject_unknown_fields(body, {"app", "mapper", "reducer", "combiner", "inputs", "reduce", "name",
                                     "task_timeout", "max_attempts"});
  job_spec spec;
  spec.app = protocol::decode_app(body);

  auto inputs = body.find("inputs");
  if (inputs == body.end()) bad("field 'inputs' is required");
  if (!inputs->is_array()) bad("field 'inputs' must be an array of paths");
  if (inputs->empty()) bad("field 'inputs' must not be empty");
  if (inputs->size() > max_job_inputs) bad("field 'inputs' has more than " + std::to_string(max_job_inputs) + " paths");
  for (const auto& item : *inputs) {
    if (!item.is_string() || item.get_ref<const std::string&>().empty())
      bad("field 'inputs' must hold non-empty strings");
    const auto& input = item.get_ref<const std::string&>();
    if (input.size() > protocol::max_command_length) bad("field 'inputs': a path is too long");
    if (check_inputs)
      if (auto problem = input_problem(workdir, input)) bad("field 'inputs': " + *problem);
    spec.inputs.push_back(input);
  }

  spec.n_reduce =
      static_cast<int>(http::optional_integer(body, "reduce", 1, max_job_reduce).value_or(defaults.n_reduce));
  spec.name = http::optional_string(body, "name").value_or("");
  if (spec.name.size() > max_job_name) bad("field 'name' is longer than " + std::to_string(max_job_name) + " bytes");
  for (char c : spec.name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) bad("field 'name' must not hold control characters");
  spec.task_timeout = defaults.task_timeout;
  if (auto it = body.find("task_timeout"); it != body.end()) {
    if (!it->is_number()) bad("field 'task_timeout' must be a number of seconds");
    const double seconds = it->get<double>();
    if (!std::isfinite(seconds) || seconds < 0.001 || seconds > 86400)
      bad("field 'task_timeout' must be between 0.001 and 86400 seconds");
    spec.task_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000 + 0.5));
  }
  spec.max_attempts = static_cast<int>(http::optional_integer(body, "max_attempts", 1, max_job_attempts).value_or(4));
  return spec;
}

nlohmann::json encode(const job_spec& spec) {
  nlohmann::json j = protocol::encode(spec.app);
  j["inputs"] = spec.inputs;
  j["reduce"] = spec.n_reduce;
  j["name"] = spec.name;
  j["task_timeout"] = static_cast<double>(spec.task_timeout.count()) / 1000.0;
  j["max_attempts"] = spec.max_attempts;
  return j;
}

}  // namespace mrkv::mr
