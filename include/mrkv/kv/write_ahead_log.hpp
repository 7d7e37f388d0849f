// This file contains the kvserver's write-ahead log (issue 12): a data directory of log segments and
// snapshots (formats in kv/log_format.hpp), the group commit that makes writes durable before they are
// applied and answered, the background snapshots that compact the log, and recovery at start.
//
// The log knows nothing of keys: a record is the opaque bytes of one write command, and the state is a
// function of the log (re-executing the commands in order on an empty store rebuilds it, duplicate
// table included). Its user hands it pending writes that know how to apply themselves:
//
//   fsync always    submit() queues the write; one sync thread takes everything queued, write()s it,
//                   fdatasync()s once (group commit), and only then applies the batch in log order and
//                   completes its writes. So nothing is visible, or answered, before it is durable.
//   fsync everysec  submit() write()s the record, applies and completes it at once, under the log's
//   fsync never     mutex (so the log order is the apply order); the sync thread syncs every second
//                   (everysec) or never (the OS does, eventually).
//
// A write() or fdatasync() that fails (ENOSPC, EIO) truncates the segment back to the end of the last
// good record, fails the writes it carried (the kvserver answers 503) and applies none of them; later
// writes are tried afresh, so service resumes once space is back.
//
// Snapshots: once `snapshot_after` bytes were logged since the last one, the next write (under the
// log's mutex, i.e. at one point of the apply order) starts a new segment and asks the snapshot source
// for a consistent cut; a background thread writes the cut to snap-N.snap.tmp, fsyncs it, renames it
// and fsyncs the directory, then removes older snapshots and the segments the snapshot covers. The
// snapshot thread runs at nice 5, so on a busy machine requests get the CPU before it does.
//
// Recovery (the constructor): lock the directory (flock on LOCK, holding our pid), load the newest
// valid snapshot, replay the records after it. A bad record at the very end of the last segment, with
// no valid record after it, is a torn tail: it is cut off with one log line giving the bytes dropped.
// A bad record anywhere else, a gap in the lsns, or a snapshot that the log cannot continue throws
// std::runtime_error naming the file and offset.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace mrkv::kv {

enum class fsync_policy : std::uint8_t { always, everysec, never };

// "always", "everysec", "never"; throws std::invalid_argument otherwise.
fsync_policy parse_fsync_policy(std::string_view name);
std::string_view fsync_policy_name(fsync_policy p);

struct wal_options {
  std::filesystem::path dir;
  fsync_policy fsync = fsync_policy::always;
  std::uint64_t snapshot_after = std::uint64_t{64} << 20;  // bytes of log since the last snapshot
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;   // a segment is closed once past this size
};

// One write on its way to the log. apply() and fail() are called exactly once between them, on the
// log's thread and under its mutex: they must be quick and must not throw.
class pending_write {
 public:
  explicit pending_write(std::string record) : record_(std::move(record)) {}
  virtual ~pending_write() = default;
  const std::string& record() const noexcept { return record_; }
  virtual void apply() noexcept = 0;                      // durable (as the policy promises): execute, answer
  virtual void fail(const std::string& why) noexcept = 0;  // not written: change nothing, answer 503

 private:
  std::string record_;
};

// A consistent cut of the state, started under the log's mutex (so starting it must be cheap: the kv
// store only marks its shards copy-on-write, store::begin_cut) and written out on the snapshot
// thread, entry by entry, as of the point in the log where it was started.
class snapshot_cut {
 public:
  virtual ~snapshot_cut() = default;
  // Calls emit(payload) for every entry; payloads are the source's own encoding.
  virtual void write(const std::function<void(std::string_view)>& emit) = 0;
};

struct wal_recovery {
  // Called at start for each entry of the snapshot used, then for each command after it, in order.
  std::function<void(std::string_view entry)> load_entry;
  std::function<void(std::string_view command)> replay;
};

struct wal_stats {
  std::uint64_t log_bytes = 0;        // bytes in the segments on disk
  std::uint64_t snapshot_bytes = 0;   // bytes of the newest snapshot
  std::uint64_t records = 0;          // records written since start
  std::uint64_t fsyncs = 0;
  std::uint64_t fsync_failures = 0;
  std::uint64_t write_failures = 0;   // batches answered 503
  std::uint64_t snapshots = 0;        // written since start
  std::uint64_t snapshot_failures = 0;
  double last_snapshot_seconds = 0;
  double recovery_seconds = 0;
  std::uint64_t recovered_records = 0;
  std::uint64_t recovered_entries = 0;
  // fsync latency histogram: counts of fsyncs taking at most fsync_bounds[i] seconds, then the rest.
  static constexpr std::size_t buckets = 12;
  static constexpr double fsync_bounds[buckets] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                   0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
  std::uint64_t fsync_buckets[buckets + 1] = {};
  double fsync_seconds_sum = 0;
};

class write_ahead_log {
 public:
  // Locks and recovers `options.dir` (creating it if missing), then starts the log's threads.
  write_ahead_log(wal_options options, const wal_recovery& recovery,
                  std::function<std::unique_ptr<snapshot_cut>()> snapshot_source);
  // Completes queued writes (always: synced and applied), waits for a running snapshot, syncs, unlocks.
  ~write_ahead_log();
  write_ahead_log(const write_ahead_log&) = delete;
  write_ahead_log& operator=(const write_ahead_log&) = delete;

  void submit(std::unique_ptr<pending_write> write);

  // Takes a snapshot now (when none is running) and waits for it; for tests and benchmarks.
  void snapshot_now();

  const wal_options& options() const noexcept;
  wal_stats stats() const;
  // Prometheus lines ("mrkv_wal_..."), each with the label mode="<mode>".
  std::string render_metrics(const std::string& mode) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mrkv::kv
