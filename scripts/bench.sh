#!/usr/bin/env bash
# Benchmarks mrkv side by side with the tools a user would otherwise pick, in one run on one machine
# (issue 6): the kvserver against redis-server and nginx, MapReduce word count against mawk, gawk and
# coreutils. Prints one table per part with each figure, its ratio to the anchor and the issue's
# target, and writes the same tables as Markdown to scripts/bench/RESULTS.md (or $RESULTS).
#
#   scripts/bench.sh           the full run (~15 minutes on 2 cores)
#   scripts/bench.sh --quick   a short run (~3 minutes): 3 s loads, fewer curve points, 1x and 5x corpora
#
# Installs what it needs from Debian when missing (scripts/deps.sh), builds build/release/mrkv with the
# release preset unless MRKV_BIN names a binary. Every server listens on loopback on a free port and is
# stopped by its PID, also when the script fails. Exits 1 if any check failed (a wrong reply, a non-2xx
# status, a word count differing from mrkv's); a missed performance target is reported, not an error.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
here=$root/scripts/bench
quick=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    -h | --help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

if ((quick)); then
  duration=3 curve_duration=3 rounds=1 curve_rounds=1 conn_points=(1 50 1000) key_points=(1000 100000) copies=(1 5) hf_runs=3
else
  duration=3 curve_duration=3 rounds=5 curve_rounds=3 conn_points=(1 10 50 200 1000) key_points=(1000 100000 1000000) copies=(1 5 20) hf_runs=5
fi
warmup=1
results=${RESULTS:-$here/RESULTS.md}
cores=$(nproc)

"$root/scripts/deps.sh" wrk redis-server redis-tools nginx-light mawk gawk hyperfine util-linux python3 procps
if [[ -z ${MRKV_BIN:-} ]]; then
  echo "bench: building build/release/mrkv" >&2
  (cd "$root" && cmake --preset release >/dev/null && cmake --build --preset release --target mrkv plugin_combining_wc >/dev/null)
  MRKV_BIN=$root/build/release/mrkv
fi
bin=$(readlink -f "$MRKV_BIN")
plugins=$(dirname "$bin")/plugins  # the test plugins built beside it
[[ -x $bin ]] || { echo "bench: $MRKV_BIN is not an executable" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < 2200)); then
  echo "bench: open-file limit $(ulimit -n) is below what 1000 connections need; raise it" >&2
  exit 2
fi

work=$(mktemp -d -t mrkv-bench.XXXXXX) # honours TMPDIR; the MapReduce work directories live here too
shm="" # a tmpfs work directory for one more distributed row, when $work is not on tmpfs already
chmod 755 "$work" # nginx workers may run as another user and must read its www directory
pids=()
failed=0
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
  [[ -z $shm ]] || rm -rf "$shm"
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
stop() { # PID: SIGTERM, then wait for it to exit
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget_pid "$1"
}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # PORT PID: until something accepts on 127.0.0.1:PORT
  local i
  for ((i = 0; i < 500; i++)); do
    (exec 3<> "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || die "the server on port $1 (pid $2) exited at start"
    sleep 0.02
  done
  die "nothing listens on port $1 after 10 s"
}
rss_kib() { # PID [PID...]: summed VmRSS in KiB
  local total=0 p v
  for p in "$@"; do
    v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status")
    total=$((total + v))
  done
  echo "$total"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "") printf "%.2f", a / b; else print "n/a" }'; }
fmt() { awk -v v="$1" -v d="${2:-0}" 'BEGIN { if (v == "" || v == "n/a") print "n/a"; else printf("%." d "f\n", v) }'; }
verdict() { # RATIO OP LIMIT (OP: le or ge)
  awk -v r="$1" -v op="$2" -v lim="$3" 'BEGIN {
    if (r == "n/a") { print "n/a"; exit }
    ok = (op == "ge") ? (r + 0 >= lim + 0) : (r + 0 <= lim + 0)
    print ok ? "met" : "missed" }'
}

goals=() # every target of issue 6 with its ratio and verdict, for the summary at the end
goal() { # NAME RATIO OP LIMIT: sets V to met/missed and records the target
  V=$(verdict "$2" "$3" "$4")
  local sym="<="
  [[ $3 == ge ]] && sym=">="
  goals+=("$1"$'\t'"$2"$'\t'"$sym $4"$'\t'"$V")
}

# --- tables: rows of tab-separated cells, printed aligned to stdout and as Markdown to $results ---------
markdown=$work/results.md
table_file=""
table() { # TITLE HEADER...: starts a table; cells are tab-separated in its file
  table_file=$work/table.$RANDOM
  printf '%s\n' "$1" > "$table_file"
  shift
  row "$@"
}
row() {
  local IFS=$'\t'
  printf '%s\n' "$*" >> "$table_file"
}
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
section() { printf '\n## %s\n' "$1" >> "$markdown"; printf '\n######## %s\n' "$1"; }
para() { printf '\n%s\n' "$*" >> "$markdown"; }

# --- servers ------------------------------------------------------------------------------------------
server_pin=() load_pin=()
pin() { # 1: server on core 0, load generators on core 1; 0: unpinned
  if (($1)); then server_pin=(taskset -c 0) load_pin=(taskset -c 1); else server_pin=() load_pin=(); fi
}

