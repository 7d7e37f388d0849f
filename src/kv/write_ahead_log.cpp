#include "mrkv/kv/write_ahead_log.hpp"

#include "mrkv/common/log.hpp"
#include "mrkv/kv/log_format.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace mrkv::kv {

namespace fs = std::filesystem;

fsync_policy parse_fsync_policy(std::string_view name) {
  if (name == "always") return fsync_policy::always;
  if (name == "everysec") return fsync_policy::everysec;
  if (name == "never") return fsync_policy::never;
  throw std::invalid_argument("fsync policy must be always, everysec or never, not '" + std::string(name) + "'");
}

std::string_view fsync_policy_name(fsync_policy p) {
  switch (p) {
    case fsync_policy::always: return "always";
    case fsync_policy::everysec: return "everysec";
    case fsync_policy::never: return "never";
  }
  return "?";
}

namespace {

constexpr std::string_view component = "wal";
constexpr int snapshot_nice = 5;  // the snapshot thread's nice value (requests' threads keep 0)

std::string errno_text(int err) { return std::strerror(err); }

[[noreturn]] void fail_io(const std::string& what, int err) { throw std::runtime_error(what + ": " + errno_text(err)); }

class file_descriptor {
 public:
  explicit file_descriptor(int fd = -1) noexcept : fd_(fd) {}
  ~file_descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  file_descriptor(const file_descriptor&) = delete;
  file_descriptor& operator=(const file_descriptor&) = delete;
  int get() const noexcept { return fd_; }
  void reset(int fd) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

std::string name_of(std::string_view prefix, std::uint64_t number, std::string_view suffix) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(number));
  return std::string(prefix) + digits + std::string(suffix);
}

// The number in "<prefix><20 digits><suffix>", or nullopt for any other name.
std::optional<std::uint64_t> number_in(const std::string& name, std::string_view prefix, std::string_view suffix) {
  if (name.size() != prefix.size() + 20 + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  std::uint64_t n = 0;
  const char* first = name.data() + prefix.size();
  auto [end, ec] = std::from_chars(first, first + 20, n);
  if (ec != std::errc{} || end != first + 20) return std::nullopt;
  return n;
}

std::string read_whole(const fs::path& path) {
  file_descriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail_io("cannot open " + path.string(), errno);
  std::string bytes;
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_io("cannot read " + path.string(), errno);
    if (n == 0) break;
    bytes.append(buffer, static_cast<std::size_t>(n));
  }
  return bytes;
}

// 0 or the errno of the failing call. A short write (ENOSPC after some bytes) reports ENOSPC.
int write_all_at(int fd, std::string_view bytes, std::uint64_t offset) {
  while (!bytes.empty()) {
    ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return ENOSPC;
    bytes.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return 0;
}

int sync_directory(const fs::path& dir) {
  file_descriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return errno;
  return ::fsync(fd.get()) == 0 ? 0 : errno;
}

// An open log segment. Shared with the sync thread, which syncs it outside the log's mutex; the last
// owner closes it.
struct segment {
  std::uint64_t first_lsn = 0;
  fs::path path;
  file_descriptor fd;
  segment(std::uint64_t first, fs::path p, int descriptor) : first_lsn(first), path(std::move(p)), fd(descriptor) {}
};

struct pending_snapshot {
  std::uint64_t next_lsn = 0;
  std::unique_ptr<snapshot_cut> cut;
};

}  // namespace

struct write_ahead_log::impl {
  wal_options options;
  std::function<std::unique_ptr<snapshot_cut>()> snapshot_source;
  file_descriptor lock_fd;

  // Guarded by mutex: the log's end, and the order writes are applied in.
  mutable std::mutex mutex;
  std::shared_ptr<segment> current;
  std::uint64_t end_offset = 0;  // end of the last good record in `current`
  std::uint64_t next_lsn = 1;
  std::uint64_t bytes_since_snapshot = 0;
  std::map<std::uint64_t, std::uint64_t> segment_sizes;  // first lsn -> bytes, for every segment on disk
  bool dirty = false;  // written since the last sync (everysec)

  // Group commit queue (always).
  std::mutex queue_mutex;
  std::condition_variable queue_changed;
  std::vector<std::unique_ptr<pending_write>> queue;
  std::atomic<bool> stopping{false};

