#!/usr/bin/env bash
# Benchmarks the durable kvserver (issue 12) side by side with the stores people trust, in one run on one
# machine, every data dir on the same disk ($TMPDIR):
#   - durable PUT at 50 connections, 16-byte values, 1000 keys: kvserver --fsync always against
#     redis-server (appendonly yes, appendfsync always) and etcd 3.4 (its JSON gateway /v3/kv/put under wrk),
#     and kvserver --fsync everysec against the memory-only kvserver;
#   - restart with 1M keys (a snapshot plus 1M log records after it) until a GET is answered, and bytes on
#     disk per 16-byte key beside Redis's AOF and RDB of the same keys;
#   - GET p99 while a snapshot of 1M keys is written.
# Prints one table per part with each figure, its ratio and the issue's target, and writes the same tables
# as one Markdown section to $RESULTS (default: stdout after the tables).
#
#   scripts/bench-kv-durable.sh           3 rounds of 3 s loads (~4 minutes on 2 cores)
#   scripts/bench-kv-durable.sh --quick   1 round (~2 minutes; the 1M-key parts are the same)
#   scripts/bench-kv-durable.sh --snapshot-only   only GET p99 during a 1M-key snapshot (~1 minute), to
#                                         compare two builds (MRKV_BIN) side by side
#
# Installs what it needs from Debian when missing (scripts/deps.sh), builds build/release/mrkv with the
# release preset unless MRKV_BIN names a binary. Every server listens on loopback on a free port and is
# stopped by its PID, also when the script fails. Exits 1 if a check failed (a non-2xx reply, a key not
# recovered); a missed performance target is reported, not an error.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
here=$root/scripts/bench
quick=0 snapshot_only=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --snapshot-only) snapshot_only=1 ;;
    -h | --help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-kv-durable.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
duration=3 warmup=1 rounds=3 restarts=3
((quick)) && rounds=1 restarts=1
big=1000000 # keys for the restart, disk and snapshot parts

"$root/scripts/deps.sh" wrk redis-server redis-tools etcd-server curl python3 procps mawk util-linux
if [[ -z ${MRKV_BIN:-} ]]; then
  echo "bench: building build/release/mrkv" >&2
  (cd "$root" && cmake --preset release >/dev/null && cmake --build --preset release --target mrkv >/dev/null)
  MRKV_BIN=$root/build/release/mrkv
fi
bin=$(readlink -f "$MRKV_BIN")
[[ -x $bin ]] || { echo "bench: $MRKV_BIN is not an executable" >&2; exit 2; }

work=$(mktemp -d -t mrkv-durable.XXXXXX) # every data dir lives here: the same disk for everyone
pids=()
failed=0
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }
check_failed() { say "bench: CHECK FAILED: $*"; failed=1; }
forget_pid() {
  local keep=() p
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  pids=("${keep[@]}")
}
stop() { # PID [SIGNAL]: signal (TERM), then wait for it to exit
  kill "-${2:-TERM}" "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget_pid "$1"
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { # PORT PID
  local i
  for ((i = 0; i < 1000; i++)); do
    (exec 3<> "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || die "the server on port $1 (pid $2) exited at start"
    sleep 0.02
  done
  die "nothing listens on port $1 after 20 s"
}
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "") printf "%.2f", a / b; else print "n/a" }'; }
fmt() { awk -v v="$1" -v d="${2:-0}" 'BEGIN { if (v == "" || v == "n/a") print "n/a"; else printf("%." d "f\n", v) }'; }
per_key() { awk -v b="$1" -v k="$2" 'BEGIN { printf "%.1f", b / k }'; }
verdict() { # VALUE OP LIMIT (OP: le or ge)
  awk -v r="$1" -v op="$2" -v lim="$3" 'BEGIN {
    if (r == "n/a" || r == "") { print "n/a"; exit }
    ok = (op == "ge") ? (r + 0 >= lim + 0) : (r + 0 <= lim + 0)
    print ok ? "met" : "missed" }'
}
goals=()
goal() { # NAME VALUE OP LIMIT: sets V and records the target
  V=$(verdict "$2" "$3" "$4")
  local sym="<="
  [[ $3 == ge ]] && sym=">="
  goals+=("$1"$'\t'"$2"$'\t'"$sym $4"$'\t'"$V")
}
bytes_of() { du -sb "$@" | awk '{ s += $1 } END { print s + 0 }'; }