kv_pid="" kv_url="" kv_port=""
start_kv() { # extra kvserver flags...: sets kv_pid, kv_url, kv_port from its "listening on" line
  local out=$work/kv.$RANDOM.out i
  "${server_pin[@]}" "$bin" kvserver --listen 127.0.0.1:0 --log-level warn "$@" > "$out" 2>> "$work/kvserver.log" &
  kv_pid=$!
  pids+=("$kv_pid")
  for ((i = 0; ; i++)); do
    [[ -s $out && $(wc -l < "$out") -ge 1 ]] && break
    kill -0 "$kv_pid" 2>/dev/null || die "the kvserver exited at start: $(tail -3 "$work/kvserver.log")"
    ((i < 500)) || die "the kvserver printed no listening line in 10 s"
    sleep 0.02
  done
  kv_url=$(sed -n '1s/.* on //p' "$out")
  kv_port=${kv_url##*:}
}
stop_kv() { stop "$kv_pid"; }

redis_pid="" redis_port=""
start_redis() {
  redis_port=$(free_port)
  "${server_pin[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" --logfile "$work/redis.log" --daemonize no &
  redis_pid=$!
  pids+=("$redis_pid")
  wait_port "$redis_port" "$redis_pid"
}
redis_info() { redis-cli -p "$redis_port" info memory | tr -d '\r' | awk -F: -v k="$1" '$1 == k { print $2 }'; }

nginx_pid="" nginx_port=""
start_nginx() { # WORKERS
  nginx_port=$(free_port)
  local dir=$work/nginx
  mkdir -p "$dir/www" "$dir/tmp"
  printf '{"value":"vvvvvvvvvvvvvvvv"}' > "$dir/www/v.json" # the size of the kvserver's GET reply body
  sed -e "s|@WORKERS@|$1|; s|@PORT@|$nginx_port|; s|@DIR@|$dir|g" "$here/nginx.conf.in" > "$dir/nginx.conf"
  "${server_pin[@]}" nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/nginx-error.log" &
  nginx_pid=$!
  pids+=("$nginx_pid")
  wait_port "$nginx_port" "$nginx_pid"
}

# --- load generators: each sets OPS and P99 (milliseconds) -------------------------------------------
OPS="" P99=""
jfield() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }
mrkv_bench() { # LABEL bench-flags...
  local label=$1 out=$work/bench.$RANDOM.json
  shift
  "${load_pin[@]}" "$bin" bench kv --server "$kv_url" --json --warmup "$warmup" --log-level warn "$@" > "$out" ||
    die "mrkv bench ($label) failed"
  OPS=$(jfield "$out" ops_per_second) P99=$(jfield "$out" p99_ms)
  local errors
  errors=$(jfield "$out" errors)
  say "bench:   mrkv bench $label: $(fmt "$OPS") ops/s, p99 $(fmt "$P99" 2) ms, $errors errors"
  ((errors == 0)) || check_failed "mrkv bench $label: $errors errors, first: $(jfield "$out" first_error)"
}
wrk_run() { # LABEL THREADS CONNECTIONS URL [wrk args after --]...
  local label=$1 threads=$2 conns=$3 url=$4 out=$work/wrk.$RANDOM.txt
  shift 4
  "${load_pin[@]}" wrk -t"$threads" -c"$conns" -d"${duration}s" --latency "$url" "$@" > "$out" 2>&1 ||
    die "wrk ($label) failed: $(tail -3 "$out")"
  OPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  P99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                           print (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v }' "$out")
  if grep -q 'Non-2xx or 3xx responses' "$out"; then check_failed "wrk $label: $(grep 'Non-2xx' "$out" | xargs)"; fi
  if grep -q 'Socket errors' "$out"; then say "bench: wrk $label: $(grep 'Socket errors' "$out" | xargs)"; fi
  [[ -n $OPS ]] || die "wrk ($label) printed no Requests/sec: $(cat "$out")"
  say "bench:   wrk $label: $(fmt "$OPS") req/s, p99 $(fmt "$P99" 2) ms"
}
declare -A REDIS_OPS REDIS_P99
redis_n=0
redis_bench() { # runs SET then GET; fills REDIS_OPS[SET|GET], REDIS_P99[...]
  if ((redis_n == 0)); then # size -n to last about $duration seconds
    local rps
    rps=$("${load_pin[@]}" redis-benchmark -h 127.0.0.1 -p "$redis_port" -P 1 -c 50 -d 16 -t get -n 20000 -r 1000 --csv |
      awk -F'"' '$2 == "GET" { print $4 }')
    redis_n=$(awk -v r="$rps" -v d="$duration" 'BEGIN { n = int(r * d); print n < 20000 ? 20000 : n }')
  fi
  local out=$work/redis.$RANDOM.csv
  "${load_pin[@]}" redis-benchmark -h 127.0.0.1 -p "$redis_port" -P 1 -c 50 -d 16 -t get,set -n "$redis_n" -r 1000 \
    --csv > "$out" || die "redis-benchmark failed"
  local t
  for t in SET GET; do
    REDIS_OPS[$t]=$(awk -F'"' -v t="$t" '$2 == t { print $4 }' "$out")
    REDIS_P99[$t]=$(awk -F'"' -v t="$t" '$2 == t { print $14 }' "$out")
    [[ -n ${REDIS_OPS[$t]} ]] || die "redis-benchmark printed no $t line: $(cat "$out")"
    say "bench:   redis-benchmark $t: $(fmt "${REDIS_OPS[$t]}") ops/s, p99 $(fmt "${REDIS_P99[$t]}" 2) ms"
  done
}

