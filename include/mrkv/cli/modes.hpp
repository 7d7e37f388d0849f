// The modes of the mrkv binary. Each takes the words after the mode name and returns the process exit
// status (0 done, 1 failed, 2 usage error); main() only picks one.
#pragma once

#include <string>
#include <vector>

namespace mrkv::cli {

using args = std::vector<std::string>;

int run_coordinator(const args& words);  // MapReduce coordinator (server)
int run_worker(const args& words);       // MapReduce worker
int run_sequential(const args& words);   // MapReduce reference run in one process
int run_status(const args& words);       // prints a coordinator's job status
int run_submit(const args& words);       // submits a job to a job service
int run_kvserver(const args& words);     // key/value server
int run_kv(const args& words);           // key/value clerk CLI: get, put, append
int run_probe(const args& words);
int run_bench(const args& words);        // load generator: `mrkv bench kv ...`        // health check for containers: exit 0 iff GET URL answers 2xx

}  // namespace mrkv::cli
