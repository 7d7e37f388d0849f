#!/usr/bin/env bash
# Multi-host fault tests on one machine (root): four hosts 10.77.0.1-4, each a network namespace with no
# default route, joined by a bridge in a fifth namespace (../shared/notes/containers.md, section 3).
# Every mrkv process runs in a host namespace through `ip netns exec`; faults are nftables rules inside
# the namespaces; nothing addresses a test host from the root namespace.
#   MapReduce: coordinator on host 1, workers on hosts 2-4 sharing one work directory. Host 3 runs the
#     slow plugin (word count whose map sleeps first), so it surely holds a map task when it is cut off
#     (nftables drop in and out); the task must go to another worker after the task timeout, the output
#     must equal mrkv sequential's, and the cut-off worker must exit 0 by itself once it has not heard
#     from the coordinator for its --give-up-after.
#   MapReduce sharing nothing: a second job, coordinator on host 1 with the inputs in its own directory,
#     workers on hosts 2-4 with --serve, each in a directory of its own. Once the job is in its reduce
#     phase, with maps done on every worker, host 3 is cut off and host 2 gets 20 % random input loss on
#     its link. Reducers cannot fetch host 3's map outputs: those maps must run again elsewhere and the
#     output must equal mrkv sequential's; host 2's maps are fetched through the loss and never re-run.
#   Key/value: server on host 1 behind 20 % random input loss (nftables numgen), clerks on hosts 2-4
#     appending unique tokens and reading, then host 2 cut off for two seconds and healed. The history
#     (JSON lines) must be linearizable (test/kv/history_file_test.cpp, the project's checker) and every
#     append must appear exactly once in the final values. Clerks resend after 1 s without an answer, so
#     the cut makes them resend requests the server may already have executed.
#     Then every reply to host 3 is dropped while it appends once: the resends reach the server and the
#     append is applied once.
#   Names: host 4 resolves the server's name from its own /etc/hosts, and a name its (silent) DNS
#     server never answers costs a clerk its --timeout, not the resolver's own timeouts.
# Everything it made (namespaces, rules, processes, files) is removed at the end, even on failure.
# Uses build/release (built here if missing); MRKV_BUILD_DIR=DIR picks another build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source scripts/lib/checks.sh

[[ $(id -u) == 0 ]] || { echo "netns-test: needs root (network namespaces)" >&2; exit 1; }
P=mrkv-nt                      # namespaces P-sw, P-h1 .. P-h4
NET=10.77.0
W=$root/scripts/work/netns
build=${MRKV_BUILD_DIR:-$root/build/release}
task_timeout=2
give_up=3
call_timeout=1
slow_map_ms=5000

install_missing iproute2 nftables curl jq
if [[ ! -x $build/mrkv || ! -x $build/mrkv_tests || ! -f $build/plugins/slow.so ]]; then
  note "building the release preset"
  scripts/deps.sh
  cmake --preset release >/dev/null
  cmake --build --preset release >/dev/null
  build=$root/build/release
fi
mrkv=$build/mrkv
slow=$build/plugins/slow.so

mkdir -p "$W"
exec 9> "$W/lock"
flock -n 9 || { echo "netns-test: another run holds $W/lock" >&2; exit 1; }

in_ns() { local h=$1; shift; ip netns exec "$P-h$h" "$@"; }
namespaces() { ip netns list | awk '{print $1}' | grep -E "^$P-(h[0-9]+|sw)\$" || true; }

# --- teardown: every process in our namespaces, the namespaces (and with them veths, bridge, rules) -----
teardown() {
  local ns pids
  touch "$W/stop" 2>/dev/null || true
  for ns in $(namespaces); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -n $pids ]] && kill $pids 2>/dev/null
  done
  sleep 0.2
  for ns in $(namespaces); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -n $pids ]] && kill -9 $pids 2>/dev/null
  done
  wait 2>/dev/null || true
  for ns in $(namespaces); do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "/etc/netns/$P-h4"
  rm -rf "$W/mr" "$W/mr2" "$W/kv" "$W/stop"
}
torn_down=0
on_exit() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if ((torn_down == 0)); then
    teardown
    [[ -z $(namespaces) ]] || echo "netns-test: could not remove: $(namespaces)" >&2
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
teardown   # leftovers of a run killed with SIGKILL

