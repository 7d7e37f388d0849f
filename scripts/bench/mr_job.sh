#!/usr/bin/env bash
# One distributed word-count job end to end, the thing scripts/bench.sh times: starts a coordinator
# on a free loopback port (read from its first stdout line), WORKERS workers, and waits for all of
# them to exit. Outputs are WORKDIR/mr-out-*; WORKDIR should be empty (the caller clears it).
# usage: mr_job.sh MRKV_BINARY WORKERS WORKDIR INPUT...
set -euo pipefail
bin=$1 workers=$2 dir=$3
shift 3
mkdir -p "$dir"
cd "$dir"
pids=()
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
rm -f coordinator.out
mkfifo coordinator.out
"$bin" coordinator --listen 127.0.0.1:0 --workdir "$dir" --log-level warn "$@" > coordinator.out 2> coordinator.log &
coordinator=$!
pids+=("$coordinator")
exec 3< coordinator.out
if ! read -r -t 10 line <&3; then
  echo "mr_job: the coordinator did not start; its log:" >&2
  cat coordinator.log >&2
  exit 1
fi
url=${line##* on }
for ((i = 1; i <= workers; i++)); do
  "$bin" worker --coordinator "$url" --app wc --workdir "$dir" --log-level warn 2> "worker-$i.log" &
  pids+=("$!")
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
pids=()
exit "$status"