  // Snapshot thread.
  std::mutex snapshot_mutex;
  std::condition_variable snapshot_changed;
  std::optional<pending_snapshot> snapshot_job;
  bool snapshot_running = false;  // from the cut until the files are cleaned up
  std::uint64_t snapshots_done = 0;

  mutable std::mutex stats_mutex;
  wal_stats counters;

  std::thread sync_thread;
  std::thread snapshot_thread;

  impl(wal_options o, std::function<std::unique_ptr<snapshot_cut>()> source)
      : options(std::move(o)), snapshot_source(std::move(source)) {}

  // ---- recovery -----------------------------------------------------------------------------------

  void lock_directory() {
    std::error_code ec;
    // A directory made here lasts a power cut only once its parent is synced; until then every record
    // synced inside it could vanish with it.
    std::vector<fs::path> made;
    for (auto p = options.dir.lexically_normal(); !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
      made.push_back(p);
      if (p == p.parent_path()) break;
    }
    fs::create_directories(options.dir, ec);
    if (ec) throw std::runtime_error("cannot create data dir " + options.dir.string() + ": " + ec.message());
    for (const auto& p : made) {
      const auto parent = p.has_parent_path() ? p.parent_path() : fs::path(".");
      if (int err = sync_directory(parent)) fail_io("cannot sync " + parent.string(), err);
    }
    const auto path = options.dir / "LOCK";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fail_io("cannot open " + path.string(), errno);
    lock_fd.reset(fd);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      std::string holder;
      try {
        holder = read_whole(path);
      } catch (const std::exception&) {
      }
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      if (err == EWOULDBLOCK)
        throw std::runtime_error("data dir " + options.dir.string() + " is in use by another kvserver (pid " +
                                 (holder.empty() ? std::string("unknown") : holder) + ", holding " + path.string() + ")");
      fail_io("cannot lock " + path.string(), err);
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || write_all_at(fd, pid, 0) != 0) fail_io("cannot write " + path.string(), errno);
  }

  // Reads a snapshot whole; returns its entries' payload views into `bytes` or a reason it is not valid.
  static std::optional<std::string> check_snapshot(const std::string& bytes, std::uint64_t expected_lsn,
                                                   std::vector<std::string_view>& entries) {
    auto number = disk::read_header(bytes, disk::snapshot_magic);
    if (!number) return "bad header at offset 0";
    if (*number != expected_lsn) return "header names lsn " + std::to_string(*number);
    std::size_t at = disk::header_size;
    for (;;) {
      auto f = disk::read_frame(bytes, at);
      if (f.status != disk::frame::kind::ok) return "bad or missing entry at offset " + std::to_string(at);
      if (!f.payload.empty() && f.payload[0] == '\0') {
        disk::reader r(f.payload.substr(1));
        const auto count = r.u64();
        if (r.failed() || !r.at_end() || count != entries.size())
          return "bad end entry at offset " + std::to_string(at);
        if (f.next != bytes.size()) return "bytes after the end entry at offset " + std::to_string(f.next);
        return std::nullopt;
      }
      entries.push_back(f.payload);
      at = f.next;
    }
  }

  void recover(const wal_recovery& recovery) {
    const auto started = std::chrono::steady_clock::now();
    std::map<std::uint64_t, fs::path> snapshots, segments;
    for (const auto& entry : fs::directory_iterator(options.dir)) {
      const auto name = entry.path().filename().string();
      if (name.ends_with(".tmp")) {
        // A snapshot interrupted before its rename: never valid, the previous one stands.
        log::info(component, "removing unfinished " + entry.path().string());
        fs::remove(entry.path());
      } else if (auto n = number_in(name, "snap-", ".snap")) {
        snapshots[*n] = entry.path();
      } else if (auto m = number_in(name, "wal-", ".log")) {
        segments[*m] = entry.path();
      }
    }

    // The newest valid snapshot that the log continues (its segments reach back to it).
    std::uint64_t base = 1;
    bool have_snapshot = false;
    const std::uint64_t log_start = segments.empty() ? 0 : segments.begin()->first;
    for (auto it = snapshots.rbegin(); it != snapshots.rend(); ++it) {
      const std::string bytes = read_whole(it->second);
      std::vector<std::string_view> entries;
      if (auto why = check_snapshot(bytes, it->first, entries)) {
        log::warn(component, "snapshot " + it->second.string() + " is damaged (" + *why + "); trying an older one");
        continue;
      }
      if (!segments.empty() && log_start > it->first)
        throw std::runtime_error("snapshot " + it->second.string() + " holds the state up to lsn " + std::to_string(it->first) +
                                 " but the log starts at lsn " + std::to_string(log_start) + ": records are missing");
      base = it->first;
      have_snapshot = true;
      for (auto entry : entries) recovery.load_entry(entry);
      counters.recovered_entries = entries.size();
      counters.snapshot_bytes = bytes.size();
      break;
    }
    if (!have_snapshot && !snapshots.empty() && segments.empty())
      throw std::runtime_error("no valid snapshot in " + options.dir.string() + " (see above) and no log to rebuild from");
    if (!have_snapshot && !segments.empty() && log_start != 1)
      throw std::runtime_error("no valid snapshot in " + options.dir.string() + " and the log starts at lsn " +
                               std::to_string(log_start) + ": records are missing");

    std::uint64_t expected = segments.empty() ? base : segments.begin()->first;
    std::optional<std::pair<std::uint64_t, fs::path>> open_last;  // segment to append to, and its end
    std::uint64_t last_end = 0;
    for (auto it = segments.begin(); it != segments.end(); ++it) {
      const bool last = std::next(it) == segments.end();
      const std::string bytes = read_whole(it->second);
      const auto first = disk::read_header(bytes, disk::segment_magic);
      if (!first || *first != it->first) {
        if (last && bytes.size() < disk::header_size) {
          // Created but its header never made it to disk: nothing was ever logged in it.
          log::warn(component, "log tail cut: dropped " + std::to_string(bytes.size()) + " bytes (an unfinished segment header) of " +
                                   it->second.string());
          fs::remove(it->second);
          break;
        }
        throw std::runtime_error("log segment " + it->second.string() + " is damaged at offset 0 (bad header)");
      }
      if (*first != expected)
        throw std::runtime_error("log segment " + it->second.string() + " starts at lsn " + std::to_string(*first) +
                                 " but lsn " + std::to_string(expected) + " was expected: records are missing");
      std::size_t at = disk::header_size;
      for (;;) {
        auto f = disk::read_frame(bytes, at);
        if (f.status == disk::frame::kind::end) break;
        bool good = f.status == disk::frame::kind::ok && f.payload.size() >= 8 &&
                    disk::get_u64(f.payload.data()) == expected;
        if (!good) {
          // Records after a bad one mean damage, unless the bad one was never written: then a power cut
          // tore the unsynced end of the log (later pages on disk, earlier ones not), and nothing from
          // here on was ever synced, so nothing from here on was acknowledged under --fsync always.
          const bool later = !last || disk::valid_record_follows(bytes, at, expected);
          const bool unwritten = last && later && disk::looks_unwritten(bytes, at);
          if (later && !unwritten)
            throw std::runtime_error("log segment " + it->second.string() + " is damaged at offset " +
                                     std::to_string(at) + " (record lsn " + std::to_string(expected) + ")");
          const auto dropped = bytes.size() - at;
          if (::truncate(it->second.c_str(), static_cast<off_t>(at)) != 0)
            fail_io("cannot cut the torn tail of " + it->second.string(), errno);
          log::warn(component, "log tail cut: dropped " + std::to_string(dropped) +
                                   (unwritten ? " bytes from never-written bytes (a torn unsynced tail, later records in it dropped too)"
                                              : " bytes of a torn record") +
                                   " at offset " + std::to_string(at) + " of " + it->second.string());
          break;
        }
        if (expected >= base) {
          recovery.replay(f.payload.substr(8));
          ++counters.recovered_records;
          // The log since the snapshot counts toward the next one across restarts too; otherwise each
          // restart would let it grow by another --snapshot-after.
          bytes_since_snapshot += f.next - at;
        }
        ++expected;
        at = f.next;
      }
      segment_sizes[it->first] = at;
      if (last) {
        open_last.emplace(it->first, it->second);
        last_end = at;
      }
    }
    next_lsn = std::max(expected, base);
    if (open_last && next_lsn >= open_last->first) {
      int fd = ::open(open_last->second.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) fail_io("cannot open " + open_last->second.string(), errno);
      current = std::make_shared<segment>(open_last->first, open_last->second, fd);
      end_offset = last_end;
      if (::fdatasync(fd) != 0) fail_io("cannot sync " + open_last->second.string(), errno);
    } else {
      if (int err = start_segment()) fail_io("cannot create a log segment in " + options.dir.string(), err);
    }
    if (int err = sync_directory(options.dir)) fail_io("cannot sync " + options.dir.string(), err);
    counters.recovery_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    for (auto& [first, size] : segment_sizes) counters.log_bytes += size;
  }

  // ---- the log's end (under mutex) ----------------------------------------------------------------

  // Creates wal-<next_lsn>.log with its header, synced with its directory entry; 0 or an errno.
  int start_segment() {
    // The closed segment is made whole on disk before a later one exists: recovery cuts a torn end only
    // in the last segment, so one that is not last must never have one (even with fsync never).
    if (current) {
      if (::fdatasync(current->fd.get()) != 0) log::warn(component, "cannot sync " + current->path.string() + ": " + errno_text(errno));
    }
    const auto path = options.dir / name_of("wal-", next_lsn, ".log");
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    auto fresh = std::make_shared<segment>(next_lsn, path, fd);
    const auto header = disk::make_header(disk::segment_magic, next_lsn);
    int err = write_all_at(fd, header, 0);
    if (!err && ::fdatasync(fd) != 0) err = errno;
    if (!err) err = sync_directory(options.dir);
    if (err) {
      ::unlink(path.c_str());
      return err;
    }
    current = std::move(fresh);
    end_offset = header.size();
    segment_sizes[next_lsn] = end_offset;
    std::lock_guard s(stats_mutex);
    counters.log_bytes += end_offset;
    return 0;
  }

  // Writes `bytes` (records next_lsn .. next_lsn + count - 1) at the end; on failure cuts the segment
  // back and returns the errno. Under mutex.
  int append(std::string_view bytes, std::size_t count, bool sync) {
    int err = write_all_at(current->fd.get(), bytes, end_offset);
    if (!err && sync) {
      const auto t0 = std::chrono::steady_clock::now();
      if (::fdatasync(current->fd.get()) != 0) err = errno;
      record_fsync(std::chrono::steady_clock::now() - t0, err != 0);
    }
    if (err) {
      if (::ftruncate(current->fd.get(), static_cast<off_t>(end_offset)) != 0)
        log::error(component, "cannot cut " + current->path.string() + " back after a failed write: " + errno_text(errno));
      std::lock_guard s(stats_mutex);
      ++counters.write_failures;
      return err;
    }
    end_offset += bytes.size();
    segment_sizes[current->first_lsn] = end_offset;
    next_lsn += count;
    bytes_since_snapshot += bytes.size();
    dirty = !sync;
    std::lock_guard s(stats_mutex);
    counters.log_bytes += bytes.size();
    counters.records += count;
    return 0;
  }

  void record_fsync(std::chrono::steady_clock::duration took, bool failed) {
    const double seconds = std::chrono::duration<double>(took).count();
    std::lock_guard s(stats_mutex);
    ++counters.fsyncs;
    if (failed) ++counters.fsync_failures;
    counters.fsync_seconds_sum += seconds;
    std::size_t i = 0;
    while (i < wal_stats::buckets && seconds > wal_stats::fsync_bounds[i]) ++i;
    ++counters.fsync_buckets[i];
  }

  void frame_record(std::string& out, std::uint64_t lsn, const std::string& record) {
    const auto start = disk::begin_frame(out);
    disk::put_u64(out, lsn);
    out.append(record);
    disk::finish_frame(out, start);
  }

  // After writes were applied: rotate a full segment, start a snapshot when due. Under mutex.
  void after_append(bool force_snapshot = false) {
    const bool due = force_snapshot || bytes_since_snapshot >= options.snapshot_after;
    bool start_snapshot = false;
    if (due) {
      std::lock_guard s(snapshot_mutex);
      start_snapshot = !snapshot_running;
      if (start_snapshot) snapshot_running = true;
    }
    if (end_offset >= options.segment_bytes || start_snapshot) {
      // A snapshot starts a segment, so that the segments it covers can be removed whole.
      if (int err = start_segment()) log::warn(component, "cannot start a new log segment: " + errno_text(err));
    }
    if (!start_snapshot) return;
    bytes_since_snapshot = 0;
    pending_snapshot job{next_lsn, snapshot_source()};
    {
      std::lock_guard s(snapshot_mutex);
      snapshot_job = std::move(job);
    }
    snapshot_changed.notify_all();
  }

  // ---- threads ------------------------------------------------------------------------------------

  void group_commit_loop() {
    std::string buffer;
    for (;;) {
      std::vector<std::unique_ptr<pending_write>> batch;
      {
        std::unique_lock q(queue_mutex);
        queue_changed.wait(q, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;  // stopping, and everything queued was done
        batch.swap(queue);
      }
      std::lock_guard lock(mutex);
      buffer.clear();
      for (std::size_t i = 0; i < batch.size(); ++i) frame_record(buffer, next_lsn + i, batch[i]->record());
      if (int err = append(buffer, batch.size(), true)) {
        const std::string why = "the write could not be made durable: " + errno_text(err);
        for (auto& w : batch) w->fail(why);
        continue;
      }
      for (auto& w : batch) w->apply();
      after_append();
      // A batch that carried a large value lets its bytes go (move-assigning an empty string would not).
      if (buffer.capacity() > (std::size_t{4} << 20)) std::string().swap(buffer);
    }
  }

  void periodic_sync_loop() {
    std::unique_lock q(queue_mutex);
    while (!stopping) {
      queue_changed.wait_for(q, std::chrono::milliseconds(1000 / 2), [&] { return stopping.load(); });
      q.unlock();
      sync_if_dirty();
      q.lock();
    }
  }

  void sync_if_dirty() {
    std::shared_ptr<segment> target;
    {
      std::lock_guard lock(mutex);
      if (!dirty) return;
      dirty = false;
      target = current;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const bool failed = ::fdatasync(target->fd.get()) != 0;
    if (failed) log::error(component, "cannot sync " + target->path.string() + ": " + errno_text(errno));
    record_fsync(std::chrono::steady_clock::now() - t0, failed);
  }

  void snapshot_loop() {
    for (;;) {
      pending_snapshot job;
      {
        std::unique_lock s(snapshot_mutex);
        snapshot_changed.wait(s, [&] { return snapshot_job.has_value() || (stopping && !snapshot_running); });
        if (!snapshot_job) return;
        job = std::move(*snapshot_job);
        snapshot_job.reset();
      }
      write_snapshot(job);
      {
        std::lock_guard s(snapshot_mutex);
        snapshot_running = false;
        ++snapshots_done;
      }
      snapshot_changed.notify_all();
    }
  }

  void write_snapshot(pending_snapshot& job) {
    const auto started = std::chrono::steady_clock::now();
    const auto final_path = options.dir / name_of("snap-", job.next_lsn, ".snap");
    const auto temp_path = fs::path(final_path.string() + ".tmp");
    std::string error;
    std::uint64_t written = 0;
    {
      file_descriptor fd(::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (fd.get() < 0) error = "cannot create " + temp_path.string() + ": " + errno_text(errno);
      std::string buffer = disk::make_header(disk::snapshot_magic, job.next_lsn);
      std::uint64_t count = 0;
      auto flush = [&] {
        if (!error.empty() || buffer.empty()) return;
        if (int err = write_all_at(fd.get(), buffer, written)) error = "cannot write " + temp_path.string() + ": " + errno_text(err);
        written += buffer.size();
        buffer.clear();
      };
      if (error.empty()) {
        job.cut->write([&](std::string_view entry) {
          if (!error.empty()) return;
          disk::append_frame(buffer, entry);
          ++count;
          if (buffer.size() >= (std::size_t{1} << 20)) flush();
        });
        job.cut.reset();  // lets go of the values it kept alive
        std::string end(1, '\0');
        disk::put_u64(end, count);
        disk::append_frame(buffer, end);
        flush();
      }
      if (error.empty() && ::fsync(fd.get()) != 0) error = "cannot sync " + temp_path.string() + ": " + errno_text(errno);
    }
    if (error.empty() && ::rename(temp_path.c_str(), final_path.c_str()) != 0)
      error = "cannot rename " + temp_path.string() + ": " + errno_text(errno);
    if (error.empty()) {
      if (int err = sync_directory(options.dir)) error = "cannot sync " + options.dir.string() + ": " + errno_text(err);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (!error.empty()) {
      ::unlink(temp_path.c_str());
      log::error(component, "snapshot failed, the log keeps everything: " + error);
      std::lock_guard lock(mutex);
      // Try again after some more writes, not on every one while the disk is full.
      bytes_since_snapshot = options.snapshot_after / 2;
      std::lock_guard s(stats_mutex);
      ++counters.snapshot_failures;
      return;
    }
    remove_covered(job.next_lsn);
    log::info(component, "snapshot " + final_path.filename().string() + " written: " + std::to_string(written) +
                             " bytes in " + std::to_string(seconds) + " s");
    std::lock_guard s(stats_mutex);
    ++counters.snapshots;
    counters.last_snapshot_seconds = seconds;
    counters.snapshot_bytes = written;
  }

  // Removes snapshots older than the one at `lsn` and the segments whose records are all below it.
  void remove_covered(std::uint64_t lsn) {
    std::vector<fs::path> doomed;
    std::uint64_t freed = 0;
    {
      std::lock_guard lock(mutex);
      for (auto it = segment_sizes.begin(); it != segment_sizes.end();) {
        auto next = std::next(it);
        if (next == segment_sizes.end() || next->first > lsn || it->first == current->first_lsn) break;
        doomed.push_back(options.dir / name_of("wal-", it->first, ".log"));
        freed += it->second;
        it = segment_sizes.erase(it);
      }
    }
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(options.dir, ec)) {
      auto n = number_in(entry.path().filename().string(), "snap-", ".snap");
      if (n && *n < lsn) doomed.push_back(entry.path());
    }
    for (const auto& path : doomed) fs::remove(path, ec);
    std::lock_guard s(stats_mutex);
    counters.log_bytes -= std::min(counters.log_bytes, freed);
  }
};

write_ahead_log::write_ahead_log(wal_options options, const wal_recovery& recovery,
                                 std::function<std::unique_ptr<snapshot_cut>()> snapshot_source)
    : impl_(std::make_unique<impl>(std::move(options), std::move(snapshot_source))) {
  if (impl_->options.segment_bytes < 4096) impl_->options.segment_bytes = 4096;
  if (impl_->options.snapshot_after == 0) impl_->options.snapshot_after = 1;
  impl_->lock_directory();
  impl_->recover(recovery);
  log::info(component, "recovered " + impl_->options.dir.string() + ": " + std::to_string(impl_->counters.recovered_entries) +
                           " snapshot entries and " + std::to_string(impl_->counters.recovered_records) + " log records in " +
                           std::to_string(impl_->counters.recovery_seconds) + " s; next lsn " + std::to_string(impl_->next_lsn) +
                           ", fsync " + std::string(fsync_policy_name(impl_->options.fsync)));
  auto* self = impl_.get();
  if (self->options.fsync == fsync_policy::always) self->sync_thread = std::thread([self] { self->group_commit_loop(); });
  if (self->options.fsync == fsync_policy::everysec) self->sync_thread = std::thread([self] { self->periodic_sync_loop(); });
  self->snapshot_thread = std::thread([self] {
    // Background work: on a busy machine the requests' threads get the CPU first, so a snapshot of a
    // large store costs requests less latency (and takes longer); on an idle one it makes no difference.
    // Only this thread is reniced (Linux applies a thread id's nice to that thread alone). Best effort.
    if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), snapshot_nice) != 0)
      log::warn(component, "cannot lower the snapshot thread's priority: " + errno_text(errno));
    self->snapshot_loop();
  });
}

