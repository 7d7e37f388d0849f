#!/usr/bin/env bash
# One key/value clerk loop for scripts/netns-test.sh, run inside a host's namespace with `ip netns exec`.
#   netns-clerk.sh MRKV SERVER_URL CLIENT HISTORY_FILE STOP_FILE
# Until STOP_FILE exists: cycles over keys k0..k2 doing two `mrkv kv append KEY TOKEN` (each TOKEN
# unique: "cCLIENT.N;") and one `mrkv kv get KEY`, each a new process with its own client id, and logs
# each call as one JSON line (test/kv/history_file_test.cpp reads them): call and return times from
# CLOCK_REALTIME (shared by all namespaces), the output, and ok=false if the clerk gave up (pending).
# An attempt unanswered after 1 s is resent with the same request id: a cut of two seconds makes resends.
set -uo pipefail
mrkv=$1 server=$2 client=$3 history=$4 stop=$5

now_ns() {
  local t=${EPOCHREALTIME/[.,]/}
  echo "${t}000"
}

n=0
while [[ ! -e $stop ]]; do
  n=$((n + 1))
  key=k$((n % 3))
  if ((n % 3 == 0)); then
    op=get input=
    args=(get "$key")
  else
    op=append input="c$client.$n;"
    args=(append "$key" "$input")
  fi
  call=$(now_ns)
  output=$("$mrkv" kv --server "$server" --timeout 20 --attempt-timeout 1 --log-level off "${args[@]}")
  rc=$?
  ret=$(now_ns)
  ok=true
  ((rc == 0)) || ok=false output=
  # Keys, tokens and values hold only [a-z0-9.;]: no JSON escaping needed.
  printf '{"client":%d,"op":"%s","key":"%s","input":"%s","output":"%s","ok":%s,"call_ns":%s,"return_ns":%s}\n' \
    "$client" "$op" "$key" "$input" "$output" "$ok" "$call" "$ret" >> "$history"
done
