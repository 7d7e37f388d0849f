// This file contains MapReduce tasks whose map, reduce and combine are shell commands that read and
// write lines, Hadoop Streaming's protocol:
//   - mapper: run once per map task through /bin/sh -c in the current directory, with the input file
//     on standard input and MRKV_INPUT_FILE (the input as the coordinator names it), MRKV_TASK (the map
//     task number) and MRKV_ATTEMPT in its environment. Each line it writes is a record: the bytes
//     before the first tab are the key, the rest the value (no tab: the whole line is the key and the
//     value is empty).
//   - reducer: run once per reduce task with the partition's records on standard input as
//     "key<TAB>value" lines sorted by key (byte order; the values of a key in no particular order).
//     Every byte it writes goes to mr-out-R as written (a newline is added if the last line lacks one).
//   - combiner (optional): the reducer's protocol over a map task's records before they are written,
//     run once per spill (below); its lines are records again, as a mapper's.
//   - "reporter:counter:GROUP,NAME,AMOUNT" lines on standard error add to counters (counters.hpp);
//     other standard error lines are kept, and the last of them name a failure.
// A command that exits non-zero or dies of a signal fails the task with a command_error; one still
// running at the deadline is killed (its whole process group) and fails it too.
//
// Memory: records are never all held at once. A map task collects records in a sort buffer of
// `sort_buffer` bytes; when it fills, the buffer is sorted by (partition, key), passed through the
// combiner if there is one, and written out as one spill file "mr-M-aA-sK" (attempt A, spill K) holding
// every partition's sorted run. Last, "mr-M-index" (written atomically, so it names one attempt's
// spills) lists each spill's runs: offset, length and record count per partition. A reduce task reads
// the index of every map and merges the runs of its partition with a small buffer per run, straight
// into the reducer's standard input, and streams the reducer's output into mr-out-R.
//
// Run file layout: per record, varint key length, key, varint value length, value (the varints of the
// intermediate format, task_files.hpp). A run is checked against its length and record count.
#pragma once

#include "mrkv/mr/counters.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace mrkv::mr {

struct stream_commands {
  std::string mapper;
  std::string reducer;
  std::string combiner;                      // empty: none
  std::size_t sort_buffer = 64u << 20;        // bytes of records a map task holds before it spills
};

// A streaming command failed: the message names the task, the command, how it ended and the last lines
// of its standard error.
class command_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using task_deadline = std::chrono::steady_clock::time_point;

// "mr-<map_id>-index".
std::string stream_index_file_name(int map_id);

// Map task `map_id`, attempt `attempt`: runs the mapper over `input` (opened as given) and writes its
// spills and index into `workdir`. Throws command_error, task_file_error (an unreadable input, a full
// disk) or std::invalid_argument. Returns the counters of the mapper and combiner runs.
counters run_stream_map_task(const stream_commands& commands, int map_id, int attempt, const std::string& input,
                             int n_reduce, const std::filesystem::path& workdir, task_deadline deadline);

// Reduce task `reduce_id`: merges partition reduce_id of the n_map maps' outputs in `workdir` into the
// reducer and publishes workdir/mr-out-<reduce_id> atomically. A map whose index is missing is a
// task_file_error of kind missing.
counters run_stream_reduce_task(const stream_commands& commands, int reduce_id, int attempt, int n_map,
                                const std::filesystem::path& workdir, task_deadline deadline);

// The whole job in this process: one map task per input (in a scratch directory beside `output`,
// removed afterwards), then one reduce task, whose output becomes `output`.
counters run_stream_sequential(const stream_commands& commands, const std::vector<std::string>& inputs,
                               const std::filesystem::path& output);

}  // namespace mrkv::mr
