#include "mrkv/mr/streaming.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/mr/child_process.hpp"
#include "mrkv/mr/partition.hpp"
#include "mrkv/mr/task_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <queue>
#include <random>
#include <system_error>

namespace mrkv::mr {
namespace {

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

void append_varint(std::string& out, std::uint64_t v) {
  do {
    auto byte = static_cast<unsigned char>(v & 0x7f);
    v >>= 7;
    if (v != 0) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (v != 0);
}

// Reads a varint at s[pos]: false if incomplete (or longer than 10 bytes, which the caller tells apart).
bool read_varint(std::string_view s, std::size_t& pos, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (pos >= s.size()) return false;
    const auto b = static_cast<unsigned char>(s[pos++]);
    v |= static_cast<std::uint64_t>(b & 0x7f) << (shift < 64 ? shift : 0);
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// Cuts stdout bytes into lines, keeping a partial line across chunks (lines are never cut: a record
// is as long as its line).
class line_assembler {
 public:
  template <class F>
  void add(std::string_view bytes, F&& on_line) {
    while (!bytes.empty()) {
      const auto nl = bytes.find('\n');
      if (nl == std::string_view::npos) {
        partial_.append(bytes);
        return;
      }
      if (partial_.empty()) {
        on_line(bytes.substr(0, nl));
      } else {
        partial_.append(bytes.substr(0, nl));
        on_line(std::string_view(partial_));
        partial_.clear();
      }
      bytes.remove_prefix(nl + 1);
    }
  }
  template <class F>
  void finish(F&& on_line) {
    if (!partial_.empty()) on_line(std::string_view(partial_));
    partial_.clear();
  }

 private:
  std::string partial_;
};

std::pair<std::string_view, std::string_view> split_record(std::string_view line) {
  const auto tab = line.find('\t');
  if (tab == std::string_view::npos) return {line, {}};
  return {line.substr(0, tab), line.substr(tab + 1)};
}

// The records of one spill, before it is written: one arena of bytes and an entry per record.
class sort_buffer {
 public:
  struct entry {
    std::uint64_t offset;  // of the key in arena_; the value follows it
    std::uint32_t key_size;
    std::uint32_t value_size;
    std::uint32_t partition;
  };

  void add(std::uint32_t partition, std::string_view key, std::string_view value) {
    if (key.size() > UINT32_MAX || value.size() > UINT32_MAX) throw std::length_error("record over 4 GiB");
    entries_.push_back({arena_.size(), static_cast<std::uint32_t>(key.size()),
                        static_cast<std::uint32_t>(value.size()), partition});
    arena_.append(key).append(value);
  }
  std::size_t bytes() const noexcept { return arena_.size() + entries_.size() * sizeof(entry); }
  bool empty() const noexcept { return entries_.empty(); }
  std::string_view key(const entry& e) const noexcept { return {arena_.data() + e.offset, e.key_size}; }
  std::string_view value(const entry& e) const noexcept {
    return {arena_.data() + e.offset + e.key_size, e.value_size};
  }
  void sort() {
    std::sort(entries_.begin(), entries_.end(), [this](const entry& a, const entry& b) {
      if (a.partition != b.partition) return a.partition < b.partition;
      return key(a) < key(b);
    });
  }
  const std::vector<entry>& entries() const noexcept { return entries_; }
  void clear() {
    // Give the memory back: the next spill builds its own, and the peak stays one buffer.
    std::string().swap(arena_);
    std::vector<entry>().swap(entries_);
  }

 private:
  std::string arena_;
  std::vector<entry> entries_;
};

struct run_location {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::uint64_t records = 0;
};

// One streaming command run with the bookkeeping every kind shares: counters, the tail of standard
// error, and the message when it fails.
class command_run {
 public:
  command_run(std::string task, std::string role, std::string command)
      : task_(std::move(task)), role_(std::move(role)), command_(std::move(command)) {}

  void run(const std::vector<std::string>& env, command_io io, task_deadline deadline) {
    io.on_stderr_line = [this](std::string_view line) {
      if (parse_counter_line(line, counters_) || is_reporter_line(line)) return;
      tail_.add(line);
      if (log::enabled(log::level::debug)) log::debug("stream", task_ + " " + role_ + ": " + log::peer_text(line));
    };
    const auto result = run_command(command_, env, std::move(io), deadline);
    if (result.ok()) return;
    std::string message = task_ + ": " + role_ + " '" + command_ + "' " + result.describe();
    const auto tail = tail_.text();
    message += tail.empty() ? "; no standard error" : "; standard error: " + tail;
    throw command_error(message);
  }
  const counters& counts() const noexcept { return counters_; }

 private:
  std::string task_;
  std::string role_;
  std::string command_;
  counters counters_;
  line_tail tail_;
};

// Encodes records as a run, appending to `out`.
void append_record(std::string& out, std::string_view key, std::string_view value) {
  append_varint(out, key.size());
  out.append(key);
  append_varint(out, value.size());
  out.append(value);
}

// The map side of a streaming task: the mapper's records in, spills out.
class map_output {
 public:
  map_output(const stream_commands& commands, std::string task, int map_id, int attempt, int n_reduce,
             std::filesystem::path workdir, task_deadline deadline)
      : commands_(commands), task_(std::move(task)), map_id_(map_id), attempt_(attempt), n_reduce_(n_reduce),
        workdir_(std::move(workdir)), deadline_(deadline) {}

  void add_line(std::string_view line) {
    const auto [key, value] = split_record(line);
    buffer_.add(static_cast<std::uint32_t>(reduce_bucket(key, n_reduce_)), key, value);
    ++records_in_;
    if (buffer_.bytes() >= commands_.sort_buffer) spill();
  }

  void spill() {
    if (buffer_.empty()) return;
    buffer_.sort();
    if (!commands_.combiner.empty()) combine();
    write_spill();
    buffer_.clear();
  }

  // Writes the index that publishes this attempt's spills.
  void finish() {
    spill();
    nlohmann::json spills = nlohmann::json::array();
    for (std::size_t k = 0; k < spill_names_.size(); ++k) {
      nlohmann::json runs = nlohmann::json::array();
      for (const auto& r : spill_runs_[k]) runs.push_back({r.offset, r.length, r.records});
      spills.push_back({{"file", spill_names_[k]}, {"runs", std::move(runs)}});
    }
    const nlohmann::json index{{"format", "mrkv-stream-1"}, {"map", map_id_},      {"attempt", attempt_},
                               {"n_reduce", n_reduce_},      {"spills", std::move(spills)}};
    write_file_atomically(workdir_ / stream_index_file_name(map_id_), index.dump() + "\n");
  }

  counters& counts() noexcept { return counters_; }
  std::uint64_t records_in() const noexcept { return records_in_; }
  std::size_t spills() const noexcept { return spill_names_.size(); }

 private:
  // Runs the combiner over the sorted buffer, whose records it replaces with the combiner's.
  void combine() {
    sort_buffer combined;
    const auto& entries = buffer_.entries();
    std::size_t next = 0;
    command_io io;
    io.feed = [&](std::string& chunk) {
      for (; next < entries.size() && chunk.size() < (64u << 10); ++next) {
        const auto& e = entries[next];
        chunk.append(buffer_.key(e)).append(1, '\t').append(buffer_.value(e)).append(1, '\n');
      }
      return next < entries.size();
    };
    line_assembler lines;
    auto on_line = [&](std::string_view line) {
      const auto [key, value] = split_record(line);
      combined.add(static_cast<std::uint32_t>(reduce_bucket(key, n_reduce_)), key, value);
    };
    io.on_stdout = [&](std::string_view bytes) { lines.add(bytes, on_line); };
    command_run run(task_, "combiner", commands_.combiner);
    run.run(environment(), std::move(io), deadline_);
    lines.finish(on_line);
    add_counters(counters_, run.counts());
    // The combiner may emit keys in any order, or new ones: sort again.
    combined.sort();
    buffer_ = std::move(combined);
  }

  void write_spill() {
    const std::string name = "mr-" + std::to_string(map_id_) + "-a" + std::to_string(attempt_) + "-s" +
                             std::to_string(spill_names_.size());
    atomic_file_writer out(workdir_ / name);
    std::vector<run_location> runs(static_cast<std::size_t>(n_reduce_));
    std::string chunk;
    std::uint64_t offset = 0;
    for (const auto& e : buffer_.entries()) {
      auto& run = runs[e.partition];
      if (run.records == 0) run.offset = offset + chunk.size();
      const auto before = chunk.size();
      append_record(chunk, buffer_.key(e), buffer_.value(e));
      run.length += chunk.size() - before;
      ++run.records;
      if (chunk.size() >= (1u << 20)) {
        out.append(chunk);
        offset += chunk.size();
        chunk.clear();
      }
    }
    out.append(chunk);
    out.commit();
    spill_names_.push_back(name);
    spill_runs_.push_back(std::move(runs));
  }

  std::vector<std::string> environment() const {
    return {"MRKV_TASK=" + std::to_string(map_id_), "MRKV_ATTEMPT=" + std::to_string(attempt_)};
  }

  const stream_commands& commands_;
  std::string task_;
  int map_id_;
  int attempt_;
  int n_reduce_;
  std::filesystem::path workdir_;
  task_deadline deadline_;
  sort_buffer buffer_;
  std::vector<std::string> spill_names_;
  std::vector<std::vector<run_location>> spill_runs_;
  counters counters_;
  std::uint64_t records_in_ = 0;
};

// A file descriptor shared by the runs of one spill file.
struct shared_fd {
  int fd = -1;
  explicit shared_fd(int f) : fd(f) {}
  shared_fd(const shared_fd&) = delete;
  shared_fd& operator=(const shared_fd&) = delete;
  ~shared_fd() {
    if (fd >= 0) ::close(fd);
  }
};

[[noreturn]] void corrupt(const std::string& source, const std::string& why) {
  throw task_file_error(task_file_error::kind::corrupt, "corrupt map output " + source + ": " + why);
}

// Reads one run's records in order through a small buffer.
class run_reader {
 public:
  run_reader(std::shared_ptr<shared_fd> file, std::string source, run_location where)
      : file_(std::move(file)), source_(std::move(source)), next_offset_(where.offset),
        end_(where.offset + where.length), records_left_(where.records) {}

  // Moves to the next record; false at the end of the run.
  bool next() {
    if (records_left_ == 0) {
      if (consumed_ != buffer_.size() || next_offset_ != end_) corrupt(source_, "bytes after the last record");
      return false;
    }
    for (;;) {
      std::size_t pos = consumed_;
      std::uint64_t key_size = 0, value_size = 0;
      const std::string_view view(buffer_);
      if (read_varint(view, pos, key_size) && key_size <= view.size() - pos) {
        const std::size_t key_at = pos;
        pos += key_size;
        if (read_varint(view, pos, value_size) && value_size <= view.size() - pos) {
          key_ = view.substr(key_at, key_size);
          value_ = view.substr(pos, value_size);
          consumed_ = pos + value_size;
          --records_left_;
          return true;
        }
      }
      // Incomplete: read more, keeping the partial record.
      if (next_offset_ >= end_) corrupt(source_, "a run ends in the middle of a record");
      buffer_.erase(0, consumed_);
      consumed_ = 0;
      const std::size_t want = std::max<std::size_t>(64u << 10, buffer_.size());
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(want, end_ - next_offset_));
      const std::size_t old = buffer_.size();
      buffer_.resize(old + n);
      std::size_t got = 0;
      while (got < n) {
        const ssize_t r = ::pread(file_->fd, buffer_.data() + old + got, n - got,
                                  static_cast<off_t>(next_offset_ + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
          const int err = errno;
          throw task_file_error(task_file_error::kind::io, "cannot read " + source_ + ": " + errno_text(err));
        }
        if (r == 0) corrupt(source_, "truncated");
        got += static_cast<std::size_t>(r);
      }
      next_offset_ += n;
    }
  }
  std::string_view key() const noexcept { return key_; }
  std::string_view value() const noexcept { return value_; }

 private:
  std::shared_ptr<shared_fd> file_;
  std::string source_;
  std::uint64_t next_offset_;
  std::uint64_t end_;
  std::uint64_t records_left_;
  std::string buffer_;
  std::size_t consumed_ = 0;
  std::string_view key_;
  std::string_view value_;
};

std::shared_ptr<shared_fd> open_for_reading(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw task_file_error(err == ENOENT ? task_file_error::kind::missing : task_file_error::kind::io,
                          "cannot open " + path.string() + ": " + errno_text(err));
  }
  return std::make_shared<shared_fd>(fd);
}

// The runs of partition `reduce_id` in map `map_id`'s output, appended to `readers`.
void open_runs(const std::filesystem::path& workdir, int map_id, int reduce_id,
               std::vector<std::unique_ptr<run_reader>>& readers) {
  const auto index_path = workdir / stream_index_file_name(map_id);
  const std::string text = read_whole_file(index_path);
  const auto index = nlohmann::json::parse(text, nullptr, false);
  try {
    if (index.is_discarded() || !index.is_object() || index.value("format", "") != "mrkv-stream-1")
      corrupt(index_path.string(), "not a streaming map output index");
    if (index.at("n_reduce").get<int>() <= reduce_id)
      corrupt(index_path.string(), "written for fewer reduce tasks than this job has");
    for (const auto& spill : index.at("spills")) {
      const auto file = spill.at("file").get<std::string>();
      if (file.find('/') != std::string::npos) corrupt(index_path.string(), "a spill outside the work directory");
      const auto& run = spill.at("runs").at(static_cast<std::size_t>(reduce_id));
      const run_location where{run.at(0).get<std::uint64_t>(), run.at(1).get<std::uint64_t>(),
                               run.at(2).get<std::uint64_t>()};
      if (where.records == 0) continue;
      readers.push_back(std::make_unique<run_reader>(open_for_reading(workdir / file), (workdir / file).string(), where));
    }
  } catch (const nlohmann::json::exception& e) {
    corrupt(index_path.string(), e.what());
  }
}

template <class F>
auto in_task(const std::string& task, F&& body) {
  try {
    return body();
  } catch (const task_file_error& e) {
    throw task_file_error(e.why(), task + ": " + e.what());
  }
}

}  // namespace

std::string stream_index_file_name(int map_id) { return "mr-" + std::to_string(map_id) + "-index"; }

counters run_stream_map_task(const stream_commands& commands, int map_id, int attempt, const std::string& input,
                             int n_reduce, const std::filesystem::path& workdir, task_deadline deadline) {
  if (map_id < 0) throw std::invalid_argument("run_stream_map_task: negative map task number");
  if (n_reduce < 1) throw std::invalid_argument("run_stream_map_task: n_reduce must be at least 1");
  const std::string task = "map task " + std::to_string(map_id);
  return in_task(task, [&] {
    const int fd = ::open(input.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      throw task_file_error(err == ENOENT ? task_file_error::kind::missing : task_file_error::kind::io,
                            "cannot open " + input + ": " + errno_text(err));
    }
    shared_fd input_fd(fd);
    map_output output(commands, task, map_id, attempt, n_reduce, workdir, deadline);
    line_assembler lines;
    auto on_line = [&](std::string_view line) { output.add_line(line); };
    command_io io;
    io.stdin_fd = fd;
    io.on_stdout = [&](std::string_view bytes) { lines.add(bytes, on_line); };
    command_run mapper(task, "mapper", commands.mapper);
    mapper.run({"MRKV_INPUT_FILE=" + input, "MRKV_TASK=" + std::to_string(map_id),
                "MRKV_ATTEMPT=" + std::to_string(attempt)},
               std::move(io), deadline);
    lines.finish(on_line);
    output.finish();
    add_counters(output.counts(), mapper.counts());
    if (log::enabled(log::level::debug))
      log::debug("stream", task + ": " + std::to_string(output.records_in()) + " records in " +
                               std::to_string(output.spills()) + " spill(s)");
    return output.counts();
  });
}

counters run_stream_reduce_task(const stream_commands& commands, int reduce_id, int attempt, int n_map,
                                const std::filesystem::path& workdir, task_deadline deadline) {
  if (reduce_id < 0) throw std::invalid_argument("run_stream_reduce_task: negative reduce task number");
  if (n_map < 0) throw std::invalid_argument("run_stream_reduce_task: negative n_map");
  const std::string task = "reduce task " + std::to_string(reduce_id);
  return in_task(task, [&] {
    std::vector<std::unique_ptr<run_reader>> readers;
    for (int m = 0; m < n_map; ++m) open_runs(workdir, m, reduce_id, readers);
    // A min-heap of the runs by their current key; ties in any order.
    auto later = [](const run_reader* a, const run_reader* b) { return a->key() > b->key(); };
    std::priority_queue<run_reader*, std::vector<run_reader*>, decltype(later)> heap(later);
    for (auto& r : readers)
      if (r->next()) heap.push(r.get());

    atomic_file_writer out(workdir / output_file_name(reduce_id));
    command_io io;
    io.feed = [&](std::string& chunk) {
      while (!heap.empty() && chunk.size() < (64u << 10)) {
        run_reader* r = heap.top();
        heap.pop();
        chunk.append(r->key()).append(1, '\t').append(r->value()).append(1, '\n');
        if (r->next()) heap.push(r);
      }
      return !heap.empty();
    };
    io.on_stdout = [&](std::string_view bytes) { out.append(bytes); };
    command_run reducer(task, "reducer", commands.reducer);
    reducer.run({"MRKV_TASK=" + std::to_string(reduce_id), "MRKV_ATTEMPT=" + std::to_string(attempt)},
                std::move(io), deadline);
    if (out.size() > 0 && out.last_byte() != '\n') out.append("\n");
    out.commit();
    return reducer.counts();
  });
}

counters run_stream_sequential(const stream_commands& commands, const std::vector<std::string>& inputs,
                               const std::filesystem::path& output) {
  const auto parent = output.parent_path().empty() ? std::filesystem::path(".") : output.parent_path();
  std::string pattern = (parent / ".mrkv-sequential-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    const int err = errno;
    throw task_file_error(task_file_error::kind::io,
                          "cannot create a scratch directory in " + parent.string() + ": " + errno_text(err));
  }
  const std::filesystem::path scratch(pattern);
  struct remover {
    std::filesystem::path path;
    ~remover() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  } cleanup{scratch};
  const auto forever = task_deadline::max();
  counters total;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    add_counters(total, run_stream_map_task(commands, static_cast<int>(i), 1, inputs[i], 1, scratch, forever));
  add_counters(total, run_stream_reduce_task(commands, 0, 1, static_cast<int>(inputs.size()), scratch, forever));
  if (::rename((scratch / output_file_name(0)).c_str(), output.c_str()) != 0) {
    const int err = errno;
    throw task_file_error(task_file_error::kind::io, "cannot rename the output to " + output.string() + ": " +
                                                         errno_text(err));
  }
  return total;
}

}  // namespace mrkv::mr