# --- topology ------------------------------------------------------------------------------------------
t0=$(date +%s%N)
ip netns add "$P-sw"
ip -n "$P-sw" link add br0 type bridge
ip -n "$P-sw" link set lo up
ip -n "$P-sw" link set br0 up
for i in 1 2 3 4; do
  ns=$P-h$i
  ip netns add "$ns"
  ip link add eth0 netns "$ns" address "$(printf '02:00:0a:4d:00:%02x' "$i")" type veth peer name "h$i" netns "$P-sw"
  ip -n "$P-sw" link set "h$i" master br0 up
  ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6'
  ip -n "$ns" addr add "$NET.$i/24" dev eth0
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
done
note "4 hosts + bridge in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
topology() {
  local i
  for i in 1 2 3 4; do
    [[ -z $(ip -n "$P-h$i" route show default) ]] || { echo "host $i has a default route"; return 1; }
    ip -n "$P-h$i" route get 192.0.2.1 >/dev/null 2>&1 && { echo "host $i can route beyond the test net"; return 1; }
    ip -n "$P-h$i" route get "$NET.$(( i % 4 + 1 ))" | grep -q 'dev eth0' || { echo "host $i has no route to its neighbour"; return 1; }
  done
  echo "no default route on any host; each reaches 10.77.0.0/24 through eth0 only"
}
check "topology: 4 hosts on a bridge in its own namespace, no default route" topology

# cut HOST: drop everything in and out of HOST; heal HOST removes it.
cut() {
  in_ns "$1" nft -f - <<'EOF'
table inet mrkv_cut {
  chain in { type filter hook input priority 0; policy drop; }
  chain out { type filter hook output priority 0; policy drop; }
}
EOF
}
heal() { in_ns "$1" nft delete table inet mrkv_cut; }

# --- MapReduce -----------------------------------------------------------------------------------------
mr=$W/mr
mkdir -p "$mr"
cp test/data/gutenberg/pg-*.txt "$mr/"
inputs=()
for f in "$mr"/pg-*.txt; do inputs+=("$(basename "$f")"); done
coord=http://$NET.1:7700
job_json() { in_ns 1 curl -sf --max-time 1 "$coord/v1/job"; }

in_ns 1 "$mrkv" coordinator --listen "$NET.1:7700" --workdir "$mr" --task-timeout $task_timeout --no-backup-tasks \
  "${inputs[@]}" > "$mr/coordinator.out" 2> "$mr/coordinator.log" &
coordinator_pid=$!
wait_until 10 in_ns 1 curl -sf --max-time 1 "$coord/healthz" || { cat "$mr/coordinator.log" >&2; exit 1; }
worker() {  # worker HOST [ENV...]
  local h=$1; shift
  in_ns "$h" env "$@" "$mrkv" worker --id "h$h" --coordinator "$coord" --app "$slow" --workdir "$mr" \
    --give-up-after $give_up --call-timeout $call_timeout --poll-wait 1 2> "$mr/worker-h$h.log" &
  worker_pid[$h]=$!
}
declare -A worker_pid
# Host 3 first, alone, with the slow map: it takes a map task and sits on it for slow_map_ms.
worker 3 MRKV_SLOW_MAP_MS=$slow_map_ms
h3_holds_task() { job_json | jq -e '.workers[] | select(.id == "h3") | .tasks_assigned > .tasks_completed'; }
held=no
wait_until 10 h3_holds_task && held=yes
worker 2
worker 4
cut 3
cut_at=$(date +%s%N)
note "host 3 cut off (held a task: $held)"
if [[ $held == yes ]] && job_json | jq -e '.workers[] | select(.id == "h3") | .tasks_assigned > .tasks_completed' >/dev/null; then
  pass "MapReduce: host 3 holds a map task when cut off (GET /v1/job from host 1)"