# --- tables, as in scripts/bench.sh: aligned to stdout, Markdown to $markdown --------------------------
markdown=$work/results.md
: > "$markdown"
table_file=""
table() { table_file=$work/table.$RANDOM; printf '%s\n' "$1" > "$table_file"; shift; row "$@"; }
row() { local IFS=$'\t'; printf '%s\n' "$*" >> "$table_file"; }
note() { printf 'note\t%s\n' "$*" >> "$table_file"; }
end_table() {
  awk -F'\t' '
    NR == 1 { title = $0; next }
    /^note\t/ { notes[++nn] = substr($0, 6); next }
    { rows[++n] = $0; if (NF > cols) cols = NF
      for (i = 1; i <= NF; i++) if (length($i) > w[i]) w[i] = length($i) }
    END {
      printf "\n== %s\n", title
      for (r = 1; r <= n; r++) {
        k = split(rows[r], c, "\t"); line = ""
        for (i = 1; i <= k; i++) line = line sprintf(i == 1 ? "%-" w[i] "s" : "  %" w[i] "s", c[i])
        print line
        if (r == 1) { line = ""; for (i = 1; i <= cols; i++) { s = sprintf("%" (w[i] + (i > 1 ? 2 : 0)) "s", ""); gsub(/ /, "-", s); line = line s }; print line }
      }
      for (i = 1; i <= nn; i++) print "  " notes[i]
    }' "$table_file"
  awk -F'\t' '
    NR == 1 { printf "\n### %s\n\n", $0; next }
    /^note\t/ { notes[++nn] = substr($0, 6); next }
    { printf "|"; for (i = 1; i <= NF; i++) { c = $i; gsub(/\|/, "\\|", c); printf " %s |", c }; printf "\n"
      if (++n == 1) { printf "|"; for (i = 1; i <= NF; i++) printf (i == 1 ? " --- |" : " ---: |"); printf "\n" } }
    END { if (nn) printf "\n"; for (i = 1; i <= nn; i++) printf "%s\n", notes[i] }' "$table_file" >> "$markdown"
}
para() { printf '\n%s\n' "$*" >> "$markdown"; }

# --- servers ------------------------------------------------------------------------------------------
kv_pid="" kv_url="" kv_log=""
start_kv() { # kvserver flags...: sets kv_pid, kv_url; its log (info level) goes to $kv_log
  local out=$work/kv.$RANDOM.out i
  kv_log=$work/kv.$RANDOM.log
  "$bin" kvserver --listen 127.0.0.1:0 --log-level info "$@" > "$out" 2> "$kv_log" &
  kv_pid=$!
  pids+=("$kv_pid")
  for ((i = 0; ; i++)); do
    [[ -s $out ]] && break
    kill -0 "$kv_pid" 2>/dev/null || die "the kvserver exited at start: $(tail -3 "$kv_log")"
    ((i < 3000)) || die "the kvserver printed no listening line in 30 s"
    sleep 0.01
  done
  kv_url=$(sed -n '1s/.* on //p' "$out")
}

redis_pid="" redis_port="" redis_dir=""
start_redis() { # extra redis-server flags...
  redis_port=$(free_port)
  redis_dir=$work/redis.$RANDOM
  mkdir -p "$redis_dir"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --dir "$redis_dir" --logfile "$redis_dir/redis.log" \
    --daemonize no "$@" &
  redis_pid=$!
  pids+=("$redis_pid")
  wait_port "$redis_port" "$redis_pid"
}
redis_field() { redis-cli -p "$redis_port" info "$1" | tr -d '\r' | awk -F: -v k="$2" '$1 == k { print $2 }'; }