write_ahead_log::~write_ahead_log() {
  {
    std::lock_guard q(impl_->queue_mutex);
    impl_->stopping = true;
  }
  impl_->queue_changed.notify_all();
  if (impl_->sync_thread.joinable()) impl_->sync_thread.join();
  {
    std::lock_guard s(impl_->snapshot_mutex);
  }
  impl_->snapshot_changed.notify_all();
  if (impl_->snapshot_thread.joinable()) impl_->snapshot_thread.join();
  std::lock_guard lock(impl_->mutex);
  if (impl_->current && ::fdatasync(impl_->current->fd.get()) != 0)
    log::error(component, "cannot sync " + impl_->current->path.string() + " at stop: " + errno_text(errno));
}

void write_ahead_log::submit(std::unique_ptr<pending_write> write) {
  auto& s = *impl_;
  if (s.options.fsync == fsync_policy::always) {
    {
      std::lock_guard q(s.queue_mutex);
      if (!s.stopping) {
        s.queue.push_back(std::move(write));
      }
    }
    if (write) {
      write->fail("the server is stopping");
      return;
    }
    s.queue_changed.notify_one();
    return;
  }
  std::string bytes;
  std::lock_guard lock(s.mutex);
  s.frame_record(bytes, s.next_lsn, write->record());
  if (int err = s.append(bytes, 1, false)) {
    write->fail("the write could not be made durable: " + errno_text(err));
    return;
  }
  write->apply();
  s.after_append();
}