else
  fail "MapReduce: host 3 holds a map task when cut off (GET /v1/job from host 1)" "$(job_json)"
fi
if in_ns 3 curl -s --max-time 1 -o /dev/null "$coord/healthz"; then
  fail "MapReduce: host 3 cannot reach the coordinator while cut off"
else
  pass "MapReduce: host 3 cannot reach the coordinator while cut off"
fi

coord_rc=0
wait "$coordinator_pid" || coord_rc=$?
job_ms=$(( ($(date +%s%N) - cut_at) / 1000000 ))
rc2=0 rc4=0 rc3=0
wait "${worker_pid[2]}" || rc2=$?
wait "${worker_pid[4]}" || rc4=$?
wait "${worker_pid[3]}" || rc3=$?
h3_exit_ms=$(( ($(date +%s%N) - cut_at) / 1000000 ))
heal 3
reassigned=$(grep -E 'previous attempt timed out\) -> worker' "$mr/coordinator.log" || true)
done_line=$(grep 'job done in' "$mr/coordinator.log" | sed 's/.*\] //' | tail -1)
mr_reassigned() {
  echo "coordinator exit $coord_rc, $job_ms ms after the cut: $done_line"
  [[ $coord_rc == 0 && $rc2 == 0 && $rc4 == 0 ]] || { echo "exit codes: coordinator $coord_rc, h2 $rc2, h4 $rc4"; tail -5 "$mr/coordinator.log"; return 1; }
  [[ -n $reassigned ]] || { echo "no task handed out again after a timeout"; return 1; }
  sed 's/.*\] /handed out again: /' <<< "$reassigned"
  grep -qE 'worker h3$' <<< "$reassigned" && { echo "a timed-out task went back to the cut-off host"; return 1; }
  [[ $done_line =~ ([0-9]+)\ after\ timeouts && ${BASH_REMATCH[1]} -ge 1 ]]
}
check "MapReduce: host 3's task goes to another worker after the ${task_timeout} s task timeout; the job ends" mr_reassigned

"$mrkv" sequential --app "$slow" --output "$mr/mr-correct.txt" "${inputs[@]/#/$mr/}" 2> "$mr/sequential.log"
mr_output() {
  sort "$mr"/mr-out-* | grep . > "$mr/all.txt" || true
  sort "$mr/mr-correct.txt" > "$mr/correct.txt"
  cmp -s "$mr/all.txt" "$mr/correct.txt" || { diff "$mr/all.txt" "$mr/correct.txt" | head -5; return 1; }
  echo "$(wc -l < "$mr/all.txt") lines, identical"
}
check "MapReduce: output = mrkv sequential" mr_output

# Host 3's worker: its map ends slow_map_ms after it began, its report then fails (call timeout), and it
# retries until the coordinator has been silent for give_up: bound it with a 3 s margin.
bound_ms=$(( slow_map_ms + (call_timeout + give_up + 3) * 1000 ))
h3_exit() {
  echo "exit code $rc3, $h3_exit_ms ms after the cut (bound $bound_ms ms); its last words:"
  tail -2 "$mr/worker-h3.log" | sed 's/^/  /'
  [[ $rc3 == 0 ]] && (( h3_exit_ms <= bound_ms )) && grep -q 'has not answered' "$mr/worker-h3.log"
}
check "MapReduce: the cut-off worker exits 0 by itself after --give-up-after $give_up s of silence" h3_exit

# --- MapReduce sharing nothing ----------------------------------------------------------------------------
sn=$W/mr2
mkdir -p "$sn/h1" "$sn/h2" "$sn/h3" "$sn/h4"
cp test/data/gutenberg/pg-*.txt "$sn/h1/"
coord2=http://$NET.1:7710
sn_task_timeout=4
slow_reduce_ms=1500
job2_json() { in_ns 1 curl -sf --max-time 1 "$coord2/v1/job"; }
in_ns 1 "$mrkv" coordinator --listen "$NET.1:7710" --workdir "$sn/h1" --reduce 6 --task-timeout $sn_task_timeout \
  --no-backup-tasks "${inputs[@]}" > "$sn/coordinator.out" 2> "$sn/coordinator.log" &
