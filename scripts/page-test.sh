#!/usr/bin/env bash
# The job service's web page (GET /) in headless Chromium: installs chromium, chromium-driver and
# python3-selenium when missing (scripts/deps.sh), starts a service coordinator and two workers on a
# scratch directory, and runs test/page/page_test.py against them: the page shows a running job's
# progress rise to done, submits a job through its form and sees it finish, cancels one with its
# button, and logs no console errors. The screenshot is kept as build/<preset>/page-test.png.
#   scripts/page-test.sh [PRESET]     (default release; the binary and plugins must be built)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
preset=${1:-release}
build=$root/build/$preset
mrkv=$build/mrkv
[[ -x $mrkv && -f $build/plugins/slow.so ]] || { echo "page-test: build $preset first (mrkv and the plugins)" >&2; exit 2; }
"$root/scripts/deps.sh" chromium chromium-driver python3-selenium

dir=$(mktemp -d /tmp/mrkv-page-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n ${MRKV_KEEP_TEST_DIRS:-} ]] || rm -rf "$dir"
}
trap cleanup EXIT
cp "$root"/test/data/gutenberg/pg-*.txt "$dir"
"$mrkv" coordinator --listen 127.0.0.1:0 --workdir "$dir" > "$dir/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -qs "listening on" "$dir/coordinator.log" && break; sleep 0.05; done
url=$(sed -n 's/^mrkv coordinator listening on //p' "$dir/coordinator.log")
[[ -n $url ]] || { echo "page-test: the coordinator did not start" >&2; cat "$dir/coordinator.log" >&2; exit 1; }
# Each map of the slow plugin sleeps 700 ms on these workers: 8 maps on 2 workers take about 3 s.
for i in 1 2; do
  MRKV_SLOW_MAP_MS=700 "$mrkv" worker --coordinator "$url" --workdir "$dir" > "$dir/worker$i.log" 2>&1 &
  pids+=($!)
done
# A second coordinator that wants a token, for the page's token prompt.
mkdir -p "$dir/guarded"
cp "$root"/test/data/gutenberg/pg-*.txt "$dir/guarded"
token=page-test-$RANDOM$RANDOM
echo "$token" > "$dir/token"
"$mrkv" coordinator --listen 127.0.0.1:0 --workdir "$dir/guarded" --auth-token-file "$dir/token" \
  > "$dir/guarded/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -qs "listening on" "$dir/guarded/coordinator.log" && break; sleep 0.05; done
guarded=$(sed -n 's/^mrkv coordinator listening on //p' "$dir/guarded/coordinator.log")
"$mrkv" worker --coordinator "$guarded" --workdir "$dir/guarded" --auth-token-file "$dir/token" \
  > "$dir/guarded/worker.log" 2>&1 &
pids+=($!)
status=0
/usr/bin/python3 "$root/test/page/page_test.py" "$url" "$dir" "$build/page-test.png" "$build/plugins/slow.so" \
  "$guarded" "$token" || status=$?
if ((status != 0)); then
  echo "--- coordinator log (tail) ---"; tail -20 "$dir/coordinator.log"
fi
exit $status
