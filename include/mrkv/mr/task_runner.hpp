// This file contains the two kinds of MapReduce task, run in-process on files in a work directory
// and with no networking: the network worker calls them, one task at a time, from its thread pool.
//
// Failures are exceptions: task_file_error (task_files.hpp) when an input or intermediate file is
// missing, unreadable or corrupt or an output can't be written, with a message that starts with the
// task ("map task 3: cannot open ../pg-x.txt: No such file or directory"); app_error when the
// application breaks its contract; std::invalid_argument for impossible task numbers. A task that
// throws has published nothing it shouldn't: every file it writes appears whole or not at all, so the
// task can simply be run again, here or elsewhere.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "mrkv/mr/application.hpp"
#include "mrkv/mr/task_files.hpp"

namespace mrkv::mr {

// Map task `map_id`: reads the whole of `input_path` (opened as given, relative to the current
// directory) and calls app.map(input_path, contents) with the path string unchanged, then writes all
// n_reduce files workdir/mr-<map_id>-<r>, empty buckets included, each atomically. Running it twice
// writes the same files again (same contents as long as the app is deterministic).
void run_map_task(application& app, int map_id, const std::string& input_path, int n_reduce,
                  const std::filesystem::path& workdir);

// Reduce task `reduce_id`: reads workdir/mr-<m>-<reduce_id> for every m in [0, n_map), calls
// app.reduce once per distinct key in byte order of keys, and atomically writes workdir/mr-out-<reduce_id>
// with one "key output\n" line per key (possibly an empty file).
void run_reduce_task(application& app, int reduce_id, int n_map, const std::filesystem::path& workdir);

// The shared core of a reduce task and of run_sequential(): sorts `pairs` by key (byte-wise; values of
// one key in unspecified order), calls app.reduce once per distinct key and returns the output text.
std::string reduce_pairs(application& app, std::vector<kv_view>& pairs);

}  // namespace mrkv::mr