sn_coordinator_pid=$!
wait_until 10 in_ns 1 curl -sf --max-time 1 "$coord2/healthz" || { cat "$sn/coordinator.log" >&2; exit 1; }
declare -A sn_worker_pid
sn_worker() {  # sn_worker HOST [ENV...]: a --serve worker in its own directory; each reduce task takes 1.5 s
  local h=$1; shift
  in_ns "$h" env MRKV_SLOW_REDUCE_MS=$slow_reduce_ms "$@" "$mrkv" worker --id "h$h" --coordinator "$coord2" \
    --app "$slow" --workdir "$sn/h$h" --serve "$NET.$h:7900" --give-up-after 8 --call-timeout 1.5 --poll-wait 1 \
    > "$sn/worker-h$h.out" 2> "$sn/worker-h$h.log" &
  sn_worker_pid[$h]=$!
}
# Host 3's maps take 0.3 s longer, so that hosts 2 and 4 get maps too.
sn_worker 3 MRKV_SLOW_MAP_MS=300
sn_worker 2
sn_worker 4
sn_started=$(now_ns)
in_reduce() { job2_json | jq -e '.phase == "reduce"'; }
reduce_reached=no
wait_until 30 in_reduce && reduce_reached=yes
# The first reduce tasks have fetched already; the later ones (each task takes 1.5 s) fetch after this.
cut 3
in_ns 2 nft -f - <<'EOF'
table inet mrkv_loss2 {
  chain in { type filter hook input priority 0; iifname "eth0" numgen random mod 100 < 20 drop; }
}
EOF
sn_cut_at=$(now_ns)
note "shared nothing: host 3 cut off and 20 % loss on host 2, $(( (sn_cut_at - sn_started) / 1000000 )) ms after the workers started"
outputs_at_cut=$(job2_json | jq -r '.map_outputs | to_entries[] | "\(.key) \(.value)"' || true)
maps_of() { awk -v url="http://$NET.$1:7900" '$2 == url {print $1}' <<< "$outputs_at_cut" | xargs; }
h2_maps=$(maps_of 2)
h3_maps=$(maps_of 3)
h4_maps=$(maps_of 4)
sn_layout() {
  echo "map outputs when the reduce phase began: host 2: ${h2_maps:-none}; host 3: ${h3_maps:-none}; host 4: ${h4_maps:-none}"
  [[ $reduce_reached == yes && -n $h2_maps && -n $h3_maps ]]
}
check "shared nothing: in the reduce phase, hosts 2 and 3 hold map outputs when host 3 is cut off" sn_layout

sn_rc=timeout
for _ in $(seq 1 900); do kill -0 "$sn_coordinator_pid" 2>/dev/null || break; sleep 0.1; done
if ! kill -0 "$sn_coordinator_pid" 2>/dev/null; then
  sn_rc=0
  wait "$sn_coordinator_pid" || sn_rc=$?
fi
sn_job_ms=$(( ($(now_ns) - sn_cut_at) / 1000000 ))
in_ns 2 nft delete table inet mrkv_loss2
heal 3
for h in 2 3 4; do
  kill "${sn_worker_pid[$h]}" 2>/dev/null || true
  wait "${sn_worker_pid[$h]}" 2>/dev/null || true
