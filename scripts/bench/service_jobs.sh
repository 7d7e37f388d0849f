#!/usr/bin/env bash
# Ten small word counts in a row, two ways: through one job service (`mrkv coordinator` with no INPUT)
# whose two workers stay up, each job submitted with `mrkv submit --wait`, against ten one-job
# coordinators started one after another, each with two fresh workers. Prints the wall time of each
# way and the service's own submitted -> finished time per job, and checks the outputs agree.
#   scripts/bench/service_jobs.sh            the lab's 8 texts, 10 reduce tasks
#   ONE=1 scripts/bench/service_jobs.sh      one text (a job that is mostly overhead)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
B=${MRKV:-$root/build/release/mrkv}
D=$(mktemp -d /tmp/mrkv-svcbench-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$D"' EXIT
cp "$root"/test/data/gutenberg/pg-*.txt "$D"
cd "$D"
if [[ -n ${ONE:-} ]]; then inputs=(pg-being_ernest.txt); else inputs=(pg-*.txt); fi
now() { date +%s%N; }
announce() { until grep -q "listening on" "$1"; do sleep 0.005; done; sed -n 's/^mrkv coordinator listening on //p' "$1"; }

start=$(now)
for i in $(seq 10); do
  : > one-$i.out
  $B coordinator --listen 127.0.0.1:0 --workdir . --log-level warn "${inputs[@]}" > one-$i.out 2>&1 &
  c=$!
  url=$(announce one-$i.out)
  $B worker --coordinator "$url" --app wc --workdir . --log-level warn & w1=$!
  $B worker --coordinator "$url" --app wc --workdir . --log-level warn & w2=$!
  wait $c $w1 $w2
done
one=$(( $(now) - start ))

: > service.out
$B coordinator --listen 127.0.0.1:0 --workdir . --log-level warn > service.out 2>&1 &
url=$(announce service.out)
$B worker --coordinator "$url" --workdir . --log-level warn &
$B worker --coordinator "$url" --workdir . --log-level warn &
start=$(now)
for i in $(seq 10); do $B submit --coordinator "$url" --app wc --wait "${inputs[@]}" > /dev/null 2>&1; done
svc=$(( $(now) - start ))

cmp -s <(cat mr-out-* | sort) <(cat jobs/10/mr-out-* | sort) || { echo "outputs differ" >&2; exit 1; }
awk -v one="$one" -v svc="$svc" 'BEGIN {
  printf "ten one-job coordinators:     %.2f s (%.0f ms per job)\n", one / 1e9, one / 1e7
  printf "ten jobs through the service: %.2f s (%.0f ms per job)\n", svc / 1e9, svc / 1e7 }'
python3 - "$url" <<'PY'
import datetime, json, sys, urllib.request
jobs = json.load(urllib.request.urlopen(sys.argv[1] + "/v1/jobs"))["jobs"]
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
d = sorted((t(j["finished"]) - t(j["submitted"])).total_seconds() * 1000 for j in jobs)
print("service, submitted -> finished: min %.0f ms, median %.0f ms, max %.0f ms" % (d[0], d[len(d) // 2], d[-1]))
PY
