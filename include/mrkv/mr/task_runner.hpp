// This file contains the two kinds of MapReduce task, run in-process on files in a work directory:
// the network worker calls them, one task at a time, from its thread pool (fetching partitions over
// HTTP, when the maps ran elsewhere, through a partition_fetcher).
//
// Failures are exceptions: task_file_error (task_files.hpp) when an input or intermediate file is
// missing, unreadable or corrupt or an output can't be written, with a message that starts with the
// task ("map task 3: cannot open ../pg-x.txt: No such file or directory"); app_error when the
// application breaks its contract; std::invalid_argument for impossible task numbers. A task that
// throws has published nothing it shouldn't: every file it writes appears whole or not at all, so the
// task can simply be run again, here or elsewhere.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "mrkv/mr/application.hpp"
#include "mrkv/mr/counters.hpp"
#include "mrkv/mr/task_files.hpp"

namespace mrkv::mr {

// Map task `map_id`: reads the whole of `input_path` (opened as given, relative to the current
// directory) and calls app.map(input_path, contents) with the path string unchanged, passes each key's
// values through app.combine() when the app has a combiner, then writes its output, every partition
// of n_reduce (empty ones included), as one map output file workdir/mr-<map_id>.map (map_output.hpp),
// atomically. Running it twice writes the same file again (same contents as long as the app is
// deterministic). Returns the "mrkv" counters: map_output_records, map_output_bytes and, with a
// combiner, combine_input_records and combine_output_records. `input_copy` set: the input's bytes are
// read from there (a copy fetched from the coordinator), and the app still sees `input_path`.
counters run_map_task(application& app, int map_id, const std::string& input_path, int n_reduce,
                      const std::filesystem::path& workdir, const std::filesystem::path& input_copy = {});

// The intermediate image of partition R of map `map_id`'s output, for a reduce task R: read from a map
// output file, or fetched from the worker that has it. Throws task_file_error.
using partition_fetcher = std::function<std::string(int map_id)>;

// Reduce task `reduce_id`: takes partition reduce_id of every map m in [0, n_map) from `fetch` (or, in
// the first form, from the map output files workdir/mr-<m>.map), calls app.reduce once per distinct key
// in byte order of keys, and atomically writes workdir/mr-out-<reduce_id> with one "key output\n" line
// per key (possibly an empty file). Returns the "mrkv" counters reduce_input_records and
// reduce_input_bytes (the bytes shuffled to it).
counters run_reduce_task(application& app, int reduce_id, int n_map, const std::filesystem::path& workdir);
counters run_reduce_task(application& app, int reduce_id, int n_map, const std::filesystem::path& workdir,
                         const partition_fetcher& fetch);

// The shared core of a reduce task and of run_sequential(): sorts `pairs` by key (byte-wise; values of
// one key in unspecified order), calls app.reduce once per distinct key and returns the output text.
std::string reduce_pairs(application& app, std::vector<kv_view>& pairs);

}  // namespace mrkv::mr
