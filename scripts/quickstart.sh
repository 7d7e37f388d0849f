#!/usr/bin/env bash
# The main job: installs what is missing, builds the release binary, then runs word count over the
# bundled texts (test/data/gutenberg) with a coordinator and two workers as separate processes, checks
# the output against `mrkv sequential`, and prints the ten most frequent words.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source scripts/lib/coordinator.sh
scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release >/dev/null
bin=$root/build/release/mrkv

work=$(mktemp -d /tmp/mrkv-quickstart.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cp test/data/gutenberg/pg-*.txt "$work/"
cd "$work"
inputs=(pg-*.txt)

start=$(date +%s%N)
start_coordinator quickstart "$bin" "$work" "${inputs[@]}"
pids+=("$coordinator_pid")
echo "$coordinator_line"
for i in 1 2; do
  "$bin" worker --coordinator "$coordinator_url" --app wc --workdir "$work" 2> "worker-$i.log" &
  pids+=("$!")
done
wait "$coordinator_pid" || { echo "quickstart: the coordinator failed; its log:" >&2; cat coordinator.log >&2; exit 1; }
for p in "${pids[@]:1}"; do wait "$p" || { echo "quickstart: a worker failed" >&2; cat worker-*.log >&2; exit 1; }; done
pids=()
distributed=$(( ($(date +%s%N) - start) / 1000000 ))

start=$(date +%s%N)
"$bin" sequential --app wc --output mr-correct-wc.txt "${inputs[@]}"
sequential=$(( ($(date +%s%N) - start) / 1000000 ))

sort mr-out-* | grep . > mr-wc-all.txt
sort mr-correct-wc.txt > mr-correct-sorted.txt
if ! cmp -s mr-wc-all.txt mr-correct-sorted.txt; then
  echo "quickstart: FAIL: the distributed output differs from mrkv sequential" >&2
  diff mr-wc-all.txt mr-correct-sorted.txt | head >&2
  exit 1
fi
printf 'word count over %d texts: %d distinct words, output identical to mrkv sequential\n' \
  "${#inputs[@]}" "$(wc -l < mr-wc-all.txt)"
echo "wall time: coordinator + 2 workers ${distributed} ms (process start included), sequential ${sequential} ms"
echo "the ten most frequent words:"
# awk stops printing after ten lines but reads to the end: `head` would leave sort to die of SIGPIPE,
# which pipefail turns into the script's exit status (141).
sort -k2,2nr -k1,1 mr-wc-all.txt | awk 'NR <= 10 {printf "  %-8s %s\n", $1, $2}'