void write_ahead_log::snapshot_now() {
  auto& s = *impl_;
  std::uint64_t target = 0;
  {
    std::unique_lock sl(s.snapshot_mutex);
    s.snapshot_changed.wait(sl, [&] { return !s.snapshot_running; });
    target = s.snapshots_done + 1;
  }
  {
    std::lock_guard lock(s.mutex);
    s.after_append(true);
  }
  std::unique_lock sl(s.snapshot_mutex);
  s.snapshot_changed.wait(sl, [&] { return s.snapshots_done >= target && !s.snapshot_running; });
}

const wal_options& write_ahead_log::options() const noexcept { return impl_->options; }

wal_stats write_ahead_log::stats() const {
  std::lock_guard s(impl_->stats_mutex);
  return impl_->counters;
}

std::string write_ahead_log::render_metrics(const std::string& mode) const {
  const auto s = stats();
  const std::string label = "{mode=\"" + mode + "\"}";
  std::string out;
  auto line = [&](const char* name, const char* type, const char* help, auto value) {
    out += std::string("# HELP mrkv_") + name + " " + help + "\n# TYPE mrkv_" + name + " " + type + "\n";
    out += std::string("mrkv_") + name + label + " " + std::to_string(value) + "\n";
  };
  line("wal_log_bytes", "gauge", "Bytes in the write-ahead log segments on disk.", s.log_bytes);
  line("wal_snapshot_bytes", "gauge", "Bytes of the newest snapshot.", s.snapshot_bytes);
  line("wal_records_total", "counter", "Log records written since start.", s.records);
  line("wal_write_failures_total", "counter", "Log writes that failed (answered 503, not applied).", s.write_failures);
  line("wal_fsync_failures_total", "counter", "fdatasync calls that failed.", s.fsync_failures);
  line("wal_snapshots_total", "counter", "Snapshots written since start.", s.snapshots);
  line("wal_snapshot_failures_total", "counter", "Snapshots that could not be written.", s.snapshot_failures);
  line("wal_last_snapshot_seconds", "gauge", "How long the last snapshot took to write.", s.last_snapshot_seconds);
  line("wal_recovery_seconds", "gauge", "How long recovery took at start.", s.recovery_seconds);
  line("wal_recovered_records", "gauge", "Log records replayed at start.", s.recovered_records);
  out += "# HELP mrkv_wal_fsync_seconds fdatasync latency.\n# TYPE mrkv_wal_fsync_seconds histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= wal_stats::buckets; ++i) {
    cumulative += s.fsync_buckets[i];
    char bound[32];
    if (i < wal_stats::buckets) std::snprintf(bound, sizeof bound, "%g", wal_stats::fsync_bounds[i]);
    else std::snprintf(bound, sizeof bound, "+Inf");
    out += "mrkv_wal_fsync_seconds_bucket{mode=\"" + mode + "\",le=\"" + bound + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += "mrkv_wal_fsync_seconds_sum" + label + " " + std::to_string(s.fsync_seconds_sum) + "\n";
  out += "mrkv_wal_fsync_seconds_count" + label + " " + std::to_string(s.fsyncs) + "\n";
  return out;
}

}  // namespace mrkv::kv