# --- key/value: mrkv vs redis and nginx at 50 connections, unpinned and pinned ------------------------
kv_versus() { # PINNED
  local pinned=$1 kv_threads=() nginx_workers=$cores wrk_threads=2 r
  pin "$pinned"
  if ((pinned)); then kv_threads=(--threads 1) nginx_workers=1 wrk_threads=1; fi
  start_kv "${kv_threads[@]}"
  start_redis
  start_nginx "$nginx_workers"
  redis_n=0
  "${load_pin[@]}" "$bin" bench kv --server "$kv_url" --clients 50 --keys 1000 --preload --duration 0.2 --warmup 0 \
    --log-level warn --json > /dev/null || die "preloading the kvserver failed"
  local -a g_ops g_p99 p_ops p_p99 wg_ops wg_p99 wp_ops wp_p99 rg_ops rg_p99 rs_ops rs_p99 n_ops n_p99
  for ((r = 1; r <= rounds; r++)); do
    say "bench: key/value $( ((pinned)) && echo pinned || echo unpinned), round $r of $rounds"
    mrkv_bench "GET" --clients 50 --keys 1000 --mix 1:0:0 --duration "$duration"
    g_ops+=("$OPS") g_p99+=("$P99")
    mrkv_bench "PUT" --clients 50 --keys 1000 --mix 0:1:0 --duration "$duration"
    p_ops+=("$OPS") p_p99+=("$P99")
    redis_bench
    rg_ops+=("${REDIS_OPS[GET]}") rg_p99+=("${REDIS_P99[GET]}") rs_ops+=("${REDIS_OPS[SET]}") rs_p99+=("${REDIS_P99[SET]}")
    wrk_run "GET" "$wrk_threads" 50 "$kv_url" -s "$here/kv.lua" -- get 1000 16
    wg_ops+=("$OPS") wg_p99+=("$P99")
    wrk_run "PUT" "$wrk_threads" 50 "$kv_url" -s "$here/kv.lua" -- put 1000 16
    wp_ops+=("$OPS") wp_p99+=("$P99")
    wrk_run "nginx" "$wrk_threads" 50 "http://127.0.0.1:$nginx_port/v.json"
    n_ops+=("$OPS") n_p99+=("$P99")
  done
  stop_kv
  stop "$redis_pid"
  stop "$nginx_pid"
  pin 0

  local G P WG WP RG RS N i
  # Ratios are medians of the per-round ratios: each round's loads ran within seconds of each other.
  local -a rgr rpr rwg rwp
  for i in "${!g_ops[@]}"; do
    rgr+=("$(ratio "${g_ops[$i]}" "${rg_ops[$i]}")") rpr+=("$(ratio "${p_ops[$i]}" "${rs_ops[$i]}")")
    rwg+=("$(ratio "${wg_ops[$i]}" "${n_ops[$i]}")") rwp+=("$(ratio "${wp_ops[$i]}" "${n_ops[$i]}")")
  done
  G=$(median "${g_ops[@]}") P=$(median "${p_ops[@]}") WG=$(median "${wg_ops[@]}") WP=$(median "${wp_ops[@]}")
  RG=$(median "${rg_ops[@]}") RS=$(median "${rs_ops[@]}") N=$(median "${n_ops[@]}")
  local gp pp wgp wpp rgp rsp np
  gp=$(median "${g_p99[@]}") pp=$(median "${p_p99[@]}") wgp=$(median "${wg_p99[@]}") wpp=$(median "${wp_p99[@]}")
  rgp=$(median "${rg_p99[@]}") rsp=$(median "${rs_p99[@]}") np=$(median "${n_p99[@]}")
  local where tag=""
  ((pinned)) && tag=", pinned"
  if ((pinned)); then
    where="pinned: servers on core 0 (kvserver --threads 1, nginx 1 worker), load on core 1 (1 thread)"
  else
    where="unpinned: kvserver $cores threads, nginx $cores workers, mrkv bench and redis-benchmark 1 thread, wrk 2 threads"
  fi
  table "Key/value at 50 connections, 16-byte values, 1000 keys - $where" \
    "mrkv measurement" "ops/s" "p99 ms" "anchor" "anchor ops/s" "anchor p99 ms" "ratio" "target" "verdict"
  local x
  x=$(fmt "$(median "${rgr[@]}")" 2)
  goal "kvserver GET / redis GET, 50 connections$tag" "$x" ge 1.3
  row "GET, mrkv bench" "$(fmt "$G")" "$(fmt "$gp" 2)" "redis GET, redis-benchmark -P 1" "$(fmt "$RG")" "$(fmt "$rgp" 2)" "$x" ">= 1.3" "$V"
  x=$(fmt "$(median "${rpr[@]}")" 2)
  goal "kvserver PUT / redis SET, 50 connections$tag" "$x" ge 1.3
  row "PUT, mrkv bench" "$(fmt "$P")" "$(fmt "$pp" 2)" "redis SET, redis-benchmark -P 1" "$(fmt "$RS")" "$(fmt "$rsp" 2)" "$x" ">= 1.3" "$V"
  x=$(fmt "$(median "${rwg[@]}")" 2)
  goal "kvserver GET (wrk) / nginx static JSON$tag" "$x" ge 0.9
  row "GET, wrk" "$(fmt "$WG")" "$(fmt "$wgp" 2)" "nginx static JSON, wrk" "$(fmt "$N")" "$(fmt "$np" 2)" "$x" ">= 0.9" "$V"
  x=$(fmt "$(median "${rwp[@]}")" 2)
  goal "kvserver PUT (wrk) / nginx static JSON$tag" "$x" ge 0.9
  row "PUT, wrk" "$(fmt "$WP")" "$(fmt "$wpp" 2)" "nginx static JSON, wrk" "$(fmt "$N")" "$(fmt "$np" 2)" "$x" ">= 0.9" "$V"
  if ((pinned)); then
    x=$(ratio "$gp" 1)
    goal "p99 of GET, pinned, in ms / 1 ms" "$x" le 1.0
    row "p99 GET, mrkv bench" "" "$(fmt "$gp" 2)" "limit 1 ms" "" "1.00" "$x" "<= 1.0" "$V"
    x=$(ratio "$pp" 1)
    goal "p99 of PUT, pinned, in ms / 1 ms" "$x" le 1.0
    row "p99 PUT, mrkv bench" "" "$(fmt "$pp" 2)" "limit 1 ms" "" "1.00" "$x" "<= 1.0" "$V"
  fi
  note "Figures are medians of $rounds round(s); a round runs every load above for ${duration} s, one after the other." \
    "Ratio: the median over rounds of mrkv / anchor in the same round (for p99 rows, p99 / 1 ms)."
  end_table
}

