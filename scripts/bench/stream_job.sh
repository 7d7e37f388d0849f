#!/usr/bin/env bash
# One word-count job as a streaming app (mawk scripts as mapper and reducer) end to end, the thing
# scripts/bench.sh times beside mawk run alone: like mr_job.sh, with the workers started as
#   mrkv worker --mapper 'mawk -f wc_map.awk' --reducer 'mawk -f wc_reduce.awk'
# usage: stream_job.sh MRKV_BINARY WORKERS WORKDIR INPUT...
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib/coordinator.sh"
bin=$1 workers=$2 dir=$3
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
start_coordinator stream_job "$bin" "$dir" --log-level warn "$@"
pids+=("$coordinator_pid")
for ((i = 1; i <= workers; i++)); do
  "$bin" worker --coordinator "$coordinator_url" --workdir "$dir" --log-level warn \
    --mapper "LC_ALL=C mawk -f $here/wc_map.awk" --reducer "LC_ALL=C mawk -f $here/wc_reduce.awk" 2> "worker-$i.log" &
  pids+=("$!")
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
pids=()
exit "$status"