etcd_pid="" etcd_port=""
start_etcd() {
  etcd_port=$(free_port)
  local peer dir=$work/etcd.$RANDOM
  peer=$(free_port)
  etcd --name bench --data-dir "$dir" --logger zap --log-level error --log-outputs "$work/etcd.log" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "bench=http://127.0.0.1:$peer" > /dev/null 2>&1 &
  etcd_pid=$!
  pids+=("$etcd_pid")
  wait_port "$etcd_port" "$etcd_pid"
  local i
  for ((i = 0; i < 500; i++)); do
    curl -sf "http://127.0.0.1:$etcd_port/health" 2>/dev/null | grep -q '"true"' && return 0
    sleep 0.02
  done
  die "etcd is not healthy after 10 s: $(tail -3 "$work/etcd.log")"
}

# The etcd gateway wants base64 keys and values; the requests are made once, as scripts/bench/kv.lua does.
cat > "$work/etcd_put.lua" <<'LUA'
local requests, n, i = {}, 0, 0
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out = {}
  for at = 1, #s, 3 do
    local a, b, c = s:byte(at, at + 2)
    local word = a * 65536 + (b or 0) * 256 + (c or 0)
    local quad = {}
    for j = 1, 4 do
      local index = math.floor(word / 64 ^ (4 - j)) % 64
      quad[j] = alphabet:sub(index + 1, index + 1)
    end
    if not b then quad[3] = "=" end
    if not c then quad[4] = "=" end
    out[#out + 1] = table.concat(quad)
  end
  return table.concat(out)
end
function init(args)
  local keys = tonumber(args[1] or "1000")
  local value = base64(string.rep("v", tonumber(args[2] or "16")))
  local headers = { ["Host"] = wrk.host .. ":" .. wrk.port, ["Content-Type"] = "application/json" }
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  n = math.min(keys, 4096)
  for k = 1, n do
    local body = '{"key":"' .. base64("key:" .. math.random(0, keys - 1)) .. '","value":"' .. value .. '"}'
    requests[k] = wrk.format("POST", "/v3/kv/put", headers, body)
  end
end
function request()
  i = i % n + 1
  return requests[i]
end
LUA

# --- load generators: each sets OPS and P99 (ms) --------------------------------------------------------
OPS="" P99=""
jfield() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }
mrkv_bench() { # LABEL bench-flags...
  local label=$1 out=$work/bench.$RANDOM.json
  shift
  "$bin" bench kv --server "$kv_url" --json --log-level warn "$@" > "$out" || die "mrkv bench ($label) failed"
  OPS=$(jfield "$out" ops_per_second) P99=$(jfield "$out" p99_ms)
  local errors
  errors=$(jfield "$out" errors)
  say "bench:   mrkv bench $label: $(fmt "$OPS") ops/s, p99 $(fmt "$P99" 2) ms, $errors errors"
  ((errors == 0)) || check_failed "mrkv bench $label: $errors errors, first: $(jfield "$out" first_error)"
}
wrk_run() { # LABEL URL [wrk args]...: 2 threads, 50 connections
  local label=$1 url=$2 out=$work/wrk.$RANDOM.txt
  shift 2
  wrk -t2 -c50 -d"${duration}s" --latency "$url" "$@" > "$out" 2>&1 || die "wrk ($label) failed: $(tail -3 "$out")"
  OPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  P99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                           print (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v }' "$out")
  if grep -q 'Non-2xx or 3xx responses' "$out"; then check_failed "wrk $label: $(grep 'Non-2xx' "$out" | xargs)"; fi
  if grep -q 'Socket errors' "$out"; then say "bench: wrk $label: $(grep 'Socket errors' "$out" | xargs)"; fi
  [[ -n $OPS ]] || die "wrk ($label) printed no Requests/sec: $(cat "$out")"
  say "bench:   wrk $label: $(fmt "$OPS") req/s, p99 $(fmt "$P99" 2) ms"
}
redis_set() { # redis-benchmark SET, 50 connections, sized to last about $duration s
  local probe n out=$work/redis.$RANDOM.csv
  probe=$(redis-benchmark -p "$redis_port" -c 50 -d 16 -r 1000 -t set -n 5000 --csv | awk -F'"' '$2 == "SET" { print $4 }')
  n=$(awk -v r="$probe" -v d="$duration" 'BEGIN { n = int(r * d); print n < 5000 ? 5000 : n }')
  redis-benchmark -p "$redis_port" -c 50 -d 16 -r 1000 -t set -n "$n" --csv > "$out" || die "redis-benchmark failed"
  OPS=$(awk -F'"' '$2 == "SET" { print $4 }' "$out") P99=$(awk -F'"' '$2 == "SET" { print $14 }' "$out")
  [[ -n $OPS ]] || die "redis-benchmark printed no SET line: $(cat "$out")"
  say "bench:   redis-benchmark SET: $(fmt "$OPS") ops/s, p99 $(fmt "$P99" 2) ms"
}