# --- curves: the points of one curve are loaded in turn, round after round ---------------------------
kv_connections_curve() {
  start_kv
  "$bin" bench kv --server "$kv_url" --clients 50 --keys 1000 --preload --duration 0.2 --warmup 0 --log-level warn \
    --json > /dev/null || die "preloading the kvserver failed"
  local -A ops p99 wops wp99
  local c r
  for ((r = 1; r <= curve_rounds; r++)); do
    for c in "${conn_points[@]}"; do
      say "bench: GET at $c connections, round $r of $curve_rounds"
      mrkv_bench "GET at $c connections" --clients "$c" --keys 1000 --mix 1:0:0 --duration "$curve_duration"
      ops[$c,$r]=$OPS p99[$c,$r]=$P99
      # wrk as a second load generator: it tells the server's limit from mrkv bench's own.
      duration=$curve_duration wrk_run "GET at $c connections" "$((c < 2 ? 1 : 2))" "$c" "$kv_url" -s "$here/kv.lua" -- get 1000 16
      wops[$c,$r]=$OPS wp99[$c,$r]=$P99
    done
  done
  stop_kv
  table "Key/value GET throughput and p99 against connections (1000 keys, 16-byte values, kvserver $cores threads; mrkv bench 1 thread, wrk 2 threads)" \
    "connections" "mrkv bench ops/s" "p99 ms" "ratio to 50" "target" "verdict" "wrk req/s" "wrk p99 ms" "wrk ratio to 50"
  for c in "${conn_points[@]}"; do
    local o=() p=() rs=() wo=() wp=() wrs=() x wx
    for ((r = 1; r <= curve_rounds; r++)); do
      o+=("${ops[$c,$r]}") p+=("${p99[$c,$r]}") rs+=("$(ratio "${ops[$c,$r]}" "${ops[50,$r]}")")
      wo+=("${wops[$c,$r]}") wp+=("${wp99[$c,$r]}") wrs+=("$(ratio "${wops[$c,$r]}" "${wops[50,$r]}")")
    done
    x=$(fmt "$(median "${rs[@]}")" 2) wx=$(fmt "$(median "${wrs[@]}")" 2)
    local target="" v=""
    if ((c == 1000)); then
      goal "GET (wrk) at 1000 connections / at 50" "$wx" ge 0.8
      goal "GET (mrkv bench) at 1000 connections / at 50" "$x" ge 0.8
      target=">= 0.8" v=$V
    fi
    row "$c" "$(fmt "$(median "${o[@]}")")" "$(fmt "$(median "${p[@]}")" 2)" "$x" "$target" "$v" \
      "$(fmt "$(median "${wo[@]}")")" "$(fmt "$(median "${wp[@]}")" 2)" "$wx"
  done
  note "Medians of $curve_rounds round(s) of ${curve_duration} s per point and load generator; ratio: median over rounds of" \
    "ops/s / ops/s at 50 connections in the same round. The verdict column is mrkv bench's; the summary lists both."
  end_table
}

mem_keys="" mem_kv_kib=""
kv_keys_curve() {
  local -A url pid ops p99
  local k r before after
  for k in "${key_points[@]}"; do # one server per point, all up at once
    start_kv
    url[$k]=$kv_url pid[$k]=$kv_pid
    # Touch the code, threads and connection buffers first, so the RSS delta is the stored keys.
    "$bin" bench kv --server "$kv_url" --clients 50 --keys 1 --preload --duration 0.2 --warmup 0 --log-level warn \
      --json > /dev/null || die "warming up the kvserver failed"
    before=$(rss_kib "$kv_pid")
    say "bench: preloading $k keys"
    "$bin" bench kv --server "$kv_url" --clients 50 --keys "$k" --preload --duration 0.2 --warmup 0 --log-level warn \
      --json > /dev/null || die "preloading $k keys failed"
    after=$(rss_kib "$kv_pid")
    mem_keys=$k mem_kv_kib=$((after - before)) # the largest point is the memory figure
  done
  for ((r = 1; r <= curve_rounds; r++)); do
    for k in "${key_points[@]}"; do
      say "bench: GET over $k keys, round $r of $curve_rounds"
      kv_url=${url[$k]}
      mrkv_bench "GET over $k keys" --clients 50 --keys "$k" --mix 1:0:0 --duration "$curve_duration"
      ops[$k,$r]=$OPS p99[$k,$r]=$P99
    done
  done
  for k in "${key_points[@]}"; do stop "${pid[$k]}"; done
  table "Key/value GET throughput and p99 against stored keys (mrkv bench, 50 connections, preloaded, 16-byte values)" \
    "keys" "ops/s" "p99 ms" "ratio to 1k" "target" "verdict"
  for k in "${key_points[@]}"; do
    local o=() p=() rs=() x
    for ((r = 1; r <= curve_rounds; r++)); do
      o+=("${ops[$k,$r]}") p+=("${p99[$k,$r]}") rs+=("$(ratio "${ops[$k,$r]}" "${ops[1000,$r]}")")
    done
    x=$(fmt "$(median "${rs[@]}")" 2)
    if ((k == 1000000)); then
      goal "GET ops/s at 1M keys / at 1k keys" "$x" ge 0.9
      row "$k" "$(fmt "$(median "${o[@]}")")" "$(fmt "$(median "${p[@]}")" 2)" "$x" ">= 0.9" "$V"
    else
      row "$k" "$(fmt "$(median "${o[@]}")")" "$(fmt "$(median "${p[@]}")" 2)" "$x" "" ""
    fi
  done
  note "Medians of $curve_rounds round(s) of ${curve_duration} s per point; ratio: median over rounds of ops/s / ops/s at 1k keys in the same round."
  ((quick)) && note "Quick run: no 1M-key point (the target is 1M keys >= 0.9x 1k keys); run without --quick."
  end_table
}