done
sn_reran() {
  local lost m by
  echo "coordinator exit $sn_rc, $sn_job_ms ms after the cut: $(grep 'job done in' "$sn/coordinator.log" | sed 's/.*\] //' | tail -1)"
  [[ $sn_rc == 0 ]] || { tail -5 "$sn/coordinator.log"; return 1; }
  lost=$(grep 'taken for lost' "$sn/coordinator.log" || true)
  [[ -n $lost ]] || { echo "no map output was taken for lost"; return 1; }
  sed 's/^\(.\{23\}\).*\] /\1 /' <<< "$lost"
  for m in $h3_maps; do
    # The last attempt of each of host 3's maps was done by another host.
    by=$(grep -E "\] map task $m done by worker " "$sn/coordinator.log" | tail -1 | sed -E 's/.* done by worker (h[0-9]+).*/\1/')
    [[ -n $by && $by != h3 ]] || { echo "map $m was last done by '${by:-nobody}'"; return 1; }
    echo "map $m: run again, done by $by"
  done
}
check "shared nothing: host 3's map outputs are taken for lost and their maps run again elsewhere; the job ends" sn_reran
sn_output() {
  local stray
  sort "$sn"/h1/mr-out-* | grep . > "$sn/all.txt" || true
  cmp -s "$sn/all.txt" "$mr/correct.txt" || { diff "$sn/all.txt" "$mr/correct.txt" | head -5; return 1; }
  stray=$(find "$sn/h1" -name '*.map' | head -3)
  [[ -z $stray ]] || { echo "map outputs in the coordinator's directory: $stray"; return 1; }
  echo "$(wc -l < "$sn/all.txt") lines in the coordinator's directory, identical; no map output there"
  grep -h 'counter mrkv,reduce_input_bytes' "$sn/coordinator.log" | sed 's/.*\] /shuffled: /'
}
check "shared nothing: the output, in the coordinator's directory, = mrkv sequential" sn_output
sn_h2_kept() {
  local failures reruns m
  failures=$(grep -c 'could not fetch the output of map' "$sn/coordinator.log" || true)
  reruns=$(grep 'taken for lost' "$sn/coordinator.log" | grep -c 'on worker h2 ' || true)
  echo "fetch failures reported (all hosts): $failures; reruns of host 2's outputs: $reruns"
  ((reruns == 0)) || return 1
  for m in $h2_maps; do
    if grep -qE "\] map task $m \(attempt [2-9]" "$sn/coordinator.log"; then
      echo "map $m of host 2 was handed out again"
      return 1
    fi
  done
  echo "host 2's maps ($h2_maps) each ran once: reducers fetched their outputs through the loss"
}
check "shared nothing: host 2's maps, behind 20 % loss, are not run again" sn_h2_kept

# --- key/value -----------------------------------------------------------------------------------------
kv=$W/kv
mkdir -p "$kv"
server=http://$NET.1:7800
history=$kv/history.jsonl
in_ns 1 "$mrkv" kvserver --listen "$NET.1:7800" --threads 2 > "$kv/server.out" 2> "$kv/server.log" &
kvserver_pid=$!
wait_until 10 in_ns 1 curl -sf --max-time 1 "$server/healthz" || { cat "$kv/server.log" >&2; exit 1; }
in_ns 1 nft -f - <<'EOF'
table inet mrkv_loss {
  chain in { type filter hook input priority 0; numgen random mod 100 < 20 drop; }
}
EOF
rm -f "$W/stop"
declare -A clerk_pid
for h in 2 3 4; do
  in_ns "$h" "$root/scripts/lib/netns-clerk.sh" "$mrkv" "$server" "$h" "$kv/history-h$h.jsonl" "$W/stop" \
    2> "$kv/clerk-h$h.log" &
  clerk_pid[$h]=$!
done
note "key/value: 3 clerks through 20 % loss on host 1"
sleep 5
cut 2
cut2_at=$(now_ns)
note "key/value: host 2 cut off"
sleep 2
heal 2
heal2_at=$(now_ns)
note "key/value: host 2 healed"
sleep 3
in_ns 1 nft delete table inet mrkv_loss
touch "$W/stop"
clerks_rc=0
for h in 2 3 4; do wait "${clerk_pid[$h]}" || clerks_rc=1; done
cat "$kv"/history-h*.jsonl > "$history"
# Final reads of every key, from host 4, into the history as client 1.
for key in k0 k1 k2; do
  call=$(now_ns)
  value=$(in_ns 4 "$mrkv" kv --server "$server" --timeout 10 get "$key") || value=FAILED
  ret=$(now_ns)
  printf '{"client":1,"op":"get","key":"%s","input":"","output":"%s","ok":true,"call_ns":%s,"return_ns":%s}\n' \
    "$key" "$value" "$call" "$ret" >> "$history"
  printf '%s\n' "$value" > "$kv/final-$key"
