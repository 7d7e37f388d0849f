// Streaming apps (Hadoop Streaming's protocol, mrkv/mr/streaming.hpp) and failed attempts, against the
// real binary: wc and indexer as Python scripts and as awk one-liners through `mrkv sequential` and
// through a coordinator with two workers, compared with the built-in apps; records with spaces, tabs,
// UTF-8 and empty lines; a mapper that fails or hangs; a map output far larger than the worker may
// hold; counters; and a built-in app whose worker can't read its input. Plus run_command() in-process.
#include "mrkv/mr/child_process.hpp"
#include "mrkv/http/reply.hpp"
#include "mrkv/mr/counters.hpp"
#include "mrkv/mr/protocol.hpp"
#include "support/poll_until.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using mrkv::test::process;
using mrkv::test::spawn_options;
using mrkv::test::poll_until;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

constexpr auto job_limit = 120s;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::vector<std::string> lines_of(const std::string& text, bool keep_empty = false) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (keep_empty || end > start) lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// ---- the apps under test -------------------------------------------------------------------------

// Words as the built-in apps see them: maximal runs of Unicode letters (str.isalpha is category L).
constexpr const char* py_words = R"(import sys
def words(data):
    text = data.decode('utf-8', 'surrogateescape')
    return ''.join(c if c.isalpha() else ' ' for c in text).split()
)";

const std::string py_wc_map = std::string(py_words) + R"(
out = [w + '\t1' for w in words(sys.stdin.buffer.read())]
sys.stdout.write('\n'.join(out) + ('\n' if out else ''))
)";

constexpr const char* py_wc_reduce = R"(import sys
key, n = None, 0
for line in sys.stdin.buffer:
    k, _, v = line.rstrip(b'\n').partition(b'\t')
    if k != key:
        if key is not None:
            sys.stdout.buffer.write(key + b' ' + str(n).encode() + b'\n')
        key, n = k, 0
    n += int(v)
if key is not None:
    sys.stdout.buffer.write(key + b' ' + str(n).encode() + b'\n')
)";

const std::string py_indexer_map = std::string(py_words) + R"(import os
name = os.environ['MRKV_INPUT_FILE']
for w in sorted(set(words(sys.stdin.buffer.read()))):
    print(w + '\t' + name)
)";

constexpr const char* py_indexer_reduce = R"(import sys
def flush(key, docs):
    if key is not None:
        docs = sorted(docs)
        sys.stdout.write(key + ' ' + str(len(docs)) + ' ' + ','.join(docs) + '\n')
key, docs = None, []
for line in sys.stdin:
    k, _, v = line.rstrip('\n').partition('\t')
    if k != key:
        flush(key, docs)
        key, docs = k, []
    docs.append(v)
flush(key, docs)
)";

// The texts are ASCII, so bytes-based awk finds the same words.
constexpr const char* awk_wc_map =
    R"(LC_ALL=C awk '{ n = split($0, w, /[^A-Za-z]+/); for (i = 1; i <= n; i++) if (w[i] != "") print w[i] "\t1" }')";
constexpr const char* awk_wc_reduce =
    R"(LC_ALL=C awk -F'\t' '$1 != k { if (NR > 1) print k, n; k = $1; n = 0 } { n += $2 } END { if (NR > 0) print k, n }')";
constexpr const char* awk_indexer_map =
    R"(LC_ALL=C awk -v f="$MRKV_INPUT_FILE" '{ n = split($0, w, /[^A-Za-z]+/); for (i = 1; i <= n; i++) if (w[i] != "" && !(w[i] in seen)) { seen[w[i]] = 1; print w[i] "\t" f } }')";
// A pipeline: sort puts each key's documents in byte order for the awk that joins them.
constexpr const char* awk_indexer_reduce =
    R"(LC_ALL=C sort | LC_ALL=C awk -F'\t' '$1 != k { if (NR > 1) print k, n, d; k = $1; n = 0; d = "" } { n++; d = d (d == "" ? "" : ",") $2 } END { if (NR > 0) print k, n, d }')";

// One job's directory, laid out like the lab's (inputs ../pg-*.txt seen from mr-tmp/), and processes.
class stream_job {
 public:
  stream_job() : root_(dir_.path()) {
    workdir_ = root_ / "mr-tmp";
    fs::create_directories(workdir_);
    for (const auto& entry : fs::directory_iterator(MRKV_SAMPLE_DATA_DIR)) {
      const auto name = entry.path().filename().string();
      if (name.rfind("pg", 0) == 0 && entry.path().extension() == ".txt") {
        fs::create_symlink(entry.path(), root_ / name);
        inputs_.push_back("../" + name);
      }
    }
    std::sort(inputs_.begin(), inputs_.end());
  }
  ~stream_job() {
    processes_.clear();  // kills whatever still runs before its directory goes
  }

