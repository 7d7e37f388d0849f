#!/usr/bin/env bash
# One distributed word-count job end to end, the thing scripts/bench.sh times: starts a coordinator
# on a free loopback port (read from its first stdout line), WORKERS workers, and waits for all of
# them to exit. Outputs are WORKDIR/mr-out-*; WORKDIR should be empty (the caller clears it).
# With MR_JOB_SERVE=1 the workers share nothing: each has its own directory WORKDIR/worker-I and
# serves its map outputs (--serve 127.0.0.1:0), and the coordinator gathers the outputs in WORKDIR.
# MR_JOB_APP picks the workers' --app (default: the built-in wc); MR_JOB_LOG_LEVEL the coordinator's
# --log-level (default warn; info logs the job's counters at its end).
# usage: [MR_JOB_SERVE=1] [MR_JOB_APP=APP] [MR_JOB_LOG_LEVEL=L] mr_job.sh MRKV_BINARY WORKERS WORKDIR INPUT...
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/coordinator.sh"
bin=$1 workers=$2 dir=$3 app=${MR_JOB_APP:-wc}
shift 3
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cd "$dir"
pids=()
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
start_coordinator mr_job "$bin" "$dir" --log-level "${MR_JOB_LOG_LEVEL:-warn}" "$@"
pids+=("$coordinator_pid")
for ((i = 1; i <= workers; i++)); do
  if [[ ${MR_JOB_SERVE:-} == 1 ]]; then
    mkdir -p "$dir/worker-$i"
    "$bin" worker --coordinator "$coordinator_url" --app "$app" --workdir "$dir/worker-$i" --serve 127.0.0.1:0 \
      --log-level warn > /dev/null 2> "worker-$i.log" &
  else
    "$bin" worker --coordinator "$coordinator_url" --app "$app" --workdir "$dir" --log-level warn 2> "worker-$i.log" &
  fi
  pids+=("$!")
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
pids=()
exit "$status"