redis_memory() { # KEYS: the same keys and values as mrkv bench's preload, loaded with redis-cli --pipe
  local k=$1 before after rss_before rss_after
  start_redis
  before=$(redis_info used_memory) rss_before=$(rss_kib "$redis_pid")
  mawk -v n="$k" 'BEGIN { v = "pppppppppppppppp"
    for (i = 0; i < n; i++) { key = "key:" i
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(key), key, length(v), v } }' |
    redis-cli -p "$redis_port" --pipe > "$work/redis-pipe.txt" || die "redis-cli --pipe failed: $(cat "$work/redis-pipe.txt")"
  local stored
  stored=$(redis-cli -p "$redis_port" dbsize)
  ((stored == k)) || check_failed "redis holds $stored keys, not $k"
  after=$(redis_info used_memory) rss_after=$(rss_kib "$redis_pid")
  mem_redis_bytes=$((after - before)) mem_redis_rss_kib=$((rss_after - rss_before))
  stop "$redis_pid"
}

idle_conns() { # PORT KIND PATH PID...: RSS delta in KiB over 1000 idle connections
  local port=$1 kind=$2 path=$3 before after line
  shift 3
  # A few connections first, so the delta is the connections and not first-touched code.
  python3 "$here/idle_conns.py" 127.0.0.1 "$port" 20 "$kind" "$path" < /dev/null > /dev/null || die "idle_conns failed"
  sleep 0.3
  before=$(rss_kib "$@")
  coproc IDLE { exec python3 "$here/idle_conns.py" 127.0.0.1 "$port" 1000 "$kind" "$path"; }
  # shellcheck disable=SC2153 # IDLE_PID is set by the coproc
  local idle_pid=$IDLE_PID
  read -r -t 60 line <&"${IDLE[0]}" || die "idle connections to port $port: no ready line"
  [[ $line == ready ]] || die "idle_conns: $line"
  sleep 1
  after=$(rss_kib "$@")
  eval "exec ${IDLE[1]}>&-"
  wait "$idle_pid" || true
  echo $((after - before))
}

kv_memory() {
  local k=$mem_keys
  redis_memory "$k"
  local kv_per_key redis_per_key redis_rss_per_key x
  kv_per_key=$(awk -v d="$mem_kv_kib" -v k="$k" 'BEGIN { print d * 1024 / k }')
  redis_per_key=$(awk -v d="$mem_redis_bytes" -v k="$k" 'BEGIN { print d / k }')
  redis_rss_per_key=$(awk -v d="$mem_redis_rss_kib" -v k="$k" 'BEGIN { print d * 1024 / k }')

  say "bench: memory per idle connection"
  local kv_conn redis_conn nginx_conn workers=()
  start_kv
  kv_conn=$(idle_conns "$kv_port" http-post-kv / "$kv_pid")
  stop_kv
  start_redis
  redis_conn=$(idle_conns "$redis_port" redis-ping / "$redis_pid")
  stop "$redis_pid"
  start_nginx "$cores"
  mapfile -t workers < <(pgrep -P "$nginx_pid")
  nginx_conn=$(idle_conns "$nginx_port" http-get /v.json "$nginx_pid" "${workers[@]}")
  stop "$nginx_pid"

  table "Memory: per stored key ($k keys of 16-byte values, keys key:0..key:$((k - 1))) and per idle keep-alive connection (1000 connections)" \
    "measurement" "mrkv" "anchor" "anchor figure" "ratio" "target" "verdict"
  x=$(ratio "$kv_per_key" "$redis_per_key")
  goal "memory per stored key ($k keys) / redis used_memory per key" "$x" le 1.5
  row "bytes per key: kvserver VmRSS delta" "$(fmt "$kv_per_key" 1)" "redis used_memory delta" "$(fmt "$redis_per_key" 1)" "$x" "<= 1.5" "$V"
  x=$(ratio "$kv_per_key" "$redis_rss_per_key")
  row "bytes per key: kvserver VmRSS delta" "$(fmt "$kv_per_key" 1)" "redis VmRSS delta" "$(fmt "$redis_rss_per_key" 1)" "$x" "" ""
  local kv_b redis_b nginx_b
  kv_b=$(awk -v d="$kv_conn" 'BEGIN { print d * 1024 / 1000 }')
  redis_b=$(awk -v d="$redis_conn" 'BEGIN { print d * 1024 / 1000 }')
  nginx_b=$(awk -v d="$nginx_conn" 'BEGIN { print d * 1024 / 1000 }')
  x=$(ratio "$kv_b" 16384)
  goal "memory per idle connection / 16 KiB" "$x" le 1.0
  row "bytes per idle connection: kvserver VmRSS delta" "$(fmt "$kv_b")" "16 KiB" "16384" "$x" "<= 1.0" "$V"
  row "bytes per idle connection" "$(fmt "$kv_b")" "redis VmRSS delta" "$(fmt "$redis_b")" "$(ratio "$kv_b" "$redis_b")" "" ""
  row "bytes per idle connection" "$(fmt "$kv_b")" "nginx ($cores workers) VmRSS delta" "$(fmt "$nginx_b")" "$(ratio "$kv_b" "$nginx_b")" "" ""
  note "Each idle connection has sent one request and read its reply (keep-alive), then stays open."
  ((quick)) && note "Quick run: $k keys instead of 1M; run without --quick for the 1M-key figure."
  end_table
}