  const fs::path& root() const { return root_; }
  const fs::path& workdir() const { return workdir_; }
  std::vector<std::string>& inputs() { return inputs_; }
  const std::string& url() const { return url_; }

  // A script file in the job's root, for commands run in mr-tmp/ to name as ../NAME.
  std::string script(const std::string& name, const std::string& text) {
    write_file(root_ / name, text);
    return "../" + name;
  }

  // Runs `mrkv sequential` with `app_flags` over the inputs; returns its exit status.
  int sequential(std::vector<std::string> app_flags, const std::string& output, const std::string& log) {
    std::vector<std::string> argv{MRKV_BINARY, "sequential", "--output", output};
    argv.insert(argv.end(), app_flags.begin(), app_flags.end());
    argv.insert(argv.end(), inputs_.begin(), inputs_.end());
    return mrkv::test::run_to_end(spawn_options{argv, workdir_, {}, root_ / log}, job_limit);
  }

  std::vector<std::string> builtin(const std::string& app) {
    const std::string out = "../builtin-" + app + ".txt";
    REQUIRE(sequential({"--app", app}, out, "builtin-" + app + ".log") == 0);
    return sorted(lines_of(read_file(workdir_ / out)));
  }

  process& coordinator(std::vector<std::string> flags) {
    std::vector<std::string> argv{MRKV_BINARY, "coordinator", "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.insert(argv.end(), inputs_.begin(), inputs_.end());
    auto& c = start("coordinator", argv, workdir_);
    auto address = c.line_after("mrkv coordinator listening on ", 10s);
    REQUIRE_MESSAGE(address, "the coordinator did not announce its address:\n" << c.output());
    url_ = *address;
    return c;
  }

  process& worker(std::vector<std::string> app_flags, fs::path cwd = {}) {
    std::vector<std::string> argv{MRKV_BINARY, "worker", "--coordinator", url_, "--give-up-after", "5"};
    argv.insert(argv.end(), app_flags.begin(), app_flags.end());
    return start("worker-" + std::to_string(++workers_), argv, cwd.empty() ? workdir_ : cwd);
  }

  process& start(const std::string& name, std::vector<std::string> argv, const fs::path& cwd,
                 std::vector<std::string> env = {}) {
    names_.push_back(name);
    processes_.push_back(
        std::make_unique<process>(spawn_options{std::move(argv), cwd, std::move(env), root_ / (name + ".log")}));
    return *processes_.back();
  }

  // `mrkv status` (plain or --json) against the coordinator; its output.
  std::string status(bool json) {
    const auto log = root_ / ("status-" + std::to_string(++statuses_) + ".log");
    std::vector<std::string> argv{MRKV_BINARY, "status", "--coordinator", url_, "--log-level", "error"};
    if (json) argv.push_back("--json");
    mrkv::test::run_to_end(spawn_options{argv, workdir_, {}, log}, 30s);
    return read_file(log);
  }

  std::vector<std::string> outputs() const {
    std::string all;
    for (const auto& entry : fs::directory_iterator(workdir_))
      if (entry.path().filename().string().rfind("mr-out", 0) == 0) all += read_file(entry.path());
    return sorted(lines_of(all));
  }

  friend std::ostream& operator<<(std::ostream& out, const stream_job& job) {
    out << "job directory " << job.root_.string() << " (set MRKV_KEEP_TEST_DIRS to keep it)\n";
    for (std::size_t i = 0; i < job.processes_.size(); ++i) {
      auto text = job.processes_[i]->output();
      if (text.size() > 3000) text = "..." + text.substr(text.size() - 3000);
      out << "---- " << job.names_[i] << " (pid " << job.processes_[i]->pid() << ")\n" << text;
    }
    return out;
  }

 private:
  mrkv::test::temp_dir dir_{"stream"};
  fs::path root_;
  fs::path workdir_;
  std::vector<std::string> inputs_;
  std::string url_;
  int workers_ = 0;
  int statuses_ = 0;
  std::vector<std::string> names_;
  std::deque<std::unique_ptr<process>> processes_;
};

int exit_status(process& p, std::chrono::milliseconds limit) {
  auto status = p.wait_for(limit);
  REQUIRE_MESSAGE(status, "process " << p.pid() << " did not exit in time");
  return *status;
}

std::vector<std::string> stream_flags(const std::string& mapper, const std::string& reducer,
                                      const std::string& combiner = "") {
  std::vector<std::string> flags{"--mapper", mapper, "--reducer", reducer};
  if (!combiner.empty()) flags.insert(flags.end(), {"--combiner", combiner});
  return flags;
}

// No such process, or only its zombie (an orphan waits for whichever ancestor reaps it).
bool gone(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  const auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

}  // namespace

TEST_SUITE("mr_streaming") {

TEST_CASE("mr streaming: counters: reporter lines add up - anything else is not a counter") {
  mrkv::mr::counters c;
  CHECK(mrkv::mr::parse_counter_line("reporter:counter:wc,lines,3", c));
  CHECK(mrkv::mr::parse_counter_line("reporter:counter:wc,lines,+4", c));
  CHECK(mrkv::mr::parse_counter_line("reporter:counter:g,a,b,-2", c));  // the name holds a comma
  CHECK_FALSE(mrkv::mr::parse_counter_line("reporter:counter:wc,lines", c));
  CHECK_FALSE(mrkv::mr::parse_counter_line("reporter:counter:wc,lines,x", c));
  CHECK_FALSE(mrkv::mr::parse_counter_line("reporter:status:busy", c));
  CHECK_FALSE(mrkv::mr::parse_counter_line("counter:wc,lines,3", c));
  CHECK(c["wc"]["lines"] == 7);
  CHECK(c["g"]["a,b"] == -2);
  mrkv::mr::counters more{{"wc", {{"lines", 5}, {"words", 1}}}};
  mrkv::mr::add_counters(c, more);
  CHECK(c["wc"]["lines"] == 12);
  CHECK(c["wc"]["words"] == 1);
}

TEST_CASE("mr streaming: failure reports and counters on the wire - round trip and bad bodies refused") {
  namespace protocol = mrkv::mr::protocol;
  protocol::failed_request f{"w1", mrkv::mr::task_kind::reduce, 3, 2, "bad \xff byte, caf\xc3\xa9, \xed\xa0\x80 surrogate"};
  const auto j = protocol::encode(f);
  const auto text = j.dump();  // throws on invalid UTF-8: the encoder must have cleaned it
  const auto back = protocol::decode_failed_request(nlohmann::json::parse(text));
  CHECK(back.worker == "w1");
  CHECK(back.kind == mrkv::mr::task_kind::reduce);
  CHECK(back.task == 3);
  CHECK(back.attempt == 2);
  CHECK(back.error == "bad ? byte, caf\xc3\xa9, ??? surrogate");
  f.error = std::string(10000, 'x');
  CHECK(protocol::decode_failed_request(protocol::encode(f)).error.size() == protocol::max_error_length);

  protocol::done_request d{"w1", mrkv::mr::task_kind::map, 0, 1, {{"app", {{"lines", 5}, {"maps", -1}}}}};
  CHECK(protocol::decode_done_request(protocol::encode(d)).counts == d.counts);
  auto refused = [](nlohmann::json body) {
    try {
      protocol::decode_done_request(body);
    } catch (const mrkv::http::request_error& e) {
      return e.status() == 400;
    }
    return false;
  };
  nlohmann::json base{{"worker", "w1"}, {"kind", "map"}, {"task", 0}, {"attempt", 1}};
  auto with = [&](nlohmann::json counters) {
    auto b = base;
    b["counters"] = std::move(counters);
    return b;
  };
  CHECK(refused(with(nlohmann::json::array())));
  CHECK(refused(with({{"g", 1}})));
  CHECK(refused(with({{"g", {{"n", "1"}}}})));
  CHECK(refused(with({{"g", {{"n", 1.5}}}})));
  CHECK(refused(with({{"", {{"n", 1}}}})));
  nlohmann::json many = nlohmann::json::object();
  for (int i = 0; i < 300; ++i) many["g"]["n" + std::to_string(i)] = i;
  CHECK(refused(with(many)));
  auto empty_error = protocol::encode(protocol::failed_request{"w1", mrkv::mr::task_kind::map, 0, 1, "x"});
  empty_error["error"] = "";
  CHECK_THROWS_AS(protocol::decode_failed_request(empty_error), mrkv::http::request_error);
}

TEST_CASE("mr streaming: run_command: 64 MiB through cat both ways at once - no deadlock and nothing lost") {
  const std::size_t total = 64u << 20;
  std::size_t fed = 0, received = 0;
  std::uint64_t sum_in = 0, sum_out = 0;
  mrkv::mr::command_io io;
  io.feed = [&](std::string& chunk) {
    const std::size_t n = std::min<std::size_t>(total - fed, 1 << 16);
    for (std::size_t i = 0; i < n; ++i) chunk.push_back(static_cast<char>((fed + i) * 7 % 251));
    for (std::size_t i = 0; i < n; ++i) sum_in += static_cast<unsigned char>(chunk[chunk.size() - n + i]) * (fed + i + 1);
    fed += n;
    return fed < total;
  };
  io.on_stdout = [&](std::string_view bytes) {
    for (unsigned char b : bytes) sum_out += b * (++received);
  };
  const auto result = mrkv::mr::run_command("cat", {}, io, std::chrono::steady_clock::now() + 60s);
  CHECK(result.ok());
  CHECK(received == total);
  CHECK(sum_out == sum_in);
}

TEST_CASE("mr streaming: run_command: exit status and signal and standard error lines and environment and a kill at the deadline") {
  std::vector<std::string> err;
  mrkv::mr::command_io io;
  io.on_stderr_line = [&](std::string_view line) { err.emplace_back(line); };
  auto r = mrkv::mr::run_command("echo one >&2; printf 'two %s' \"$X\" >&2; exit 3", {"X=x1"}, io,
                                 std::chrono::steady_clock::now() + 30s);
  CHECK(r.exit_status == 3);
  CHECK_FALSE(r.ok());
  CHECK(r.describe() == "exited with status 3");
  CHECK(err == std::vector<std::string>{"one", "two x1"});

  r = mrkv::mr::run_command("kill -SEGV $$", {}, {}, std::chrono::steady_clock::now() + 30s);
  CHECK(r.signal == SIGSEGV);
  CHECK(r.describe().find("signal 11") != std::string::npos);

  // A pipeline's every stage is killed, not only the shell: the group goes.
  const auto started = std::chrono::steady_clock::now();
  std::string pid_text;
  mrkv::mr::command_io sleeper;
  sleeper.on_stdout = [&](std::string_view bytes) { pid_text.append(bytes); };
  r = mrkv::mr::run_command("sleep 300 & echo $!; wait", {}, sleeper, started + 1s);
  CHECK(r.timed_out);
  CHECK(std::chrono::steady_clock::now() - started < 20s);
  const pid_t sleep_pid = std::stoi(pid_text);
  CHECK(poll_until([&] { return gone(sleep_pid); }, 10s));
}

TEST_CASE("mr streaming: run_command: a command that closes its output and runs on is killed at the deadline") {
  // Before the child's exit was watched, the end of both pipes left run_command in a waitpid() with no
  // deadline: a task whose mapper did this never ended.
  std::string pid_text;
  mrkv::mr::command_io io;
  io.on_stdout = [&](std::string_view bytes) { pid_text.append(bytes); };
  const auto started = std::chrono::steady_clock::now();
  const auto r = mrkv::mr::run_command("echo $$; exec sleep 300 >&- 2>&-", {}, io, started + 1s);
  CHECK(r.timed_out);
  CHECK(r.signal == SIGKILL);
  CHECK(std::chrono::steady_clock::now() - started < 20s);
  const pid_t shell_pid = std::stoi(pid_text);
  CHECK(gone(shell_pid));
}

TEST_CASE("mr streaming: run_command: a shell that exits leaving a background job on its output ends the command") {
  // The job's output after the exit is still taken for a grace period, then the job is killed: the
  // shell's status is the command's, not a time out at the deadline.
  std::string out;
  mrkv::mr::command_io io;
  io.on_stdout = [&](std::string_view bytes) { out.append(bytes); };
  const auto started = std::chrono::steady_clock::now();
  const auto r = mrkv::mr::run_command("(sleep 0.2; echo late; exec sleep 300) & echo $!; exit 5", {}, io,
                                       started + 60s);
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_status == 5);
  CHECK(out.find("late\n") != std::string::npos);
  CHECK(took < 15s);
  const pid_t job_pid = std::stoi(out);
  CHECK(poll_until([&] { return gone(job_pid); }, 10s));
}

TEST_CASE("mr streaming: run_command: one simple command replaces the shell - anything else runs under it as written") {
  auto run = [](const std::string& command) {
    std::string out;
    mrkv::mr::command_io io;
    io.on_stdout = [&](std::string_view bytes) { out.append(bytes); };
    const auto r = mrkv::mr::run_command(command, {"MRKV_TEST_VAR=x"}, io, std::chrono::steady_clock::now() + 30s);
    return std::pair{r, out};
  };
  // The 4th field of /proc/self/stat is the parent's pid: this process when sh exec'd the program.
  auto parent_of_reader = [&](const std::string& command) {
    const auto [r, out] = run(command);
    REQUIRE(r.ok());
    std::istringstream fields(out.substr(out.rfind(')') + 2));
    std::string state;
    pid_t parent = 0;
    fields >> state >> parent;
    return parent;
  };
  CHECK(parent_of_reader("cat /proc/self/stat") == ::getpid());
  CHECK(parent_of_reader("LC_ALL=C cat '/proc/self/stat'") == ::getpid());
  CHECK(parent_of_reader("cat /proc/self/stat | cat") != ::getpid());
  CHECK(parent_of_reader("cat /proc/self/stat; true") != ::getpid());

  CHECK(run("exit 3").first.exit_status == 3);
  CHECK(run("  true  ").first.ok());
  CHECK(run("ONLY=assignment").first.ok());
  CHECK(run("nosuch-program-of-mrkv").first.exit_status == 127);
  const auto [r, env] = run("FOO=bar env");
  CHECK(r.ok());
  CHECK(env.find("\nFOO=bar\n") != std::string::npos);
  CHECK(env.find("\nMRKV_TEST_VAR=x\n") != std::string::npos);
  // A program killed by a signal, with no shell in between to turn it into a status.
  CHECK(run("sleep 30 & kill -TERM $!; wait $!").first.exit_status == 128 + SIGTERM);
  CHECK(run("python3 -c 'import os,signal;os.kill(os.getpid(),signal.SIGTERM)'").first.signal == SIGTERM);
}

TEST_CASE("mr streaming: wc and indexer in Python and awk through mrkv sequential - the built-in apps' output") {
  stream_job job;
  INFO(job);
  const auto wc = job.builtin("wc");
  const auto indexer = job.builtin("indexer");
  REQUIRE(wc.size() == 22107);
  const auto wc_map = job.script("wc_map.py", py_wc_map);
  const auto wc_reduce = job.script("wc_reduce.py", py_wc_reduce);
  const auto ix_map = job.script("ix_map.py", py_indexer_map);
  const auto ix_reduce = job.script("ix_reduce.py", py_indexer_reduce);

  REQUIRE(job.sequential(stream_flags("python3 " + wc_map, "python3 " + wc_reduce), "../py-wc.txt", "py-wc.log") == 0);
  CHECK(sorted(lines_of(read_file(job.root() / "py-wc.txt"))) == wc);
  REQUIRE(job.sequential(stream_flags("python3 " + ix_map, "python3 " + ix_reduce), "../py-ix.txt", "py-ix.log") == 0);
  CHECK(sorted(lines_of(read_file(job.root() / "py-ix.txt"))) == indexer);
  // awk, with a combiner (a word count's partial sums are counts again), and a 1 MiB sort buffer, so
  // every map spills several sorted runs that the reduce merges.
  auto combined = stream_flags(awk_wc_map, awk_wc_reduce, R"(LC_ALL=C awk -F'\t' '$1 != k { if (NR > 1) print k "\t" n; k = $1; n = 0 } { n += $2 } END { if (NR > 0) print k "\t" n }')");
  combined.insert(combined.end(), {"--sort-buffer", "1", "--log-level", "debug"});
  REQUIRE(job.sequential(combined, "../awk-wc.txt", "awk-wc.log") == 0);
  CHECK(sorted(lines_of(read_file(job.root() / "awk-wc.txt"))) == wc);
  CHECK(std::regex_search(read_file(job.root() / "awk-wc.log"), std::regex(" records in ([2-9]|[1-9][0-9]+) spill")));
  REQUIRE(job.sequential(stream_flags(awk_indexer_map, awk_indexer_reduce), "../awk-ix.txt", "awk-ix.log") == 0);
  CHECK(sorted(lines_of(read_file(job.root() / "awk-ix.txt"))) == indexer);
  // The output is sorted by key as the reducer wrote it, and the scratch directory is gone.
  for (const auto& e : fs::directory_iterator(job.workdir()))
    CHECK_MESSAGE(e.path().filename().string().rfind(".mrkv-sequential", 0) != 0, e.path());
}

TEST_CASE("mr streaming: wc in Python and indexer in awk through a coordinator and two workers - the built-in apps' output") {
  stream_job job;
  INFO(job);
  const auto wc = job.builtin("wc");
  const auto indexer = job.builtin("indexer");
  const auto wc_map = job.script("wc_map.py", py_wc_map);
  const auto wc_reduce = job.script("wc_reduce.py", py_wc_reduce);
  {
    auto& coordinator = job.coordinator({"--task-timeout", "30"});
    auto& a = job.worker(stream_flags("python3 " + wc_map, "python3 " + wc_reduce));
    auto& b = job.worker(stream_flags("python3 " + wc_map, "python3 " + wc_reduce));
    CHECK(exit_status(coordinator, job_limit) == 0);
    CHECK(exit_status(a, job_limit) == 0);
    CHECK(exit_status(b, job_limit) == 0);
    CHECK(job.outputs() == wc);
  }
  for (const auto& e : fs::directory_iterator(job.workdir())) fs::remove(e.path());
  auto& coordinator = job.coordinator({"--task-timeout", "30", "--reduce", "3"});
  auto& a = job.worker(stream_flags(awk_indexer_map, awk_indexer_reduce));
  auto& b = job.worker(stream_flags(awk_indexer_map, awk_indexer_reduce));
  CHECK(exit_status(coordinator, job_limit) == 0);
  CHECK(exit_status(a, job_limit) == 0);
  CHECK(exit_status(b, job_limit) == 0);
  CHECK(job.outputs() == indexer);
}

TEST_CASE("mr streaming: records with spaces and tabs and UTF-8 and empty lines - and several reducer lines per key - arrive as written") {
  stream_job job;
  INFO(job);
  job.inputs() = {"../one.txt"};
  write_file(job.root() / "one.txt", "x\n");
  // The mapper ignores its input and prints awkward records, the last one without a newline.
  const std::string mapper = job.script(
      "odd_map.sh",
      "printf 'key with spaces\\tvalue\\n'\n"
      "printf 'tabs\\ta\\tb\\t\\tc\\n'\n"
      "printf '\\n'\n"
      "printf 'no tab here\\n'\n"
      "printf '\\303\\251t\\303\\251 \\360\\237\\230\\200\\tna\\303\\257ve\\n'\n"
      "printf 'key with spaces\\tsecond\\n'\n"
      "printf 'last\\tno newline'\n");
  // The reducer prints two lines for every record: the record itself and its key in brackets.
  const std::string reducer = R"(awk '{ print; i = index($0, "\t"); print "[" substr($0, 1, i - 1) "]" }')";
  REQUIRE(job.sequential(stream_flags("sh " + mapper, reducer), "../odd.txt", "odd.log") == 0);
  const auto got = lines_of(read_file(job.root() / "odd.txt"), true);
  // Records in key byte order (the two "key with spaces" in either order); a line without a tab is a
  // key with an empty value, written back as key and tab.
  std::vector<std::string> expected{"\t", "[]",
                                    "key with spaces\tsecond", "[key with spaces]",
                                    "key with spaces\tvalue", "[key with spaces]",
                                    "last\tno newline", "[last]",
                                    "no tab here\t", "[no tab here]",
                                    "tabs\ta\tb\t\tc", "[tabs]",
                                    "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80\tna\xc3\xafve", "[\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80]"};
  REQUIRE(got.size() == expected.size());
  CHECK(sorted(got) == sorted(expected));
  CHECK(got[0] == "\t");
  CHECK(got.back() == "[\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80]");
  // Each record's bracket line follows it.
  for (std::size_t i = 0; i + 1 < got.size(); i += 2) CHECK(got[i + 1] == "[" + got[i].substr(0, got[i].find('\t')) + "]");
}

TEST_CASE("mr streaming: a mapper that exits 1 on one input: its attempts fail with its stderr - after 4 the job fails") {
  stream_job job;
  INFO(job);
  // Slow to fail (1 s), so the status can be read between failures.
  const std::string mapper = job.script(
      "fail_map.sh",
      "case \"$MRKV_INPUT_FILE\" in *grimm*) sleep 1; echo \"cannot parse $MRKV_INPUT_FILE (attempt $MRKV_ATTEMPT)\" >&2; "
      "exit 1;; esac\ncat >/dev/null\necho \"$MRKV_INPUT_FILE\tx\"\n");
  {
    // Sequential: the exit status and the stderr in the message.
    const int status = job.sequential(stream_flags("sh " + mapper, "cat"), "../seq.txt", "seq.log");
    CHECK(status == 1);
    const auto log = read_file(job.root() / "seq.log");
    CHECK(log.find("mapper 'sh ../fail_map.sh' exited with status 1") != std::string::npos);
    CHECK(log.find("cannot parse ../pg-grimm.txt (attempt 1)") != std::string::npos);
  }
  auto& coordinator = job.coordinator({"--task-timeout", "30"});
  auto& a = job.worker(stream_flags("sh " + mapper, "cat"));
  auto& b = job.worker(stream_flags("sh " + mapper, "cat"));
  // The task's last error shows in /v1/job and mrkv status while the job runs.
  std::string json_text, plain;
  CHECK(poll_until(
      [&] {
        json_text = job.status(true);
        const auto j = nlohmann::json::parse(json_text, nullptr, false);
        return !j.is_discarded() && j.contains("task_errors") && !j["task_errors"].empty();
      },
      60s));
  const auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (!j.is_discarded() && !j["task_errors"].empty()) {
    const auto& e = j["task_errors"][0];
    CHECK(e["kind"] == "map");
    CHECK(e["last_error"].get<std::string>().find("cannot parse ../pg-grimm.txt") != std::string::npos);
    CHECK(e["failed_attempts"].get<int>() >= 1);
  }
  plain = job.status(false);
  CHECK_MESSAGE((plain.find("cannot parse ../pg-grimm.txt") != std::string::npos || plain.find("failed") != std::string::npos), plain);
  CHECK(exit_status(coordinator, job_limit) == 1);
  const auto log = coordinator.output();
  CHECK(log.find("failed 4 times; last error: map task") != std::string::npos);
  CHECK(log.find("cannot parse ../pg-grimm.txt (attempt 4)") != std::string::npos);
  CHECK(exit_status(a, job_limit) == 0);
  CHECK(exit_status(b, job_limit) == 0);
  CHECK(job.outputs().empty());
}

TEST_CASE("mr streaming: a mapper that hangs is killed at the task timeout - four such attempts fail the job") {
  stream_job job;
  INFO(job);
  job.inputs() = {"../pg-grimm.txt"};
  const std::string mapper = job.script("hang_map.sh", "echo $$ >> ../hung.pids\nexec sleep 600\n");
  const auto started = std::chrono::steady_clock::now();
  auto& coordinator = job.coordinator({"--task-timeout", "2", "--reduce", "1"});
  auto& w = job.worker(stream_flags("sh " + mapper, "cat"));
  CHECK(exit_status(coordinator, job_limit) == 1);
  CHECK(std::chrono::steady_clock::now() - started < 90s);
  CHECK(coordinator.output().find("did not finish in time and was killed") != std::string::npos);
  CHECK(exit_status(w, job_limit) == 0);
  const auto pids = lines_of(read_file(job.root() / "hung.pids"));
  CHECK(pids.size() == 4);
  for (const auto& pid : pids)
    CHECK_MESSAGE(poll_until([&] { return gone(std::stoi(pid)); }, 10s), "mapper " << pid << " still runs");
}

TEST_CASE("mr streaming: a worker stopped by SIGTERM takes its running mapper with it") {
  stream_job job;
  INFO(job);
  job.inputs() = {"../pg-grimm.txt"};
  const std::string mapper = job.script("hang_map.sh", "echo $$ >> ../hung.pids\nexec sleep 600\n");
  job.coordinator({"--task-timeout", "60", "--reduce", "1"});
  auto& w = job.worker(stream_flags("sh " + mapper, "cat"));
  REQUIRE(poll_until([&] { return !lines_of(read_file(job.root() / "hung.pids")).empty(); }, 30s));
  w.signal(SIGTERM);
  CHECK(exit_status(w, 30s) == 128 + SIGTERM);
  const auto pids = lines_of(read_file(job.root() / "hung.pids"));
  REQUIRE(pids.size() == 1);
  CHECK_MESSAGE(poll_until([&] { return gone(std::stoi(pids[0])); }, 10s), "mapper " << pids[0] << " still runs");
}

TEST_CASE("mr streaming: a 1 GB map output through a worker limited to 600 MB of address space - its memory stays small") {
  if (sanitized) {
    // Address-space limits and resident memory mean nothing under sanitizers' shadow memory.
    MESSAGE("skipped under sanitizers: the 1 GB map output test");
    return;
  }
  stream_job job;
  INFO(job);
  job.inputs() = {"../one.txt"};
  write_file(job.root() / "one.txt", "x\n");
  // 1,000,000 records of ~1 KiB (1 GB) over 1,000 keys; the reducer counts records, keys and bytes.
  const std::string mapper =
      R"(mawk 'BEGIN { s = sprintf("%1000s", ""); gsub(/ /, "v", s); for (i = 0; i < 1000000; i++) print "k" (i % 1000) "\t" s }')";
  const std::string reducer =
      R"(mawk -F'\t' '$1 != k { keys++; k = $1 } { bytes += length($0) + 1 } END { print NR, keys, bytes }')";
  auto& coordinator = job.coordinator({"--task-timeout", "300", "--reduce", "1"});
  // The commands hold single quotes: they reach the shell through the environment.
  const std::string wrapper = "ulimit -v 600000 && exec \"$MRKV\" worker --coordinator \"$URL\" --give-up-after 5 "
                              "--sort-buffer 32 --mapper \"$MAPPER\" --reducer \"$REDUCER\"";
  auto& w = job.start("worker", {"/bin/sh", "-c", wrapper}, job.workdir(),
                      {"MRKV=" + std::string(MRKV_BINARY), "URL=" + job.url(), "MAPPER=" + mapper, "REDUCER=" + reducer});
  CHECK(exit_status(coordinator, 600s) == 0);
  CHECK(exit_status(w, 60s) == 0);
  const auto out = job.outputs();
  REQUIRE(out.size() == 1);
  CHECK(out[0] == "1000000 1000 1005890000");
  const auto log = w.output();
  const auto at = log.find("peak resident memory ");
  REQUIRE(at != std::string::npos);
  const long mib = std::stol(log.substr(at + 21));
  std::cout << "[mr_streaming] 1 GB map output: worker peak resident memory " << mib << " MiB" << std::endl;
  CHECK(mib < 250);
}

TEST_CASE("mr streaming: counters from two tasks add up - in the job's status and mrkv sequential's log") {
  stream_job job;
  INFO(job);
  job.inputs() = {"../a.txt", "../b.txt"};
  write_file(job.root() / "a.txt", "1\n2\n3\n");
  write_file(job.root() / "b.txt", "4\n5\n");
  const std::string mapper = job.script(
      "count_map.sh", "n=0\nwhile read -r line; do n=$((n+1)); echo \"$line\tx\"; done\n"
                      "echo \"reporter:counter:app,lines,$n\" >&2\necho 'reporter:counter:app,maps,1' >&2\n"
                      "echo 'reporter:status:done' >&2\n");
  REQUIRE(job.sequential(stream_flags("sh " + mapper, "cat"), "../seq.txt", "seq.log") == 0);
  const auto seq_log = read_file(job.root() / "seq.log");
  CHECK(seq_log.find("counter app,lines = 5") != std::string::npos);
  CHECK(seq_log.find("counter app,maps = 2") != std::string::npos);

  // A coordinator that waits for a worker it never sees keeps answering after the job is done.
  auto& coordinator = job.coordinator({"--task-timeout", "30", "--reduce", "2", "--exit-grace", "30"});
  auto& a = job.worker(stream_flags("sh " + mapper, "cat"));
  auto& b = job.worker(stream_flags("sh " + mapper, "cat"));
  CHECK(exit_status(coordinator, job_limit) == 0);
  CHECK(exit_status(a, job_limit) == 0);
  CHECK(exit_status(b, job_limit) == 0);
  CHECK(coordinator.output().find("counter app,lines = 5") != std::string::npos);
  CHECK(coordinator.output().find("counter app,maps = 2") != std::string::npos);
  CHECK(job.outputs() == std::vector<std::string>{"1\tx", "2\tx", "3\tx", "4\tx", "5\tx"});
}

TEST_CASE("mr streaming: a built-in app whose worker can't read its input: 4 reported failures fail the job with the error") {
  stream_job job;
  INFO(job);
  // Inputs named relative to mr-tmp/ (../pg-*.txt), and a worker started one directory deeper.
  const auto elsewhere = job.workdir() / "deeper";
  fs::create_directories(elsewhere);
  auto& coordinator = job.coordinator({"--task-timeout", "30"});
  auto& w = job.worker({"--app", "wc"}, elsewhere);
  CHECK(exit_status(coordinator, job_limit) == 1);
  const auto log = coordinator.output();
  CHECK(log.find("map task 0 failed 4 times; last error: map task 0: cannot open ../pg-being_ernest.txt") !=
        std::string::npos);
  CHECK(exit_status(w, job_limit) == 0);
}

TEST_CASE("mr streaming: the command line: --app with --mapper or a mapper without a reducer or no app at all - exit 2") {
  stream_job job;
  INFO(job);
  CHECK(job.sequential({"--app", "wc", "--mapper", "cat"}, "../x.txt", "a.log") == 2);
  CHECK(read_file(job.root() / "a.log").find("not both") != std::string::npos);
  CHECK(job.sequential({"--mapper", "cat"}, "../x.txt", "b.log") == 2);
  CHECK(job.sequential({}, "../x.txt", "c.log") == 2);
  const int worker = mrkv::test::run_to_end(
      spawn_options{{MRKV_BINARY, "worker", "--coordinator", "http://127.0.0.1:1", "--app", "wc", "--mapper", "cat",
                     "--reducer", "cat"},
                    job.workdir(), {}, job.root() / "d.log"},
      30s);
  CHECK(worker == 2);
  const int help = mrkv::test::run_to_end(
      spawn_options{{MRKV_BINARY, "worker", "--help"}, job.workdir(), {}, job.root() / "help.log"}, 30s);
  CHECK(help == 0);
  const auto text = read_file(job.root() / "help.log");
  CHECK(text.find("MRKV_INPUT_FILE") != std::string::npos);
  CHECK(text.find("reporter:counter:GROUP,NAME,AMOUNT") != std::string::npos);
}

}  // TEST_SUITE