done

# Append requests the server answered, against appends the clerks made: the difference is retries that
# reached the server (a lost reply, a timed-out attempt), where exactly-once matters.
appends_served() {
  in_ns 4 curl -sf --max-time 5 "$server/metrics" |
    awk '/^mrkv_http_requests_total\{.*route="\/v1\/append",status="200"\}/ {n += $2} END {print n + 0}'
}
served_appends=$(appends_served)
kv_progress() {
  local h total done pending
  for h in 2 3 4; do
    total=$(wc -l < "$kv/history-h$h.jsonl")
    done=$(grep -c '"ok":true' "$kv/history-h$h.jsonl" || true)
    pending=$((total - done))
    echo "host $h: $done operations completed, $pending gave up"
    ((done >= 5)) || return 1
  done
  echo "the server answered $served_appends append requests for $(grep -c '"op":"append"' "$history") appends"
  ((clerks_rc == 0))
}
check "key/value: clerks on hosts 2-4 complete operations through 20 % loss on host 1" kv_progress
across_cut() {
  # An operation of host 2 called before the heal and answered after it: retried through the cut.
  local spans
  spans=$(jq -c --argjson cut "$cut2_at" --argjson heal "$heal2_at" \
    'select(.ok and .call_ns < $heal and .return_ns > $heal) | {op, key, ms: ((.return_ns - .call_ns) / 1e6 | floor)}' \
    "$kv/history-h2.jsonl")
  echo "cut for $(( (heal2_at - cut2_at) / 1000000 )) ms; host 2 operations spanning the heal: ${spans:-none}"
  [[ -n $spans ]]
}
check "key/value: host 2 cut off for 2 s, healed: its pending operation completes after the heal" across_cut

if [[ -x $build/mrkv_tests ]]; then
  lin() {
    local out rc=0
    out=$(MRKV_HISTORY_FILE=$history "$build/mrkv_tests" -tc='history file*' 2>&1) || rc=$?
    grep -E 'operations|ERROR|key |Status' <<< "$out" | sed 's/^.*MESSAGE: //' | head -20
    return $rc
  }
  check "key/value: the whole history ($(wc -l < "$history") operations) is linearizable" lin
else
  fail "key/value: the whole history is linearizable" "no $build/mrkv_tests to check it with"
fi
exactly_once() {
  # Each completed append's token appears exactly once in its key's final value, each abandoned one at
  # most once, and nothing else appears.
  jq -r 'select(.op == "append") | [.key, .input, (if .ok then "done" else "pending" end)] | @tsv' "$history" |
    awk -v dir="$kv" '
      BEGIN {
        for (k = 0; k < 3; k++) {
          key = "k" k; f = dir "/final-" key; getline v < f; close(f)
          n = split(v, parts, ";")
          for (i = 1; i < n; i++) seen[key "\t" parts[i] ";"]++
          if (parts[n] != "") { print "value of " key " does not end with a token: " v; bad++ }
        }
      }
      { want[$1 "\t" $2] = $3; appends++; if ($3 == "pending") pending++ }
      END {
        for (t in want) {
          c = seen[t] + 0
          if (want[t] == "done" && c != 1) { print "completed append " t " appears " c " times"; bad++ }
          if (want[t] == "pending" && c > 1) { print "abandoned append " t " appears " c " times"; bad++ }
          if (want[t] == "pending" && c == 1) applied++
        }
        for (t in seen) if (!(t in want)) { print "token " t " was never appended"; bad++ }
        printf "%d appends (%d abandoned, %d of those applied), each in the final values at most once, completed ones exactly once\n", appends, pending + 0, applied + 0
        exit bad > 0
      }'
}
check "key/value: every append appears exactly once" exactly_once