# --- MapReduce word count -----------------------------------------------------------------------------
mr_corpus() { # COPIES: fills the corpus directory, sets CORPUS (files) and CORPUS_MB
  local n=$1 dir=$work/corpus-$1 i f
  mkdir -p "$dir"
  for ((i = 1; i <= n; i++)); do
    for f in "$root"/test/data/gutenberg/pg-*.txt; do
      if ((n == 1)); then cp "$f" "$dir/"; else cp "$f" "$dir/copy$i-$(basename "$f")"; fi
    done
  done
  CORPUS=("$dir"/*.txt)
  CORPUS_MB=$(du -cb "${CORPUS[@]}" | awk 'END { printf "%.1f", $1 / 1e6 }')
}

declare -A MR_MEAN MR_SD
mr_compare() { # COPIES
  local n=$1 out=$work/mr-out-$1
  mr_corpus "$n"
  mkdir -p "$out"
  local files job1=$work/job1 job2=$work/job2 job3=$work/job3 tools=(mawk gawk coreutils mr1 mr2 mr2-nothing)
  files=$(printf '%q ' "${CORPUS[@]}")
  local extra=()
  if [[ -n $shm ]]; then
    extra=(--prepare "rm -rf $shm/job2" -n mr2-tmpfs "$here/mr_job.sh $bin 2 $shm/job2 $files")
    tools+=(mr2-tmpfs)
  fi
  say "bench: word count over ${n}x the lab texts ($CORPUS_MB MB), hyperfine --warmup 1 --runs $hf_runs"
  hyperfine --style none --warmup 1 --runs "$hf_runs" --export-json "$out/hf.json" \
    --prepare true --prepare true --prepare true --prepare true --prepare "rm -rf $job1" --prepare "rm -rf $job2" \
    --prepare "rm -rf $job3" \
    -n mawk "mawk -f $here/wc.awk $files > $out/mawk.txt" \
    -n gawk "gawk -f $here/wc.awk $files > $out/gawk.txt" \
    -n coreutils "cat $files | tr -cs 'A-Za-z' '\\n' | grep . | sort | uniq -c > $out/coreutils.txt" \
    -n sequential "$bin sequential --app wc --log-level warn --output $out/sequential.txt $files" \
    -n mr1 "$here/mr_job.sh $bin 1 $job1 $files" \
    -n mr2 "$here/mr_job.sh $bin 2 $job2 $files" \
    -n mr2-nothing "MR_JOB_SERVE=1 $here/mr_job.sh $bin 2 $job3 $files" "${extra[@]}" > "$out/hyperfine.txt" 2>&1 ||
    die "hyperfine failed: $(tail -5 "$out/hyperfine.txt")"
  # Every output, normalised to sorted "word count" lines, must equal mrkv sequential's.
  sort "$out/sequential.txt" > "$out/ref"
  sort "$out/mawk.txt" > "$out/n-mawk"
  sort "$out/gawk.txt" > "$out/n-gawk"
  awk '{ print $2, $1 }' "$out/coreutils.txt" | sort > "$out/n-coreutils"
  cat "$job1"/mr-out-* | sort > "$out/n-mr1"
  cat "$job2"/mr-out-* | sort > "$out/n-mr2"
  cat "$job3"/mr-out-* | sort > "$out/n-mr2-nothing"
  [[ -z $shm ]] || cat "$shm"/job2/mr-out-* | sort > "$out/n-mr2-tmpfs"
  local -A same
  local t
  for t in "${tools[@]}"; do
    if cmp -s "$out/ref" "$out/n-$t"; then same[$t]=yes; else same[$t]=NO; check_failed "word count by $t over ${n}x differs from mrkv sequential's"; fi
  done
  same[sequential]="reference ($(wc -l < "$out/ref") words)"
  python3 - "$out/hf.json" > "$out/times" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["command"], r["mean"], r["stddev"] or 0, r["min"])
EOF
  while read -r t mean sd _; do MR_MEAN[$n,$t]=$mean MR_SD[$n,$t]=$sd; done < "$out/times"
  local m=${MR_MEAN[$n,mawk]} s=${MR_MEAN[$n,sequential]}
  table "Word count over ${n}x the lab texts ($((8 * n)) files, $CORPUS_MB MB): hyperfine mean of $hf_runs runs after 1 warmup" \
    "program" "seconds" "+/-" "ratio to mawk" "target" "verdict" "output equal"
  local label x target verdict_
  for t in mawk gawk coreutils sequential mr1 mr2 mr2-nothing ${shm:+mr2-tmpfs}; do
    case $t in
      mawk) label="mawk -f wc.awk" ;;
      gawk) label="gawk -f wc.awk" ;;
      coreutils) label="tr -cs A-Za-z '\\n' | grep . | sort | uniq -c" ;;
      sequential) label="mrkv sequential --app wc" ;;
      mr1) label="mrkv coordinator + 1 worker, end to end" ;;
      mr2) label="mrkv coordinator + 2 workers, end to end" ;;
      mr2-nothing) label="the same, sharing nothing (--serve, own directories)" ;;
      mr2-tmpfs) label="mrkv coordinator + 2 workers, work dir on tmpfs" ;;
    esac
    x=$(ratio "${MR_MEAN[$n,$t]}" "$m") target="" verdict_=""
    if [[ $t == sequential ]] && ((n == 1 || n == 20)); then
      goal "mrkv sequential / mawk, ${n}x corpus" "$x" le 1.0
      target="<= 1.0" verdict_=$V
    fi
    row "$label" "$(fmt "${MR_MEAN[$n,$t]}" 3)" "$(fmt "${MR_SD[$n,$t]}" 3)" "$x" "$target" "$verdict_" "${same[$t]}"
  done
  x=$(ratio "${MR_MEAN[$n,mr2-nothing]}" "${MR_MEAN[$n,mr2]}")
  if ((n == 20)); then
    goal "shared-nothing job / shared-directory job, 2 workers, 20x corpus" "$x" le 1.15
    row "sharing nothing / shared directory" "" "" "$x (to shared)" "<= 1.15" "$V" ""
  else
    row "sharing nothing / shared directory" "" "" "$x (to shared)" "" "" ""
  fi
  if ((n == 20)); then
    x=$(ratio "${MR_MEAN[$n,mr2]}" "$s")
    goal "distributed job, 2 workers / mrkv sequential, 20x corpus" "$x" le 0.7
    row "2 workers / mrkv sequential" "" "" "$x (to sequential)" "<= 0.7" "$V" ""
  fi
  if ((n == 1)); then
    x=$(ratio "${MR_MEAN[$n,mr2]}" 0.25)
    goal "distributed job, 2 workers, lab texts, seconds / 0.25 s" "$x" le 1.0
    row "2 workers, whole job / 0.25 s" "" "" "$x (to 0.25 s)" "<= 1.0" "$V" ""
  fi
  end_table
  ((n == 5 || n == 20)) && mr_combiner_bytes "$n"
  rm -rf "$work/corpus-$n" "$job1" "$job2" "$job3"
  [[ -z $shm ]] || rm -rf "$shm/job2"
}

# What a combiner saves on the wire: the shared-nothing job with the test plugin combining_wc (the lab's
# wc map, a "1" per word, plus a combiner that sums them) and with its combiner switched off
# (MRKV_TEST_NO_COMBINE=1), on the current corpus. The bytes shuffled are the job's counter
# mrkv,reduce_input_bytes (what /v1/job shows as shuffled_bytes), from the coordinator's log: the
# workers delete their map outputs when the job is over.
mr_combiner_bytes() { # COPIES
  local n=$1 plugin=$plugins/combining_wc.so job=$work/combine-job on off on_s off_s t
  [[ -f $plugin ]] || { say "bench: no $plugin: combiner bytes skipped"; return 0; }
  map_bytes() { sed -n 's/.*counter mrkv,reduce_input_bytes = \([0-9]*\).*/\1/p' "$job/coordinator.log" | tail -1; }
  timed_job() { # ENV...: runs the job, prints its seconds
    local started
    rm -rf "$job"
    started=$(date +%s%N)
    env "$@" MR_JOB_SERVE=1 MR_JOB_APP="$plugin" MR_JOB_LOG_LEVEL=info "$here/mr_job.sh" "$bin" 2 "$job" "${CORPUS[@]}" ||
      die "the combiner job failed: $(tail -3 "$job"/*.log)"
    awk -v ns=$(( $(date +%s%N) - started )) 'BEGIN { printf "%.3f", ns / 1e9 }'
  }
  on_s=$(timed_job -u MRKV_TEST_NO_COMBINE)
  on=$(map_bytes)
  cat "$job"/mr-out-* | sort | cmp -s - "$work/mr-out-$n/ref" || check_failed "combining_wc over ${n}x differs from mrkv sequential's wc"
  off_s=$(timed_job MRKV_TEST_NO_COMBINE=1)
  off=$(map_bytes)
  cat "$job"/mr-out-* | sort | cmp -s - "$work/mr-out-$n/ref" || check_failed "combining_wc without its combiner over ${n}x differs"
  rm -rf "$job"
  t=$(ratio "$off" "$on")
  table "Bytes shuffled with and without a combiner, ${n}x corpus (2 workers sharing nothing, one run each)" \
    "app" "bytes shuffled" "job seconds" "ratio"
  row "combining_wc, combiner on" "$on" "$on_s" "1.00"
  row "combining_wc, combiner off (MRKV_TEST_NO_COMBINE=1)" "$off" "$off_s" "$t (to on)"
  end_table
}

mr_stream_compare() { # COPIES: wc as a streaming app (mawk mapper and reducer) beside mawk alone
  local n=$1 out=$work/stream-out-$1 job=$work/stream-job
  mr_corpus "$n"
  mkdir -p "$out"
  local files
  files=$(printf '%q ' "${CORPUS[@]}")
  say "bench: streaming word count over ${n}x the lab texts ($CORPUS_MB MB), hyperfine --warmup 1 --runs $hf_runs"
  hyperfine --style none --warmup 1 --runs "$hf_runs" --export-json "$out/hf.json" \
    --prepare true --prepare "rm -rf $job" \
    -n mawk "LC_ALL=C mawk -f $here/wc.awk $files > $out/mawk.txt" \
    -n stream2 "$here/stream_job.sh $bin 2 $job $files" > "$out/hyperfine.txt" 2>&1 ||
    die "hyperfine failed: $(tail -5 "$out/hyperfine.txt")"
  sort "$out/mawk.txt" > "$out/ref"
  cat "$job"/mr-out-* | sort > "$out/n-stream2"
  local same=yes
  cmp -s "$out/ref" "$out/n-stream2" || { same=NO; check_failed "streaming word count over ${n}x differs from mawk's"; }
  python3 - "$out/hf.json" > "$out/times" <<'EOF2'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["command"], r["mean"], r["stddev"] or 0, r["min"])
EOF2
  local -A mean sd
  local t m x target="" verdict_=""
  while read -r t m x _; do mean[$t]=$m sd[$t]=$x; done < "$out/times"
  table "Streaming word count over ${n}x the lab texts ($((8 * n)) files, $CORPUS_MB MB): hyperfine mean of $hf_runs runs after 1 warmup" \
    "program" "seconds" "+/-" "ratio to mawk" "target" "verdict" "output equal"
  row "mawk -f wc.awk over all files" "$(fmt "${mean[mawk]}" 3)" "$(fmt "${sd[mawk]}" 3)" "1.00" "" "" "reference ($(wc -l < "$out/ref") words)"
  x=$(ratio "${mean[stream2]}" "${mean[mawk]}")
  if ((n == 20)); then
    goal "streaming job (mawk scripts), 2 workers / mawk alone, 20x corpus" "$x" le 0.7
    target="<= 0.7" verdict_=$V
  fi
  row "coordinator + 2 workers, --mapper 'mawk -f wc_map.awk' --reducer 'mawk -f wc_reduce.awk'" \
    "$(fmt "${mean[stream2]}" 3)" "$(fmt "${sd[stream2]}" 3)" "$x" "$target" "$verdict_" "$same"
  end_table
  rm -rf "$work/corpus-$n" "$job"
}