# --- durable PUT at 50 connections ------------------------------------------------------------------
durable_put() {
  local -a ka_w ka_wp ka_b ka_bp ke_w ke_wp ke_b ke_bp km_w km_wp km_b km_bp rd rdp et etp
  local -a r_redis r_etcd r_every_w r_every_b
  local r
  for ((r = 1; r <= rounds; r++)); do
    say "bench: durable PUT, round $r of $rounds"
    start_kv --data-dir "$work/kv-always.$r" --fsync always
    wrk_run "kvserver always PUT" "$kv_url" -s "$here/kv.lua" -- put 1000 16
    ka_w+=("$OPS") ka_wp+=("$P99")
    mrkv_bench "kvserver always PUT" --clients 50 --keys 1000 --mix 0:1:0 --duration "$duration" --warmup "$warmup"
    ka_b+=("$OPS") ka_bp+=("$P99")
    stop "$kv_pid"
    start_kv --data-dir "$work/kv-everysec.$r" --fsync everysec
    wrk_run "kvserver everysec PUT" "$kv_url" -s "$here/kv.lua" -- put 1000 16
    ke_w+=("$OPS") ke_wp+=("$P99")
    mrkv_bench "kvserver everysec PUT" --clients 50 --keys 1000 --mix 0:1:0 --duration "$duration" --warmup "$warmup"
    ke_b+=("$OPS") ke_bp+=("$P99")
    stop "$kv_pid"
    start_kv
    wrk_run "kvserver memory PUT" "$kv_url" -s "$here/kv.lua" -- put 1000 16
    km_w+=("$OPS") km_wp+=("$P99")
    mrkv_bench "kvserver memory PUT" --clients 50 --keys 1000 --mix 0:1:0 --duration "$duration" --warmup "$warmup"
    km_b+=("$OPS") km_bp+=("$P99")
    stop "$kv_pid"
    start_redis --appendonly yes --appendfsync always
    [[ $(redis-cli -p "$redis_port" config get appendfsync | tail -1) == always ]] || check_failed "redis is not on appendfsync always"
    redis_set
    rd+=("$OPS") rdp+=("$P99")
    [[ -n $(ls "$redis_dir"/appendonlydir/*.incr.aof 2>/dev/null) ]] || check_failed "redis wrote no AOF in $redis_dir"
    stop "$redis_pid"
    start_etcd
    curl -sf -X POST "http://127.0.0.1:$etcd_port/v3/kv/put" -d '{"key":"a2V5","value":"dg=="}' | grep -q header ||
      die "etcd's gateway did not take a put"
    wrk_run "etcd PUT (gateway)" "http://127.0.0.1:$etcd_port" -s "$work/etcd_put.lua" -- 1000 16
    et+=("$OPS") etp+=("$P99")
    stop "$etcd_pid"
    r_redis+=("$(ratio "${ka_b[-1]}" "${rd[-1]}")") r_etcd+=("$(ratio "${ka_w[-1]}" "${et[-1]}")")
    r_every_w+=("$(ratio "${ke_w[-1]}" "${km_w[-1]}")") r_every_b+=("$(ratio "${ke_b[-1]}" "${km_b[-1]}")")
  done
  table "Durable PUT at 50 connections, 16-byte values, 1000 keys, data dirs on the same disk ($(findmnt -no FSTYPE -T "$work"))" \
    "measurement" "ops/s" "p99 ms" "anchor" "anchor ops/s" "anchor p99 ms" "ratio" "target" "verdict"
  local x
  x=$(fmt "$(median "${r_redis[@]}")" 2)
  goal "kvserver --fsync always PUT / redis appendfsync always SET" "$x" ge 1.0
  row "kvserver --fsync always, mrkv bench" "$(fmt "$(median "${ka_b[@]}")")" "$(fmt "$(median "${ka_bp[@]}")" 2)" \
    "redis appendfsync always, redis-benchmark" "$(fmt "$(median "${rd[@]}")")" "$(fmt "$(median "${rdp[@]}")" 2)" "$x" ">= 1.0" "$V"
  x=$(fmt "$(median "${r_etcd[@]}")" 2)
  goal "kvserver --fsync always PUT / etcd 3.4 put, both wrk" "$x" ge 3.0
  row "kvserver --fsync always, wrk" "$(fmt "$(median "${ka_w[@]}")")" "$(fmt "$(median "${ka_wp[@]}")" 2)" \
    "etcd 3.4 /v3/kv/put, wrk" "$(fmt "$(median "${et[@]}")")" "$(fmt "$(median "${etp[@]}")" 2)" "$x" ">= 3.0" "$V"
  x=$(fmt "$(median "${r_every_w[@]}")" 2)
  goal "kvserver --fsync everysec PUT / memory-only, wrk" "$x" ge 0.9
  row "kvserver --fsync everysec, wrk" "$(fmt "$(median "${ke_w[@]}")")" "$(fmt "$(median "${ke_wp[@]}")" 2)" \
    "memory-only kvserver, wrk" "$(fmt "$(median "${km_w[@]}")")" "$(fmt "$(median "${km_wp[@]}")" 2)" "$x" ">= 0.9" "$V"
  x=$(fmt "$(median "${r_every_b[@]}")" 2)
  goal "kvserver --fsync everysec PUT / memory-only, mrkv bench" "$x" ge 0.9
  row "kvserver --fsync everysec, mrkv bench" "$(fmt "$(median "${ke_b[@]}")")" "$(fmt "$(median "${ke_bp[@]}")" 2)" \
    "memory-only kvserver, mrkv bench" "$(fmt "$(median "${km_b[@]}")")" "$(fmt "$(median "${km_bp[@]}")" 2)" "$x" ">= 0.9" "$V"
  note "Medians of $rounds round(s); a round runs every load above for ${duration} s, one after the other, each server on a fresh data dir." \
    "kvserver 2 threads; wrk 2 threads with scripts/bench/kv.lua (put 1000 16) or a gateway script with base64 keys;" \
    "mrkv bench and redis-benchmark 1 thread (redis-benchmark -c 50 -d 16 -r 1000 -t set). Ratio: median over rounds of the per-round ratios."
  end_table
}

# --- 1M keys: restart time, bytes on disk, GET p99 during a snapshot --------------------------------
preload_big() { # loads key:0..key:999999 (16-byte values) into the running kvserver
  "$bin" bench kv --server "$kv_url" --clients 100 --keys "$big" --preload --mix 1:0:0 --duration 0.1 --warmup 0 \
    --log-level warn --json > /dev/null || die "preloading $big keys failed"
}
put_one() { # KEY VALUE
  curl -sf -X POST "$kv_url/v1/put" -d "{\"key\":\"$1\",\"value\":\"$2\"}" > /dev/null || die "a put to $kv_url failed"
}
# A put larger than the smallest --snapshot-after (4096 bytes): with that threshold it starts a snapshot.
trigger=$(printf 't%.0s' {1..5000})
wait_log() { # TEXT: until the kvserver's log has it (60 s)
  local i
  for ((i = 0; i < 6000; i++)); do
    grep -q "$1" "$kv_log" && return 0
    sleep 0.01
  done
  die "the kvserver did not log '$1' in 60 s: $(tail -3 "$kv_log")"
}

snapshot_seconds="" log_bytes="" snap_bytes="" dir_bytes=""
build_big_dir() { # DIR: a snapshot of 1M keys and 1M log records after it
  local dir=$1 huge=$((1 << 40))
  say "bench: $big keys: writing the log"
  start_kv --data-dir "$dir" --fsync never --snapshot-after "$huge"
  preload_big
  stop "$kv_pid"
  log_bytes=$(bytes_of "$dir"/wal-*.log)
  say "bench: $big keys: the snapshot"
  start_kv --data-dir "$dir" --fsync never --snapshot-after 4096
  put_one snapshot-trigger "$trigger"
  wait_log "snapshot snap-.* written"
  snapshot_seconds=$(sed -n 's/.*snapshot snap-.* written: [0-9]* bytes in \([0-9.]*\) s.*/\1/p' "$kv_log" | head -1)
  stop "$kv_pid"
  snap_bytes=$(bytes_of "$dir"/snap-*.snap)
  say "bench: $big keys: 1M log records after the snapshot"
  start_kv --data-dir "$dir" --fsync never --snapshot-after "$huge"
  preload_big
  stop "$kv_pid" KILL # a crash: recovery reads the snapshot and every record after it
  dir_bytes=$(bytes_of "$dir")
  local snaps
  snaps=$(find "$dir" -maxdepth 1 -name 'snap-*.snap' | wc -l)
  ((snaps == 1)) || check_failed "expected one snapshot in $dir, found $snaps"
}

restart_big() { # DIR: sets RESTART (s until the first GET of the last key is answered), RECOVERY (the server's own figure)
  local dir=$1 t0 t1 i value
  t0=$(now)
  start_kv --data-dir "$dir"
  for ((i = 0; i < 6000; i++)); do
    value=$(curl -s -X POST "$kv_url/v1/get" -d "{\"key\":\"key:$((big - 1))\"}" 2>/dev/null || true)
    [[ $value == *pppp* ]] && break
    sleep 0.005
  done
  t1=$(now)
  [[ $value == *pppp* ]] || check_failed "key:$((big - 1)) not recovered: '$value'"
  RESTART=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  RECOVERY=$(sed -n 's/.*snapshot entries and \([0-9]*\) log records in \([0-9.]*\) s.*/\2/p' "$kv_log" | head -1)
  local records
  records=$(sed -n 's/.* \([0-9]*\) snapshot entries and \([0-9]*\) log records in.*/\1 \2/p' "$kv_log" | head -1)
  say "bench:   restart: ready in $(fmt "$RESTART" 2) s (recovery $RECOVERY s; snapshot entries and log records: $records)"
}

redis_disk() { # sets aof_bytes, rdb_bytes, aof_rewritten_bytes for $big keys loaded like mrkv bench's preload
  start_redis --appendonly yes --appendfsync everysec
  mawk -v n="$big" 'BEGIN { v = "pppppppppppppppp"
    for (i = 0; i < n; i++) { key = "key:" i
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(key), key, length(v), v } }' |
    redis-cli -p "$redis_port" --pipe > "$work/redis-pipe.txt" || die "redis-cli --pipe failed: $(cat "$work/redis-pipe.txt")"
  local stored
  stored=$(redis-cli -p "$redis_port" dbsize)
  ((stored == big)) || check_failed "redis holds $stored keys, not $big"
  redis-cli -p "$redis_port" bgsave > /dev/null
  local i
  for ((i = 0; i < 3000; i++)); do
    [[ $(redis_field persistence rdb_bgsave_in_progress) == 0 && -s $redis_dir/dump.rdb ]] && break
    sleep 0.02
  done
  aof_bytes=$(bytes_of "$redis_dir"/appendonlydir/*.incr.aof)
  rdb_bytes=$(bytes_of "$redis_dir/dump.rdb")
  redis-cli -p "$redis_port" bgrewriteaof > /dev/null
  for ((i = 0; i < 3000; i++)); do
    [[ $(redis_field persistence aof_rewrite_in_progress) == 0 && $(redis_field persistence aof_rewrite_scheduled) == 0 ]] &&
      ls "$redis_dir"/appendonlydir/*.base.* > /dev/null 2>&1 && break
    sleep 0.02
  done
  aof_rewritten_bytes=$(bytes_of "$redis_dir"/appendonlydir)
  stop "$redis_pid"
}

snapshot_p99() { # DIR: GET p99 over 1M keys without and during a snapshot
  local dir=$1 window
  start_kv --data-dir "$dir" --snapshot-after 4096
  mrkv_bench "GET over $big keys, no snapshot" --clients 50 --keys "$big" --mix 1:0:0 --duration "$duration" --warmup "$warmup"
  BASE_OPS=$OPS BASE_P99=$P99
  # The bench's window is the snapshot's length (as measured when the snapshot was first written).
  window=$(awk -v s="$snapshot_seconds" 'BEGIN { w = s + 0; if (w < 0.5) w = 0.5; printf "%.1f", w }')
  # The peak RSS from here on is the snapshot's (resetting VmHWM: "5" to clear_refs, Linux >= 4.0).
  RSS_BEFORE=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$kv_pid/status")
  echo 5 > "/proc/$kv_pid/clear_refs" 2>/dev/null || true
  # Wall time from the trigger until the snapshot is on disk, the cut included (which the server's own
  # figure leaves out when the cut is taken before its clock starts).
  local wall_file=$work/snapshot-wall poller t_start
  t_start=$(now)
  (while ! grep -q "snapshot snap-.* written" "$kv_log"; do sleep 0.005; done
    awk -v a="$t_start" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }' > "$wall_file") &
  poller=$!
  put_one snapshot-trigger "$trigger"
  mrkv_bench "GET over $big keys during a snapshot" --clients 50 --keys "$big" --mix 1:0:0 --duration "$window" --warmup 0
  SNAP_OPS=$OPS SNAP_P99=$P99
  wait_log "snapshot snap-.* written"
  SNAP_SECONDS=$(sed -n 's/.*snapshot snap-.* written: [0-9]* bytes in \([0-9.]*\) s.*/\1/p' "$kv_log" | head -1)
  SNAP_WINDOW=$window
  wait "$poller" || true
  SNAP_WALL=$(cat "$wall_file")
  RSS_PEAK=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$kv_pid/status")
  say "bench:   snapshot: $SNAP_SECONDS s by the server's figure, $SNAP_WALL s from the trigger until written;" \
    "RSS before it $RSS_BEFORE kB, peak while it was written $RSS_PEAK kB"
  stop "$kv_pid"
}

snapshot_table() {
  table "GET p99 during a snapshot of $big keys (mrkv bench, 50 connections, --fsync always)" \
    "measurement" "ops/s" "p99 ms" "target" "verdict"
  row "GET, no snapshot (${duration} s)" "$(fmt "$BASE_OPS")" "$(fmt "$BASE_P99" 2)" "" ""
  local x
  x=$(fmt "$SNAP_P99" 2)
  goal "GET p99 during a snapshot of 1M keys, ms" "$x" le 10
  row "GET while the snapshot is written (${SNAP_WINDOW} s window)" "$(fmt "$SNAP_OPS")" "$x" "<= 10" "$V"
  note "The snapshot took ${SNAP_SECONDS} s this time by the server's figure (${snapshot_seconds} s when first written), ${SNAP_WALL} s" \
    "from the trigger until it was on disk; the GET window starts as it starts" \
    "and lasts as long as the first one took, so it lies within the snapshot. The server's RSS was $((RSS_BEFORE / 1024)) MiB before it" \
    "and peaked at $((RSS_PEAK / 1024)) MiB while it was written."
  end_table
}

big_keys() {
  local dir=$work/kv-big
  build_big_dir "$dir"
  if ((snapshot_only)); then
    snapshot_p99 "$dir"
    snapshot_table
    return
  fi
  local -a rs rc
  local r
  for ((r = 1; r <= restarts; r++)); do
    restart_big "$dir"
    rs+=("$RESTART") rc+=("$RECOVERY")
    stop "$kv_pid" KILL
  done
  redis_disk
  snapshot_p99 "$dir"

  table "Restart with $big keys (a snapshot of them plus $big log records after it, the server killed with -9)" \
    "measurement" "seconds" "target" "verdict"
  local x
  x=$(fmt "$(median "${rs[@]}")" 2)
  goal "restart with 1M keys (snapshot + 1M records) until a GET is answered, s" "$x" le 3
  row "start until the first GET of the last key is answered" "$x" "<= 3" "$V"
  row "recovery alone (the server's own figure)" "$(fmt "$(median "${rc[@]}")" 2)" "" ""
  note "Median of $restarts restart(s) of \`mrkv kvserver --data-dir\` on the same directory (each killed with -9 afterwards)."
  end_table

  table "Bytes on disk per key ($big keys key:0..key:$((big - 1)), 16-byte values)" "file" "bytes" "bytes per key"
  row "kvserver log, $big puts" "$log_bytes" "$(per_key "$log_bytes" "$big")"
  row "kvserver snapshot" "$snap_bytes" "$(per_key "$snap_bytes" "$big")"
  row "kvserver data dir: snapshot + $big log records" "$dir_bytes" "$(per_key "$dir_bytes" "$big")"
  row "redis AOF, $big SETs" "$aof_bytes" "$(per_key "$aof_bytes" "$big")"
  row "redis RDB (BGSAVE)" "$rdb_bytes" "$(per_key "$rdb_bytes" "$big")"
  row "redis AOF after BGREWRITEAOF (RDB preamble)" "$aof_rewritten_bytes" "$(per_key "$aof_rewritten_bytes" "$big")"
  note "Redis loaded with redis-cli --pipe, the kvserver with mrkv bench --preload (one put per key); du -b of the files."
  end_table

  snapshot_table
}

# --- the run ------------------------------------------------------------------------------------------
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$SECONDS
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- src include CMakeLists.txt 2>/dev/null || commit="$commit (+ uncommitted changes)"
{
  echo
  echo "## Durable key/value (issue 12)"
  echo
  echo "Written by \`scripts/bench-kv-durable.sh$( ((quick)) && echo ' --quick')\` on $(date -u '+%Y-%m-%d %H:%M UTC'): mrkv $commit;" \
    "$(redis-server --version | cut -d' ' -f1-3), etcd $(etcd --version | awk '/^etcd Version/ { print $3 }'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2);" \
    "$(nproc) cores; data dirs in $work ($(findmnt -no FSTYPE,SOURCE -T "$work" | xargs)); load average at start $load_start."
} >> "$markdown"

((snapshot_only)) || durable_put
big_keys

table "Targets of issue 12 measured in this run" "target" "value" "limit" "verdict"
for g in "${goals[@]}"; do row "$g"; done
end_table
para "Finished in $((SECONDS - t0)) s; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."

if [[ -n ${RESULTS:-} ]]; then
  cp "$markdown" "$RESULTS"
  say "bench: wrote $RESULTS"
else
  cat "$markdown"
fi
((failed == 0)) || die "some checks failed (see CHECK FAILED above)"