# Lost replies, for certain: host 1 drops every reply segment to host 3 (handshakes and ACKs still pass,
# so requests arrive) while one clerk on host 3 appends once, resending every 0.5 s; then the rule goes.
served_before=$(appends_served)
in_ns 1 nft -f - <<EOF
table inet mrkv_replies {
  chain out { type filter hook output priority 0; ip daddr $NET.3 tcp sport 7800 ip length > 120 drop; }
}
EOF
in_ns 3 "$mrkv" kv --server "$server" --timeout 20 --attempt-timeout 0.5 append k9 once-only > "$kv/k9.out" \
  2> "$kv/k9.err" &
k9_pid=$!
sleep 2
in_ns 1 nft delete table inet mrkv_replies
k9_rc=0
wait "$k9_pid" || k9_rc=$?
lost_replies() {
  local served value
  served=$(( $(appends_served) - served_before ))
  value=$(in_ns 4 "$mrkv" kv --server "$server" --timeout 10 get k9) || return 1
  echo "one append answered after its replies were dropped for 2 s: the server executed or replayed it $served times; k9 = '$value'"
  ((k9_rc == 0 && served >= 2)) && [[ $value == once-only && $(cat "$kv/k9.out") == "" ]]
}
check "key/value: an append whose replies are lost is resent, and applied once" lost_replies

# --- names -----------------------------------------------------------------------------------------------
# `ip netns exec` puts /etc/netns/NS/* over /etc/*: host 4 gets its own hosts file and a DNS server on
# host 1 whose port 53 drops everything, as a resolver that went away looks from a client.
mkdir -p "/etc/netns/$P-h4"
printf '127.0.0.1 localhost\n%s.1 kvhost\n' "$NET" > "/etc/netns/$P-h4/hosts"
printf 'nameserver %s.1\noptions timeout:5 attempts:2\n' "$NET" > "/etc/netns/$P-h4/resolv.conf"
in_ns 1 nft -f - <<'EOF'
table inet mrkv_dns {
  chain in { type filter hook input priority 0; udp dport 53 drop; tcp dport 53 drop; }
}
EOF
by_name() {
  local value
  value=$(in_ns 4 "$mrkv" kv --server http://kvhost:7800 --timeout 10 get k0) || return 1
  [[ $value == "$(cat "$kv/final-k0")" ]] || { echo "got '$value'"; return 1; }
  echo "http://kvhost:7800 (from host 4's /etc/hosts) answers get k0 like $server"
}
check "names: a clerk reaches the server by a name from its hosts file" by_name
silent_dns() {
  local started took rc=0 err
  started=$(now_ns)
  err=$(in_ns 4 "$mrkv" kv --server http://kv.mrkv-test.invalid:7800 --timeout 1.5 get k0 2>&1 >/dev/null) || rc=$?
  took=$(( ($(now_ns) - started) / 1000000 ))
  echo "exit $rc after $took ms: $err"
  ((rc == 1 && took < 4000))
}
check "names: a name the silent DNS server never resolves costs the clerk its 1.5 s --timeout" silent_dns
in_ns 1 nft delete table inet mrkv_dns
kill "$kvserver_pid" 2>/dev/null || true
wait "$kvserver_pid" 2>/dev/null || true

# --- cleanup, checked ------------------------------------------------------------------------------------
teardown
torn_down=1
cleanup_check() {
  local left
  left=$(namespaces)
  [[ -z $left ]] || { echo "namespaces left: $left"; return 1; }
  [[ ! -e /etc/netns/$P-h4 ]] || { echo "/etc/netns/$P-h4 left"; return 1; }
  local pid
  for pid in "$coordinator_pid" "${worker_pid[@]}" "$sn_coordinator_pid" "${sn_worker_pid[@]}" "$kvserver_pid" "${clerk_pid[@]}"; do
    kill -0 "$pid" 2>/dev/null && left+=" $pid"
  done
  [[ -z $left ]] || { echo "processes left:$left"; return 1; }
  echo "no namespace (so no veth, bridge or nftables rule), no /etc/netns file and no process left"
}
check "cleanup: every namespace, rule and process removed" cleanup_check
summary netns-test