# --- the run ------------------------------------------------------------------------------------------
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
t0=$SECONDS
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- src include CMakeLists.txt 2>/dev/null || commit="$commit (+ uncommitted changes)"
{
  echo "# Benchmark results"
  echo
  echo "Written by \`scripts/bench.sh$( ((quick)) && echo ' --quick')\`; rerun it to refresh this file. Only ratios measured"
  echo "side by side in one run mean anything: the machine is shared and its absolute speed varies."
  echo
  echo "## Machine"
  echo
  echo "- CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $cores cores (nproc)," \
    "$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
  # shellcheck disable=SC1091
  echo "- OS: $(. /etc/os-release && echo "$PRETTY_NAME"), Linux $(uname -r)"
  echo "- mrkv $commit, $("$bin" --version 2>/dev/null | head -1 || true) built by $(g++ --version | head -1)"
  echo "- $(redis-server --version | cut -d' ' -f1-3), $(nginx -v 2>&1 | cut -d' ' -f3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)," \
    "mawk $(mawk -W version 2>&1 | head -1 | cut -d' ' -f2), $(gawk --version | head -1 | cut -d, -f1)," \
    "coreutils $(sort --version | head -1 | awk '{ print $NF }'), $(hyperfine --version)"
  echo "- Run: $started, $( ((quick)) && echo "quick (${duration} s loads, $rounds round)" || echo "full (${duration} s loads, medians of $rounds rounds)");" \
    "load average at start $load_start"
} > "$markdown"

say "bench: mrkv at $bin, results to $results"
section "Key/value"
para "Loads: \`mrkv bench kv --clients 50 --keys 1000 --value-size 16\` (GET-only mix 1:0:0 after --preload, PUT-only 0:1:0)," \
  "\`wrk\` with scripts/bench/kv.lua (POST /v1/get, /v1/put with a Host header), \`redis-benchmark -P 1 -c 50 -d 16 -r 1000 -t get,set\`," \
  "and \`wrk\` on nginx-light serving a 28-byte static JSON file (scripts/bench/nginx.conf.in)."
kv_versus 0
if ((cores >= 2)); then kv_versus 1; else para "Pinned runs skipped: this machine has one core."; fi
kv_connections_curve
kv_keys_curve
kv_memory

section "MapReduce word count"
work_fs=$(findmnt -no FSTYPE -T "$work" 2>/dev/null || stat -f -c %T "$work")
if [[ $work_fs != tmpfs && -d /dev/shm && -w /dev/shm ]]; then shm=$(mktemp -d /dev/shm/mrkv-bench.XXXXXX); fi
para "The lab's eight texts (test/data/gutenberg) and copies of them under distinct names; every output is" \
  "normalised to sorted \`word count\` lines and compared with \`mrkv sequential\`'s. The distributed rows start" \
  "the coordinator and the workers and wait for all of them (scripts/bench/mr_job.sh); the coordinator makes 10 reduce tasks." \
  "Their work directory is under \$TMPDIR ($work_fs here)${shm:+; the tmpfs row runs the same job in /dev/shm}."
for n in "${copies[@]}"; do mr_compare "$n"; done

section "MapReduce word count as a streaming app"
para "The same texts through \`mrkv worker --mapper 'mawk -f wc_map.awk' --reducer 'mawk -f wc_reduce.awk'\`" \
  "(scripts/bench/stream_job.sh, 2 workers, 10 reduce tasks) beside scripts/bench/wc.awk run by one mawk over all files."
for n in "${copies[@]}"; do if ((n == 5 || n == 20)); then mr_stream_compare "$n"; fi; done

section "Targets"
table "Every target of issue 6 measured in this run" "target" "ratio" "limit" "verdict"
for g in "${goals[@]}"; do row "$g"; done
if ((quick)); then
  note "Quick run: the targets on 1M keys and on the 20x corpus are measured by the full run only."
fi
end_table

para "Finished in $((SECONDS - t0)) s; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
cp "$markdown" "$results"
say "bench: wrote $results"
((failed == 0)) || die "some checks failed (see CHECK FAILED above)"
